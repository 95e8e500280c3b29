"""CLI safety: no hang, no kill by the kernel, one line and exit 2 for bad input.

Each test reproduces what hostile use does (a FIFO hanging a command, a sweep allocating
until killed, `internal error` for a bf16 tensor or an infinite threshold, a traceback for a
full or unwritable destination or a 300-character name) and checks the one-line error.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dynconf import cli
from dynconf.core import store as runs
from dynconf.core.store import load_run, save_run
from tests.helpers import synthetic_split

REPO = Path(__file__).resolve().parents[2]


def dynconf(*argv: str, timeout: float = 60, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "dynconf", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def one_line_error(proc, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: ") or ": error: " in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr


def run_main(capsys, *argv: str):
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return save_run(
        tmp_path / "r",
        {
            "test": synthetic_split(200, 8, 5, seed=1, neurons=50, dtype=np.float32),
            "calibration": synthetic_split(100, 8, 5, seed=2, neurons=50, dtype=np.float32),
        },
    ).path


# --------------------------------------------------------------------------- FIFOs


@pytest.mark.parametrize(
    "argv",
    [
        ["info"],
        ["evaluate", "--threshold", "0.5"],
        ["oracle"],
        ["sweep"],
        ["select"],
    ],
)
def test_a_fifo_instead_of_an_array_file_does_not_hang(run_dir, argv):
    target = run_dir / "test.outputs.npy"
    target.unlink()
    os.mkfifo(target)
    proc = dynconf(argv[0], str(run_dir), *argv[1:], timeout=30)  # a hang fails here
    one_line_error(proc, "test.outputs.npy", "not a regular file")


def test_a_fifo_as_meta_or_import_source_does_not_hang(run_dir, tmp_path):
    (run_dir / "meta.json").unlink()
    os.mkfifo(run_dir / "meta.json")
    one_line_error(dynconf("info", str(run_dir), timeout=30), "meta.json", "not a regular file")
    os.mkfifo(tmp_path / "o.npz")
    proc = dynconf("import", str(tmp_path / "o.npz"), "--out", str(tmp_path / "new"), timeout=30)
    one_line_error(proc, "not a regular file")


# --------------------------------------------------------------------------- thresholds


@pytest.mark.parametrize("command", ["sweep", "select"])
def test_huge_threshold_counts_are_refused_not_allocated(capsys, run_dir, command):
    t0 = time.monotonic()
    proc = dynconf(command, str(run_dir), "--thresholds", "1000000000", timeout=30)
    one_line_error(proc, "at most 100,000 thresholds")
    assert time.monotonic() - t0 < 20
    many = ",".join(["0.5"] * 100_001)  # longer than a command line may be: in process
    code, out, err = run_main(capsys, command, str(run_dir), "--thresholds", many)
    assert code == 2 and out == "" and "at most 100,000" in err and err.count("\n") == 1
    code, _, err = run_main(capsys, command, str(run_dir), "--thresholds", "100000", "--json")
    assert code == 0, err


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity"])
def test_non_finite_thresholds_are_refused(capsys, run_dir, value):
    code, out, err = run_main(capsys, "evaluate", str(run_dir), f"--threshold={value}", "--json")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "NaN and infinity are not allowed" in err
    for argv in ([f"--kappa={value}"], [f"--acc-slack={value}"]):
        code, _, err = run_main(capsys, "sweep", str(run_dir), *argv)
        assert code == 2 and "NaN and infinity" in err
    # A threshold is a confidence in [0, 1]: 5 is refused too, 1 never exits early.
    code, out, err = run_main(capsys, "evaluate", str(run_dir), "--threshold", "5", "--json")
    assert code == 2 and out == "" and "outside [0, 1]" in err
    code, out, _ = run_main(capsys, "evaluate", str(run_dir), "--threshold", "1", "--json")
    assert code == 0 and json.loads(out)["mean_latency"] == 8


# --------------------------------------------------------------------------- .pt tensors


def _pt_files(tmp_path) -> dict[str, Path]:
    torch = pytest.importorskip("torch")
    import warnings

    arrays = synthetic_split(30, 4, 3, seed=3, neurons=10, dtype=np.float32)
    outputs = torch.from_numpy(arrays["outputs"])
    labels = torch.from_numpy(arrays["labels"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized and CSR tensors warn when made
        forms = {
            "bf16": outputs.bfloat16(),
            "fp8": outputs.to(torch.float8_e4m3fn),
            "qint8": torch.quantize_per_tensor(outputs, 0.1, 0, torch.qint8),
            "sparse": outputs.to_sparse(),
            "csr": outputs.reshape(4, 90).to_sparse_csr(),
        }
    paths = {}
    for name, tensor in forms.items():
        paths[name] = tmp_path / f"{name}.pt"
        torch.save({"outputs": tensor, "labels": labels}, paths[name])
    paths["_reference"] = forms
    return paths


def test_pt_tensors_in_other_forms_convert_or_fail_in_one_line(tmp_path):
    paths = _pt_files(tmp_path)
    forms = paths.pop("_reference")
    for name in ("bf16", "fp8"):  # exact in float32: converted
        proc = dynconf("import", str(paths[name]), "--out", str(tmp_path / f"r_{name}"))
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        stored = load_run(tmp_path / f"r_{name}").split("test").outputs
        assert stored.dtype == np.float32
        assert np.array_equal(stored, forms[name].float().numpy())
    for name, words in (("qint8", "quantized"), ("sparse", "sparse"), ("csr", "sparse_csr")):
        proc = dynconf("import", str(paths[name]), "--out", str(tmp_path / f"r_{name}"))
        one_line_error(proc, words)
        assert not (tmp_path / f"r_{name}").exists()


# --------------------------------------------------------------------------- destinations


def test_unwritable_destinations_are_one_line_exit_2(tmp_path, capsys, monkeypatch):
    npz = tmp_path / "o.npz"
    np.savez(npz, **synthetic_split(40, 4, 3, seed=3, neurons=10, dtype=np.float32))
    blocker = tmp_path / "a-file"  # a file where a folder should be: fails for root too
    blocker.write_text("x")
    proc = dynconf("import", str(npz), "--out", str(blocker / "run"))
    one_line_error(proc, "cannot write", str(blocker))
    proc = dynconf("import", str(npz), "--out", str(blocker / "deeper" / "run"))
    one_line_error(proc, "cannot write")

    def full(path, write):  # the disk fills while the arrays are written
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(runs, "write_new_file", full)
    code, out, err = run_main(capsys, "import", str(npz), "--out", str(tmp_path / "r"))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: cannot write") and "No space left on device" in err
    assert not (tmp_path / "r").exists() and not list(tmp_path.glob(".dynconf-tmp-*"))


def test_export_into_a_file_is_one_line_exit_2(tmp_path, capsys, monkeypatch, run_dir):
    from dynconf.report import export

    # Drawing is not what is tested here: a small pack goes through the real writer.
    monkeypatch.setattr(export, "pack_files", lambda *a, **k: {"summary.csv": b"a,b\n"})
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, out, err = run_main(capsys, "export", str(run_dir), "--out", str(blocker / "figs"))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: cannot write") and str(blocker) in err


def test_simulate_into_a_file_is_one_line_exit_2(tmp_path, digits_checkpoint):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = dynconf(
        "simulate", "--checkpoint", str(digits_checkpoint), "--dataset", "digits", "--T", "4",
        "--limit", "5", "--no-progress", "--out", str(blocker / "run"), timeout=120,
    )  # fmt: skip
    one_line_error(proc, "cannot write", str(blocker))


# --------------------------------------------------------------------------- names and bombs


def test_long_or_odd_run_names_are_refused_in_one_line(tmp_path):
    npz = tmp_path / "o.npz"
    np.savez(npz, **synthetic_split(40, 4, 3, seed=3, neurons=10, dtype=np.float32))
    proc = dynconf("import", str(npz), "--out", str(tmp_path / ("n" * 300)))
    one_line_error(proc, "run name", "300 characters")
    assert "File name too long" not in proc.stderr
    one_line_error(dynconf("import", str(npz), "--out", str(tmp_path / "a b")), "run name")


def test_zip_bomb_import_is_refused_under_the_configured_limit(tmp_path):
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("outputs.npy", "w") as f:
            header = {"descr": "<f4", "fortran_order": False, "shape": (16, 100_000, 10)}
            np.lib.format.write_array_header_1_0(f, header)
            f.write(bytes(16 * 100_000 * 10 * 4))
        with zf.open("labels.npy", "w") as f:
            np.lib.format.write_array(f, np.zeros(100_000, np.int64))
    proc = dynconf("import", str(bomb), "--out", str(tmp_path / "r"),
                   env={"DYNCONF_MAX_IMPORT_BYTES": str(16 << 20)})  # fmt: skip
    one_line_error(proc, "more than the limit of 16,777,216 bytes")


def test_outputs_whose_sums_overflow_fail_every_command(tmp_path, run_dir):
    arrays = synthetic_split(40, 4, 3, seed=3, neurons=10, dtype=np.float32)
    arrays["outputs"] = arrays["outputs"].astype(np.float64)
    arrays["outputs"][:, 0, 0] = 1e308
    np.savez(tmp_path / "huge.npz", **arrays)
    proc = dynconf("import", str(tmp_path / "huge.npz"), "--out", str(tmp_path / "h"))
    one_line_error(proc, "accumulated outputs S_t are not finite")
    outputs = np.load(run_dir / "test.outputs.npy").astype(np.float64)
    outputs[:, 7, 2] = 1e308
    np.save(run_dir / "test.outputs.npy", outputs)
    for argv in (["info"], ["evaluate", "--threshold", "0.5"], ["sweep"], ["oracle"]):
        proc = dynconf(argv[0], str(run_dir), *argv[1:])
        one_line_error(proc, "accumulated outputs S_t are not finite")


# --------------------------------------------------------------------------- messages


def test_a_full_disk_names_the_target_never_a_temporary_file(tmp_path, capsys, monkeypatch):
    from dynconf.core import npywriter

    npz = tmp_path / "o.npz"
    np.savez(npz, **synthetic_split(40, 4, 3, seed=3, neurons=10, dtype=np.float32))
    real = os.pwritev

    def full(fd, buffers, offset):  # the disk fills while the stored arrays are streamed
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(npywriter.os, "pwritev", full)
    code, out, err = run_main(capsys, "import", str(npz), "--out", str(tmp_path / "r"))
    assert code == 2 and err.count("\n") == 1, err
    assert f"cannot write {tmp_path / 'r' / 'test.outputs.npy'}: No space left" in err, err
    assert ".dynconf-tmp" not in err
    monkeypatch.setattr(npywriter.os, "pwritev", real)

    def full_array(fh, arr, **kwargs):  # the disk fills while a run's array is written
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np.lib.format, "write_array", full_array)
    from dynconf.core.atomic import DestinationError

    wanted = r"cannot write .*/s/test\.\w+\.npy: No space"
    with pytest.raises(DestinationError, match=wanted) as err:
        save_run(tmp_path / "s", {"test": synthetic_split(20, 4, 3, seed=1, neurons=10)})
    assert ".dynconf-tmp" not in str(err.value)
    assert not (tmp_path / "s").exists() and not list(tmp_path.glob(".dynconf-tmp-*"))


def test_a_pickled_checkpoint_is_refused_in_dynconfs_words(tmp_path):
    import torch

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"model": Payload(), "config": {}}, tmp_path / "hostile.pt")
    proc = dynconf("simulate", "--checkpoint", str(tmp_path / "hostile.pt"), "--dataset",
                   "digits", "--T", "4", "--out", str(tmp_path / "r"))  # fmt: skip
    one_line_error(proc, "hostile.pt", "holds Python objects that dynconf will not unpickle")
    assert "weights_only" not in proc.stderr and "this must never run" not in proc.stdout
    assert not (tmp_path / "r").exists()


def test_a_fifo_as_checkpoint_or_weights_is_not_a_regular_file(tmp_path):
    from dynconf.cli.record import load_weights
    from dynconf.errors import DataError

    fifo = tmp_path / "fifo.pt"
    os.mkfifo(fifo)
    proc = dynconf("simulate", "--checkpoint", str(fifo), "--dataset", "digits", "--T", "4",
                   "--out", str(tmp_path / "r"), timeout=30)  # fmt: skip
    one_line_error(proc, "fifo.pt", "not a regular file")
    import torch

    with pytest.raises(DataError, match=r"^--weights .*fifo\.pt: is not a regular file"):
        load_weights(torch.nn.Linear(2, 2), str(fifo))
    with pytest.raises(DataError, match="no such file"):
        load_weights(torch.nn.Linear(2, 2), str(tmp_path / "missing.pt"))


def test_json_nested_100k_deep_is_one_line_never_a_recursion_error(tmp_path, run_dir):
    from dynconf.core.safeopen import read_json_file
    from dynconf.errors import RunFormatError

    deep = tmp_path / "deep.json"
    deep.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(RunFormatError, match=r"deep\.json: not valid JSON here \(nested more"):
        read_json_file(deep)
    nested = json.loads('{"x": ' + "[" * 40 + "]" * 40 + "}")
    deep.write_text(json.dumps(nested))
    assert read_json_file(deep) == nested  # ordinary nesting still parses
    meta = json.loads((run_dir / "meta.json").read_text())
    text = json.dumps(meta)[:-1] + ', "notes_deep": ' + "[" * 100_000 + "]" * 100_000 + "}"
    (run_dir / "meta.json").write_text(text)
    one_line_error(dynconf("info", str(run_dir)), "meta.json", "not valid JSON")
