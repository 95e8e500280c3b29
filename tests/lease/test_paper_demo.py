"""The lease command end to end on a CPU: train, simulate, pack, then assemble and tabulate.

The GPU machine's Python has torch, numpy, pandas and scikit-learn but neither Plotly,
Streamlit nor kaleido, so these runs block those imports in every process they start. The
digits rehearsal runs everywhere; the CIFAR-10 one (ResNet-18, L = 3, T = 27, the whole
JPEG tree through its pack) needs the dataset and is skipped without it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dynconf.core.store import load_run

ROOT = Path(__file__).resolve().parents[2]
DATA_ROOT = Path(os.environ.get("DYNCONF_DATA") or ROOT.parent / "shared" / "data")
NOT_ON_THE_GPU_MACHINE = ("plotly", "streamlit", "kaleido")
BLOCKER = f"""
import importlib.abc, sys
class _NotThere(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {NOT_ON_THE_GPU_MACHINE!r}:
            raise ImportError(f"{{name}} is not installed on the GPU machine")
sys.meta_path.insert(0, _NotThere())
"""
SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+\Z")


@pytest.fixture
def gpu_like_env(tmp_path):
    """Environment for child processes in which the app's packages cannot be imported."""
    site = tmp_path / "blocker"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))


def lease_command(module: str, *args, env, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", f"lease.{module}", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )


def test_the_blocker_blocks(gpu_like_env):
    done = subprocess.run(
        [sys.executable, "-c", "import plotly"], capture_output=True, text=True, env=gpu_like_env
    )
    assert done.returncode != 0 and "not installed on the GPU machine" in done.stderr


DIGITS = [
    "--dataset", "digits", "--arch", "digits_cnn", "--levels", "3", "--T", "8",
    "--max-epochs", "3", "--batch-size", "64", "--lr", "0.05", "--no-compile",
    "--device", "cpu", "--sim-batch-size", "128", "--run-name", "digits_l3",
]  # fmt: skip


@pytest.mark.slow
def test_digits_rehearsal_trains_simulates_packs_and_assembles(tmp_path, gpu_like_env):
    out, work = tmp_path / "OUT", tmp_path / "work"
    done = lease_command(
        "paper_demo", "--out", out, "--work", work, "--deadline-s", 400, "--reserve-s", 60,
        *DIGITS, env=gpu_like_env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert "failed" not in summary
    assert summary["train"]["epochs"] == 3  # the budget (about 340 s) allows all of --epochs
    assert summary["train"]["half_weights"] > 0
    assert set(summary["phases"]) >= {"data", "train", "simulate", "pack"}
    # what comes back fits the way back: at most 8 files of 16 MiB, plain names, one folder
    returned = sorted(out.iterdir())
    assert len(returned) <= 8 and all(p.is_file() for p in returned)
    assert all(SAFE_NAME.match(p.name) and p.stat().st_size <= 16 * 2**20 for p in returned)
    assert {"summary.json", "log.txt", "result.manifest.json"} <= {p.name for p in returned}
    log = (out / "log.txt").read_text()
    assert "--time-budget" in log and '"epoch": 3' in log  # the children's lines are in it
    assert summary["packed"]["files"][0] == "model.pt"

    into = tmp_path / "cached_runs"
    done = lease_command("assemble", out, "--into", into, "--check", 6, env=gpu_like_env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["cpu_check"]["passed"] and report["cpu_check"]["images"] == 6
    run = load_run(into / "digits_l3")
    assert run.T_max == 8 and (into / "digits_l3" / "model.pt").is_file()
    assert run.meta["levels"] == 3 and run.split("test").synops is not None
    assert report["gpu_summary"]["train"]["epochs"] == 3
    # the same name again is refused, and nothing is left half-made
    again = lease_command("assemble", out, "--into", into, "--check", 0, env=gpu_like_env)
    assert again.returncode == 2 and "exists" in again.stderr
    assert sorted(p.name for p in into.iterdir()) == ["digits_l3"]

    table = subprocess.run(
        [sys.executable, "-m", "lease.paper_table", str(into / "digits_l3"), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert table.returncode == 0, table.stderr
    numbers = json.loads(table.stdout)
    curve = np.cumsum(np.asarray(run.split("test").outputs), axis=0).argmax(2)
    labels = np.asarray(run.split("test").labels)
    for t, accuracy in numbers["by_t"].items():
        assert accuracy == pytest.approx(100 * (curve[int(t) - 1] == labels).mean())
    assert list(numbers["by_t"]) == ["1", "2", "4", "8"]


@pytest.mark.slow
def test_a_failed_simulation_still_sends_the_weights_back(tmp_path, gpu_like_env):
    out = tmp_path / "OUT"
    args = [a if a != "8" else "0" for a in DIGITS]  # T = 0: simulate refuses
    done = lease_command(
        "paper_demo", "--out", out, "--work", tmp_path / "work", "--deadline-s", 400,
        "--reserve-s", 60, *args, env=gpu_like_env,
    )  # fmt: skip
    assert done.returncode == 1
    summary = json.loads((out / "summary.json").read_text())
    assert "simulate failed" in summary["failed"]
    assert summary["packed"]["files"] == ["model.pt"]
    assert "--T must be at least 1" in (out / "log.txt").read_text()


def test_no_time_for_training_is_said_and_nothing_trains(tmp_path, gpu_like_env):
    out = tmp_path / "OUT"
    done = lease_command(
        "paper_demo", "--out", out, "--work", tmp_path / "work", "--deadline-s", 30,
        "--reserve-s", 60, *DIGITS, env=gpu_like_env,
    )  # fmt: skip
    assert done.returncode == 1
    summary = json.loads((out / "summary.json").read_text())
    assert "left for training" in summary["failed"] and summary["packed"] == {"files": []}
    assert not (tmp_path / "work" / "checkpoint").exists()


@pytest.mark.slow
def test_cifar10_rehearsal_through_the_pack(tmp_path, gpu_like_env):
    """The GPU command's exact path on a CPU: the whole CIFAR-10 tree packed and unpacked,
    ResNet-18 at L = 3 trained on 256 images for one epoch, 8 images of each split simulated
    for 27 steps, packed, assembled and re-simulated."""
    if not (DATA_ROOT / "cifar10").is_dir():
        pytest.skip(f"CIFAR-10 not under {DATA_ROOT} (set DYNCONF_DATA)")
    from lease.jpegpack import pack_tree

    pack = tmp_path / "cifar10.jpgpack"
    stats = pack_tree(DATA_ROOT / "cifar10", pack)
    assert stats["files"] == 60000 and stats["prefixes"] == 1
    out = tmp_path / "OUT"
    done = lease_command(
        "paper_demo", "--out", out, "--work", tmp_path / "work", "--data-pack", pack,
        "--deadline-s", 900, "--reserve-s", 600, "--max-epochs", 1, "--batch-size", 128,
        "--train-limit", 256, "--sim-limit", 8, "--sim-batch-size", 8, "--no-compile",
        "--device", "cpu", env=gpu_like_env, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["simulate"]["T_max"] == 27
    assert summary["simulate"]["splits"] == {"calibration": 8, "test": 8}
    into = tmp_path / "cached_runs"
    done = lease_command(
        "assemble", out, "--into", into, "--check", 4, "--data-root", tmp_path / "work" / "data",
        env=gpu_like_env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cpu_check"]["passed"]
    run = load_run(into / "cifar10_resnet18_l3")
    assert run.meta["arch"] == "resnet18" and run.meta["levels"] == 3
