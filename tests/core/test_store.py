"""Run format: round trips, validation of every kind of bad input, atomic writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dynconf.core import store as runs
from dynconf.core.decoders import decode, decode_outputs
from dynconf.core.importing import import_outputs
from dynconf.core.store import add_split, list_runs, load_run, save_run
from dynconf.errors import RunFormatError
from tests.helpers import synthetic_split

REPO = Path(__file__).resolve().parents[2]


def small_split(n=20, T=5, K=4, seed=0, dtype=np.float32):
    return synthetic_split(n, T, K, seed=seed, neurons=10, dtype=dtype)


def meta_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "meta.json").read_text())


def write_meta(run_dir: Path, meta) -> None:
    (run_dir / "meta.json").write_text(json.dumps(meta))


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(runs.TMP_PREFIX)]


# --------------------------------------------------------------------------- round trips


def test_save_and_load_round_trip(tmp_path):
    test, cal = small_split(seed=1), small_split(n=12, seed=2)
    run = save_run(
        tmp_path / "r",
        {"test": test, "calibration": cal},
        dataset="synthetic",
        model="m",
        classes=["a", "b", "c", "d"],
        neurons=10,
        extra_meta={"notes": "hi", "ann_accuracy": 0.9, "snn_accuracy_by_T": {"1": 0.5}},
    )
    assert run.name == "r" and run.T_max == 5 and run.K == 4 and run.storage == "full"
    assert run.split_names == ("test", "calibration")
    meta = meta_of(run.path)
    assert meta["schema"] == 1 and meta["splits"] == {"test": 20, "calibration": 12}
    for key in ("command", "seed", "code_version", "date", "wall_time_s"):
        assert key in meta["created"]
    loaded = load_run(run.path)
    sp = loaded.split("test")
    assert isinstance(sp.outputs, np.memmap) and not sp.outputs.flags.writeable
    assert sp.outputs.dtype == np.float32 and np.array_equal(sp.outputs, test["outputs"])
    assert np.array_equal(sp.labels, test["labels"]) and np.array_equal(sp.ids, test["ids"])
    assert np.array_equal(sp.spikes, test["spikes"])
    assert (sp.T, sp.N, sp.K) == (5, 20, 4)
    with pytest.raises(RunFormatError, match="no split 'train'"):
        loaded.split("train")
    assert leftovers(tmp_path) == []


def test_meta_form_and_extra_files(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"weights")
    meta = {"name": "x", "dataset": "d", "model": "m", "T_max": 5, "classes": list("abcd"),
            "ann_accuracy": {"test": 0.9}, "snn_accuracy_by_T": {"test": {"1": 0.5}},
            "checkpoint": "model.pt", "created": {"command": "c", "seed": 1}}  # fmt: skip
    run = save_run(tmp_path / "r", meta, {"test": small_split()}, extra_files={"model.pt": ckpt})
    assert (run.path / "model.pt").read_bytes() == b"weights"
    assert run.meta["created"]["command"] == "c" and run.meta["created"]["wall_time_s"] >= 0
    with pytest.raises(RunFormatError, match="T_max"):
        save_run(tmp_path / "r2", {**meta, "T_max": 6}, {"test": small_split()})
    with pytest.raises(RunFormatError, match="not allowed"):
        save_run(tmp_path / "r3", meta, {"test": small_split()}, extra_files={"../x": ckpt})


def test_list_runs(tmp_path):
    save_run(tmp_path / "good", {"test": small_split()})
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "meta.json").write_text("{")
    (tmp_path / ".dynconf-tmp-half").mkdir()  # an interrupted write: hidden
    (tmp_path / "file.txt").write_text("x")
    listing = {r.name: r for r in list_runs(tmp_path)}
    assert set(listing) == {"good", "bad"}
    assert listing["good"].ok and listing["good"].meta["T_max"] == 5
    assert not listing["bad"].ok and "not valid JSON" in listing["bad"].error
    assert list_runs(tmp_path / "missing") == []


def test_add_split_and_overwrite(tmp_path):
    run = save_run(tmp_path / "r", {"test": small_split()})
    run = add_split(run.path, "calibration", **small_split(n=8, seed=3))
    assert run.meta["splits"] == {"test": 20, "calibration": 8}
    assert run.meta["history"][0]["added_split"] == "calibration"
    with pytest.raises(RunFormatError, match="already exists"):
        add_split(run.path, "calibration", **small_split(n=8, seed=3))
    new = small_split(n=9, seed=4)
    new.pop("spikes")
    run = add_split(run.path, "calibration", **new, overwrite=True)
    assert run.split("calibration").N == 9
    assert run.split("calibration").spikes is None  # the old split's spikes file is gone
    with pytest.raises(RunFormatError, match="T_max=5"):
        add_split(run.path, "other", **small_split(T=6))
    with pytest.raises(RunFormatError, match="K=4"):
        add_split(run.path, "other", **small_split(K=3))
    assert leftovers(run.path) == []


def test_import_npz_and_cumulative(tmp_path, outputs_npz):
    run = import_outputs(outputs_npz, tmp_path / "r", dataset="syn", neurons=500)
    original = np.load(outputs_npz)
    assert np.array_equal(run.split("test").outputs, original["outputs"])
    # The same outputs given accumulated: differenced in float64, S_t recovered exactly.
    cum = tmp_path / "cum.npz"
    np.savez(cum, outputs=np.cumsum(original["outputs"], axis=0, dtype=np.float32),
             labels=original["labels"])  # fmt: skip
    run = import_outputs(cum, tmp_path / "r", split="calibration", cumulative=True)
    stored = np.asarray(run.split("calibration").outputs)
    assert stored.dtype == np.float64
    assert np.array_equal(np.cumsum(stored, axis=0), np.cumsum(original["outputs"], 0, np.float32))
    a = decode(run.split("calibration"))
    b = decode_outputs(np.load(cum)["outputs"][:, :, :], original["labels"])  # not per-step!
    assert not np.array_equal(a.confidence, b.confidence)  # sanity: the flag matters
    with pytest.raises(RunFormatError, match="dataset"):
        import_outputs(outputs_npz, tmp_path / "r", split="x", dataset="other")


def test_import_npy_with_labels_and_dtype(tmp_path):
    arrays = small_split()
    np.save(tmp_path / "o.npy", arrays["outputs"])
    np.save(tmp_path / "y.npy", arrays["labels"])
    run = import_outputs(tmp_path / "o.npy", tmp_path / "r", labels_path=tmp_path / "y.npy",
                         dtype="float16")  # fmt: skip
    assert run.split("test").outputs.dtype == np.float16
    with pytest.raises(RunFormatError, match="no 'labels'"):
        import_outputs(tmp_path / "o.npy", tmp_path / "r2")
    big = {**arrays, "outputs": arrays["outputs"] * 1e6}
    np.savez(tmp_path / "big.npz", **big)
    with pytest.raises(RunFormatError, match="overflow"):
        import_outputs(tmp_path / "big.npz", tmp_path / "r3", dtype="float16")


def test_topk_bytes_are_smaller(tmp_path):
    arrays = synthetic_split(50, 8, 200, seed=0, neurons=10, dtype=np.float32)
    full = save_run(tmp_path / "full", {"test": arrays})
    topk = save_run(tmp_path / "topk", {"test": arrays}, storage="topk", topk=5)
    T, N, K, k = 8, 50, 200, 5
    b_full, b_topk = runs.disk_bytes(full)["test"], runs.disk_bytes(topk)["test"]
    # The formulas of docs/README_core.md, plus .npy headers (128 bytes each).
    common = N * 8 + T * N * 4 + N * 8  # labels, spikes, ids
    assert b_full == T * N * K * 4 + common + 4 * 128
    assert b_topk == T * N * k * (8 + 2) + 2 * T * N * 8 + common + 6 * 128
    loaded = load_run(topk.path)
    assert loaded.split("test").outputs is None and loaded.split("test").storage == "topk"


# --------------------------------------------------------------------------- bad input


def run_dir_with(tmp_path, name="r", **kwargs) -> Path:
    return save_run(tmp_path / name, {"test": small_split()}, **kwargs).path


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: a.update(outputs=np.where(np.arange(4) == 2, np.nan, a["outputs"])), "NaN"),
        (lambda a: a.update(outputs=np.full_like(a["outputs"], np.inf)), "NaN or infinite"),
        (lambda a: a.update(labels=a["labels"] + 4), r"in \[0, 4\)"),
        (lambda a: a.update(labels=-a["labels"] - 1), r"in \[0, 4\)"),
        (lambda a: a.update(labels=a["labels"][:-1]), "shape"),
        (lambda a: a.update(labels=a["labels"].astype(float)), "integers"),
        (lambda a: a.update(outputs=a["outputs"][0]), r"\[T, N, K\]"),
        (lambda a: a.update(spikes=a["spikes"][:, :-1]), "spikes"),
        (lambda a: a.update(spikes=-a["spikes"]), ">= 0"),
        (lambda a: a.update(ids=a["ids"].astype(float)), "ids must be integers"),
        (lambda a: a.pop("labels"), "labels"),
        (lambda a: a.update(extra=np.zeros(3)), "unexpected"),
    ],
)
def test_save_refuses_bad_arrays(tmp_path, mutate, message):
    arrays = small_split()
    mutate(arrays)
    with pytest.raises(RunFormatError, match=message):
        save_run(tmp_path / "r", {"test": arrays})
    assert not (tmp_path / "r").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("split", ["../evil", "a/b", "", ".hidden", "a.b", "x" * 65, "ü"])
def test_unsafe_split_names(tmp_path, split):
    with pytest.raises(RunFormatError, match="not allowed"):
        save_run(tmp_path / "r", {split: small_split()})
    run_dir = run_dir_with(tmp_path, "ok")
    meta = meta_of(run_dir)
    meta["splits"] = {split: 20}
    write_meta(run_dir, meta)
    with pytest.raises(RunFormatError, match="not allowed"):
        load_run(run_dir)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"schema": 2}, "schema 2 is not supported"),
        ({"schema": "1"}, "schema"),
        ({"schema": True}, "schema"),
        ({"T_max": "5"}, "T_max"),
        ({"T_max": 0}, "T_max"),
        ({"classes": "abcd"}, "classes"),
        ({"classes": [1, 2, 3, 4]}, "classes"),
        ({"classes": ["a"]}, "at least 2"),
        ({"splits": []}, "splits"),
        ({"splits": {}}, "splits"),
        ({"splits": {"test": -1}}, "sample count"),
        ({"splits": {"test": 21}}, "shape"),
        ({"storage": "zip"}, "storage"),
        ({"dataset": 3}, "dataset"),
        ({"neurons": -5}, "neurons"),
        ({"checkpoint": "../../etc/passwd"}, "checkpoint"),
        ({"checkpoint": "/etc/passwd"}, "checkpoint"),
        ({"created": "yesterday"}, "created"),
        ({"ann_accuracy": "high"}, "ann_accuracy"),
        ({"snn_accuracy_by_T": {"1": "x"}}, "snn_accuracy_by_T"),
        ({"T_max": 6}, "shape"),
        ({"classes": list("abc")}, "labels must lie|shape"),
    ],
)
def test_load_refuses_hostile_meta(tmp_path, change, message):
    run_dir = run_dir_with(tmp_path)
    write_meta(run_dir, {**meta_of(run_dir), **change})
    with pytest.raises(RunFormatError, match=message) as info:
        load_run(run_dir)
    assert str(run_dir) in str(info.value)


@pytest.mark.parametrize(
    "text, message",
    [("{", "not valid JSON"), ("[1, 2]", "JSON object"), ('{"schema": NaN}', "not valid JSON"),
     ("\xff\xfe", "not valid JSON"), ("[" * 100000, "not valid JSON")],
)  # fmt: skip
def test_load_refuses_corrupt_meta(tmp_path, text, message):
    run_dir = run_dir_with(tmp_path)
    (run_dir / "meta.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(RunFormatError, match=message):
        load_run(run_dir)


def test_load_refuses_missing_things(tmp_path):
    with pytest.raises(RunFormatError, match="does not exist"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFormatError, match="meta.json"):
        load_run(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFormatError, match="not a directory"):
        load_run(tmp_path / "file")
    run_dir = run_dir_with(tmp_path)
    (run_dir / "test.labels.npy").unlink()
    with pytest.raises(RunFormatError, match="test.labels.npy: file is missing"):
        load_run(run_dir)


def test_load_refuses_damaged_arrays(tmp_path):
    run_dir = run_dir_with(tmp_path)
    path = run_dir / "test.outputs.npy"
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(RunFormatError, match="truncated"):
        load_run(run_dir)
    path.write_bytes(good + b"junk")
    with pytest.raises(RunFormatError, match="unexpected bytes"):
        load_run(run_dir)
    path.write_bytes(b"not an array at all")
    with pytest.raises(RunFormatError, match="not a .npy"):
        load_run(run_dir)
    path.write_bytes(good[:20])
    with pytest.raises(RunFormatError, match="outputs.npy"):
        load_run(run_dir)
    # A pickled object array under a legitimate name is refused before anything is unpickled.
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(RunFormatError, match="pickled"):
        load_run(run_dir)
    np.save(path, np.zeros((5, 20, 4), np.int32))
    with pytest.raises(RunFormatError, match="dtype"):
        load_run(run_dir)
    arr = np.zeros((5, 20, 4), np.float32)
    arr[2, 3, 1] = np.nan
    np.save(path, arr)
    with pytest.raises(RunFormatError, match="NaN"):
        load_run(run_dir)
    load_run(run_dir, check_values=False)  # structure is fine: only the value scan sees it


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("in.npz", b"hello, not an archive", "not an .npz archive"),
        ("in.npz", b"", "not an .npz archive"),
        ("in.npz", b"PK\x03\x04garbage", "damaged .npz"),
        ("in.bin", b"hello", "unknown content"),
    ],
)
def test_import_refuses_non_archives(tmp_path, name, content, message):
    src = tmp_path / name
    src.write_bytes(content)
    with pytest.raises(RunFormatError, match=message):
        import_outputs(src, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_import_refuses_bad_npz(tmp_path):
    arrays = small_split()
    np.savez(tmp_path / "obj.npz", outputs=np.array([None, 1], dtype=object), labels=[0])
    with pytest.raises(RunFormatError, match="pickled"):
        import_outputs(tmp_path / "obj.npz", tmp_path / "r")
    np.savez(tmp_path / "nolabels.npz", outputs=arrays["outputs"])
    with pytest.raises(RunFormatError, match="no 'labels'"):
        import_outputs(tmp_path / "nolabels.npz", tmp_path / "r")
    np.savez(tmp_path / "trunc.npz", **arrays)
    data = (tmp_path / "trunc.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(RunFormatError, match="damaged|truncated"):
        import_outputs(tmp_path / "trunc.npz", tmp_path / "r")
    np.savez(tmp_path / "rank.npz", outputs=arrays["outputs"][0], labels=arrays["labels"])
    with pytest.raises(RunFormatError, match="time first"):
        import_outputs(tmp_path / "rank.npz", tmp_path / "r")
    with pytest.raises(RunFormatError, match="does not exist"):
        import_outputs(tmp_path / "missing.npz", tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_refuses_to_replace_a_non_run(tmp_path, outputs_npz):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(RunFormatError, match="already exists"):
        save_run(precious, {"test": small_split()})
    with pytest.raises(RunFormatError, match="not a dynconf run"):
        save_run(precious, {"test": small_split()}, overwrite=True)
    with pytest.raises(RunFormatError, match="already exists"):
        import_outputs(outputs_npz, precious)
    assert (precious / "thesis.tex").read_text() == "years of work"


# --------------------------------------------------------------------------- atomicity


def test_crash_during_save_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    real = runs.write_npy

    def failing(path, arr):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        real(path, arr)

    monkeypatch.setattr(runs, "write_npy", failing)
    with pytest.raises(OSError, match="disk full"):
        save_run(tmp_path / "r", {"test": small_split()})
    assert not (tmp_path / "r").exists() and leftovers(tmp_path) == []


def test_crash_during_overwrite_keeps_old_run(tmp_path, monkeypatch):
    run_dir = run_dir_with(tmp_path)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    monkeypatch.setattr(runs, "write_json_atomic", _raise)
    with pytest.raises(OSError):
        save_run(run_dir, {"test": small_split(seed=9)}, overwrite=True)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
    assert leftovers(tmp_path) == []


def _raise(*args, **kwargs):
    raise OSError("killed")


def test_crash_during_add_split_keeps_run_valid(tmp_path, monkeypatch):
    run_dir = run_dir_with(tmp_path)
    meta_before = meta_of(run_dir)
    real_replace = os.replace
    count = []

    def failing_replace(src, dst):
        count.append(dst)
        if len(count) == 2:  # after the first split file was renamed into place
            raise OSError("killed")
        real_replace(src, dst)

    monkeypatch.setattr(runs.os, "replace", failing_replace)
    with pytest.raises(OSError):
        add_split(run_dir, "calibration", **small_split(n=7, seed=5))
    monkeypatch.undo()
    assert meta_of(run_dir) == meta_before  # meta untouched: the run is as before
    run = load_run(run_dir)
    assert run.split_names == ("test",)
    assert leftovers(run_dir) == []
    # A later add of the same split works and ignores the stray file.
    run = add_split(run_dir, "calibration", **small_split(n=7, seed=5))
    assert run.split("calibration").N == 7


def test_crash_during_split_overwrite_never_mixes(tmp_path, monkeypatch):
    run = save_run(tmp_path / "r", {"test": small_split(), "calibration": small_split(n=8)})
    calls = []
    real = runs.write_npy

    def failing(path, arr):
        calls.append(path)
        raise OSError("killed")

    monkeypatch.setattr(runs, "write_npy", failing)
    with pytest.raises(OSError):
        add_split(run.path, "calibration", **small_split(n=9, seed=1), overwrite=True)
    monkeypatch.setattr(runs, "write_npy", real)
    # The split being replaced is kept as it was until its replacement is complete.
    again = load_run(run.path)
    assert again.split_names == ("test", "calibration") and again.split("calibration").N == 8
    assert leftovers(run.path) == []


KILL_SCRIPT = """
import sys, numpy as np
from dynconf.core.store import save_run
arrays = {"outputs": np.ones((40, 2000, 100), np.float32), "labels": np.zeros(2000, np.int64)}
print("ready", flush=True)
for i in range(1000):
    save_run(sys.argv[1], {"test": arrays, "calibration": arrays}, overwrite=True)
"""


def test_sigkill_mid_write_never_leaves_invalid_run(tmp_path):
    target = tmp_path / "r"
    for delay in (0.05, 0.3, 0.6):
        proc = subprocess.Popen(
            [sys.executable, "-c", KILL_SCRIPT, str(target)],
            cwd=REPO,
            stdout=subprocess.PIPE,
        )
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if target.exists():  # either no run yet, or a complete valid one
            run = load_run(target)
            assert run.meta["splits"] == {"test": 2000, "calibration": 2000}


def test_import_torch_file(tmp_path):
    torch = pytest.importorskip("torch")
    arrays = small_split()
    torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}, tmp_path / "o.pt")
    from dynconf.engine.tensor_files import read_tensors

    with pytest.raises(RunFormatError, match="need torch"):
        import_outputs(tmp_path / "o.pt", tmp_path / "r")  # the core alone never imports torch
    run = import_outputs(tmp_path / "o.pt", tmp_path / "r", read_pt=read_tensors)
    assert np.array_equal(run.split("test").outputs, arrays["outputs"])

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save({"outputs": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(RunFormatError, match="safe torch file"):
        import_outputs(tmp_path / "evil.pt", tmp_path / "r2", read_pt=read_tensors)
    assert not (tmp_path / "pwned").exists()
