"""The import traps in the app's upload: batch-first and accumulated outputs are
refused as on the command line, the messages name the form's choices (never a CLI flag or a
server path), and the choices import the file correctly.
"""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest

from dynconf.app import uploads
from dynconf.core.store import default_work_root
from dynconf.errors import DynconfError
from tests.app.helpers import app
from tests.helpers import synthetic_split


@pytest.fixture
def work(dashboard_runs, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(dashboard_runs / "synth", root / "synth")
    monkeypatch.setenv("DYNCONF_RUNS", str(root))
    monkeypatch.setenv("DYNCONF_WORK", str(tmp_path / "work"))
    monkeypatch.delenv("DYNCONF_DATA", raising=False)
    return tmp_path / "work"


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _no_flag_no_server_path(message: str) -> None:
    assert "--" not in message, message  # the form has choices, not flags
    assert ".uploads" not in message and str(default_work_root()) not in message, message


def test_batch_first_upload_is_refused_with_the_forms_words(work):
    arrays = synthetic_split(16, 16, 10, seed=3, neurons=100)
    ntk = arrays["outputs"].transpose(1, 0, 2)
    data = _npz(outputs=ntk, labels=arrays["labels"])
    with pytest.raises(DynconfError) as info:  # T = N = 16 and no layout said
        uploads.import_upload("mine", "seenn logits.npz", data)
    message = str(info.value)
    assert message.startswith("seenn logits.npz: outputs has shape (16, 16, 10)"), message
    assert "'batch first [N, T, K]'" in message
    _no_flag_no_server_path(message)
    assert not (work / "mine").exists()

    other = synthetic_split(40, 8, 10, seed=1, neurons=100)
    data40 = _npz(outputs=other["outputs"].transpose(1, 0, 2), labels=other["labels"])
    with pytest.raises(DynconfError, match=r"looks batch-first \[N, T, K\]; choose the layout "
                       r"'batch first \[N, T, K\]'"):  # fmt: skip
        uploads.import_upload("mine", "b.npz", data40)
    run = uploads.import_upload("mine", "seenn logits.npz", data, layout="NTK")
    assert np.array_equal(run.split("test").outputs, arrays["outputs"])
    assert run.meta["notes"] == "imported from seenn logits.npz"


def test_accumulated_upload_is_refused_until_said(work):
    arrays = synthetic_split(200, 16, 10, seed=2, neurons=100)
    sums = np.cumsum(arrays["outputs"], axis=0, dtype=np.float64)
    data = _npz(outputs=sums, labels=arrays["labels"])
    with pytest.raises(DynconfError) as info:
        uploads.import_upload("acc", "sums.npz", data)
    message = str(info.value)
    assert "norm grows" in message and "from step 1 to 16" in message, message
    assert "'accumulated (running sums S_t)'" in message and "'per step (z_t)'" in message
    _no_flag_no_server_path(message)
    run = uploads.import_upload("acc", "sums.npz", data, cumulative=True)
    assert np.allclose(run.split("test").outputs, arrays["outputs"], atol=1e-9)
    as_is = uploads.import_upload("acc", "sums.npz", data, split="raw", cumulative=False)
    assert as_is.split_names == ("test", "raw")
    with pytest.raises(DynconfError, match="split 'test' already exists; choose another split"):
        uploads.import_upload("acc", "sums.npz", data, cumulative=True)


def test_upload_under_other_names_says_what_to_rename(work):
    arrays = synthetic_split(30, 8, 10, seed=4, neurons=100)
    data = _npz(logits=arrays["outputs"], targets=arrays["labels"])
    with pytest.raises(DynconfError, match="save the outputs under the name 'outputs'") as info:
        uploads.import_upload("named", "mine.npz", data)
    _no_flag_no_server_path(str(info.value))
    one_hot = _npz(outputs=arrays["outputs"], labels=np.eye(10, dtype=np.int64)[arrays["labels"]])
    with pytest.raises(DynconfError, match="labels must be a 1-D array of N class indices"):
        uploads.import_upload("named", "mine.npz", one_hot)


def _submit(at, filename: str, data: bytes, name: str, **choices):
    at.file_uploader(key="imp_file").set_value((filename, data, "application/zip"))
    at.text_input(key="imp_name").set_value(name)
    for key, label in choices.items():
        at.selectbox(key=key).set_value(label)
    next(b for b in at.button if b.label == "Import").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return [e.value for e in at.error], [s.value for s in at.success]


def test_the_import_form_offers_layout_and_step_choices(work):
    at = app("runs")
    assert at.selectbox(key="imp_layout").options == list(uploads.LAYOUT_CHOICES)
    assert at.selectbox(key="imp_steps").options == list(uploads.STEP_CHOICES)
    arrays = synthetic_split(40, 8, 10, seed=6, neurons=100)
    ntk = _npz(outputs=arrays["outputs"].transpose(1, 0, 2), labels=arrays["labels"])
    errors, _ = _submit(at, "results_ntk.npz", ntk, "form_run")
    assert any("results" in e and "batch first" in e for e in errors), errors
    assert not any("--layout" in e or ".uploads" in e for e in errors), errors
    errors, done = _submit(at, "results_ntk.npz", ntk, "form_run",
                           imp_layout="batch first [N, T, K]")  # fmt: skip
    assert not errors and done, errors
    assert (work / "form_run" / "meta.json").is_file()

    sums = _npz(outputs=np.cumsum(arrays["outputs"], 0, dtype=np.float64), labels=arrays["labels"])
    errors, _ = _submit(at, "sums.npz", sums, "form_sums", imp_layout="time first [T, N, K]")
    assert any("norm grows" in e and "accumulated" in e for e in errors), errors
    errors, done = _submit(at, "sums.npz", sums, "form_sums",
                           imp_steps="accumulated (running sums S_t)")  # fmt: skip
    assert not errors and done, errors


def test_an_empty_upload_is_called_empty(work):
    for name in ("outputs.npz", "outputs.npy"):
        with pytest.raises(DynconfError) as info:
            uploads.import_upload("mine", name, b"")
        assert str(info.value) == f"{name}: the file is empty"
    with pytest.raises(DynconfError, match="labels.npy: the file is empty"):
        uploads.import_upload("mine", "outputs.npy", b"x", labels=("labels.npy", b""))
    assert not (work / "mine").exists()


def test_new_run_name_example_follows_the_chosen_checkpoint(work, monkeypatch):
    monkeypatch.setattr(
        uploads,
        "checkpoint_candidates",
        lambda: {"/nonexistent/cifar.pt": "cifar10", "/nonexistent/digits.pt": "digits"},
    )
    at = app("runs")
    assert at.text_input(key="sim_name").placeholder == "cifar10_T32"
    at.selectbox(key="sim_pick").set_value("/nonexistent/digits.pt").run()
    assert at.text_input(key="sim_name").placeholder == "digits_T32"
