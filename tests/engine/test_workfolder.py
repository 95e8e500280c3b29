"""The resumable work folder holds against what can be done to it between two runs: a FIFO in
place of its settings or of a part is a one-line error (never a hang), a damaged part (other
T, truncated, labels shifted with or without a fresh digest) is said in one line and
computed again, and the resumed run equals the uninterrupted one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dynconf.engine import partial
from dynconf.errors import DynconfError
from dynconf.record import record_run

sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import neuron  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "dynconf" / "demo_runs" / "digits" / "model.pt"
if not CHECKPOINT.is_file():
    CHECKPOINT = ROOT / "cached_runs" / "digits" / "model.pt"
T = 6
HANG_LIMIT_S = 60  # a hang is a failure, not a stuck test


def network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), neuron.IFNode(), nn.Linear(16, 4))


def batches(n_batches: int = 5, size: int = 8):
    g = torch.Generator().manual_seed(3)
    return [
        (torch.rand(size, 1, 8, 8, generator=g), torch.randint(0, 4, (size,), generator=g))
        for _ in range(n_batches)
    ]


def interrupted_folder(tmp_path: Path, net, data) -> tuple[Path, Path]:
    """A recording stopped after 3 batches: (run path, work folder with 3 parts)."""

    def stop_after_three():
        yield from data[:3]
        raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        record_run(net, stop_after_three(), T=T, out=out, progress=False)
    work = tmp_path / ".run.partial"
    assert len(list(work.glob("test-*.npz"))) == 3
    return out, work


def read_part(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {key: f[key] for key in f.files}


def save_raw(path: Path, arrays: dict) -> None:
    """Write a part as a hostile hand would: the arrays as given, digest untouched."""
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def other_T(path: Path) -> None:
    arrays = read_part(path)
    arrays["outputs"] = arrays["outputs"][:-1]  # T - 1 steps, with a fresh, valid digest
    arrays.pop("part_digest")
    partial.write_part(path, arrays)


def truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def shifted_labels_old_digest(path: Path) -> None:
    arrays = read_part(path)
    arrays["labels"] = np.roll(arrays["labels"], 1)
    save_raw(path, arrays)


def shifted_labels_new_digest(path: Path) -> None:
    arrays = read_part(path)
    arrays["labels"] = np.roll(arrays["labels"], 1)
    arrays.pop("part_digest")
    partial.write_part(path, arrays)


TAMPERING = {
    "other T": (other_T, "outputs have shape"),
    "truncated": (truncated, "unreadable"),
    "shifted labels, old digest": (shifted_labels_old_digest, "do not match their digest"),
    "shifted labels, new digest": (shifted_labels_new_digest, "labels or ids are not"),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_a_damaged_part_is_said_and_computed_again(tmp_path, capfd, case):
    tamper, reason = TAMPERING[case]
    net, data = network(), batches()
    whole = record_run(net, data, T=T, out=tmp_path / "whole", progress=False)
    out, work = interrupted_folder(tmp_path, net, data)
    tamper(work / "test-0000001.npz")
    capfd.readouterr()
    resumed = record_run(net, data, T=T, out=out, progress=False)
    err = capfd.readouterr().err
    said = [line for line in err.splitlines() if "test-0000001.npz" in line]
    assert len(said) == 1 and "damaged" in said[0] and reason in said[0], err
    for role in ("outputs", "spikes", "synops", "labels", "ids"):
        np.testing.assert_array_equal(
            np.asarray(getattr(resumed.split("test"), role)),
            np.asarray(getattr(whole.split("test"), role)),
            err_msg=role,
        )
    assert not work.exists()


def test_every_part_carries_a_digest_of_its_arrays(tmp_path):
    net, data = network(), batches()
    _, work = interrupted_folder(tmp_path, net, data)
    for path in sorted(work.glob("test-*.npz")):
        arrays = partial.load_part(path)  # checks the digest
        assert str(arrays["part_digest"]) == partial.arrays_digest(arrays)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_a_part_is_a_one_line_error(tmp_path):
    net, data = network(), batches()
    out, work = interrupted_folder(tmp_path, net, data)
    part = work / "test-0000002.npz"
    part.unlink()
    os.mkfifo(part)
    with pytest.raises(DynconfError, match="not a regular file") as info:
        record_run(net, data, T=T, out=out, progress=False)
    assert "\n" not in str(info.value) and "test-0000002.npz" in str(info.value)
    assert not out.exists()


FIFO_SETTINGS = """
import os, sys, torch
from torch import nn
from spikingjelly.activation_based import neuron
from dynconf.record import record_run
from dynconf.errors import DynconfError
work = sys.argv[1] + "/.r.partial"
os.makedirs(work)
os.mkfifo(work + "/settings.json")
net = nn.Sequential(nn.Flatten(), nn.Linear(64, 4), neuron.IFNode(), nn.Linear(4, 3))
try:
    record_run(net, [(torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))], T=2,
               out=sys.argv[1] + "/r", progress=False)
except DynconfError as exc:
    print(exc)
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_settings_never_hangs_record(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", FIFO_SETTINGS, str(tmp_path)],
        capture_output=True, text=True, timeout=HANG_LIMIT_S,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "not a regular file" in done.stdout and "settings.json" in done.stdout
    assert len(done.stdout.strip().splitlines()) == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_settings_never_hangs_simulate(tmp_path):
    work = tmp_path / ".s1.partial"
    work.mkdir()
    os.mkfifo(work / "settings.json")
    command = [sys.executable, "-m", "dynconf", "simulate", "--checkpoint", str(CHECKPOINT),
               "--dataset", "digits", "--T", "8", "--splits", "test", "--limit", "20",
               "--out", str(tmp_path / "s1"), "--no-progress"]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=HANG_LIMIT_S,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode != 0
    assert "not a regular file" in done.stderr and "Traceback" not in done.stderr
    assert "internal error" not in done.stderr
    assert not (tmp_path / "s1").exists()


# the modules that open files of a work folder or a user's path
OPENERS = [
    "dynconf/engine/partial.py",
    "dynconf/engine/writer.py",
    "dynconf/engine/record.py",
    "dynconf/engine/simulate.py",
    "dynconf/engine/batches.py",
    "dynconf/cli/record.py",
]
RAW_READS = {"open", "read_text", "read_bytes"}
LOADERS = {"load"}  # np.load / torch.load: only of a file object that open_regular returned


def raw_reads(path: Path) -> list[str]:
    """Calls that open a path without the regular-file check, as ``line: call``."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in RAW_READS:
            found.append(f"{node.lineno}: {name}")
        elif (
            name in LOADERS
            and isinstance(func, ast.Attribute)
            and getattr(func.value, "id", "") in ("np", "numpy", "torch")
        ):
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Name) and first.id == "fh"):
                found.append(f"{node.lineno}: {ast.unparse(func)}")
    return found


@pytest.mark.parametrize("module", OPENERS)
def test_every_file_opened_goes_through_the_regular_file_check(module):
    assert raw_reads(ROOT / module) == []


def test_the_grep_finds_a_raw_read(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import numpy as np\nnp.load(path)\nopen(p)\nwith x as fh:\n  np.load(fh)\n")
    assert raw_reads(sample) == ["2: np.load", "3: open"]


RECORD_SCRIPT = """
import sys, torch
from torch import nn
from spikingjelly.activation_based import neuron
from dynconf.errors import DynconfError
from dynconf.record import record_run
torch.manual_seed(0)
net = nn.Sequential(nn.Flatten(), nn.Linear(64, 4), neuron.IFNode(), nn.Linear(4, 3))
g = torch.Generator().manual_seed(0)
batches = [(torch.rand(4, 1, 8, 8, generator=g), torch.zeros(4, dtype=torch.long))] * 2
try:
    record_run(net, batches, T=2, out=sys.argv[1], progress=False)
except DynconfError as exc:
    sys.exit(f"error: {exc}")
"""


def writer_command(kind: str, out: Path) -> list[str]:
    if kind == "record":
        return [sys.executable, "-c", RECORD_SCRIPT, str(out)]
    return [sys.executable, "-m", "dynconf", "simulate", "--checkpoint", str(CHECKPOINT),
            "--dataset", "digits", "--T", "4", "--splits", "test", "--limit", "16",
            "--out", str(out), "--no-progress"]  # fmt: skip


@pytest.mark.parametrize("kind", ["record", "simulate"])
def test_both_writers_take_the_run_lock_and_resume_after_it(tmp_path, kind):
    """While another process holds the run's lock, the final write waits, then fails in one
    line with the finished batches kept; once the lock is free the same command completes."""
    from dynconf.core.locking import run_lock

    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DYNCONF_LOCK_TIMEOUT": "1"}
    with run_lock(out):
        held = subprocess.run(writer_command(kind, out), capture_output=True, text=True,
                              timeout=HANG_LIMIT_S * 2, env=env)  # fmt: skip
    assert held.returncode != 0 and "another process is writing this run" in held.stderr
    assert "Traceback" not in held.stderr and not out.exists()
    assert list((tmp_path / ".run.partial").glob("test-*.npz"))  # the work is kept
    done = subprocess.run(writer_command(kind, out), capture_output=True, text=True,
                          timeout=HANG_LIMIT_S * 2, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "meta.json").is_file() and not (tmp_path / ".run.partial").exists()
