"""The runs shipped in cached_runs/: valid, consistent with their meta, free of calibration
leakage, and reproducible from their own checkpoint (when the dataset is at hand)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.store import load_run
from dynconf.engine.checkpoint import load_checkpoint, model_from_checkpoint
from dynconf.engine.snn import SpikingNetwork, simulate

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for p in (ROOT / "cached_runs").iterdir() if (p / "meta.json").is_file())
DATA_ROOT = Path(os.environ.get("DYNCONF_DATA") or ROOT.parent / "shared" / "data")


def test_both_default_runs_ship():
    assert {p.name for p in SHIPPED} >= {"digits", "cifar10_resnet20"}


@pytest.mark.parametrize("run_dir", SHIPPED, ids=lambda p: p.name)
def test_shipped_run_matches_its_meta(run_dir):
    run = load_run(run_dir)  # full validation: shapes, dtypes, finite values, labels
    assert {"calibration", "test"} <= set(run.split_names)
    assert run.T_max >= 64
    for name in ("calibration", "test"):
        split = run.split(name)
        baseline = metrics.baseline_curve(decode(split))
        for t, accuracy in run.meta["snn_accuracy_by_T"][name].items():
            assert baseline[int(t) - 1] == pytest.approx(accuracy, abs=1e-9)
        assert split.spikes is not None and np.all(np.asarray(split.spikes) >= 0)
    info = subprocess.run(
        [sys.executable, "-m", "dynconf", "info", str(run_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["meta"]["T_max"] == run.T_max


@pytest.mark.parametrize("run_dir", SHIPPED, ids=lambda p: p.name)
def test_calibration_images_were_held_out_of_training(run_dir):
    run = load_run(run_dir)
    config = load_checkpoint(run_dir / run.meta["checkpoint"])["config"]
    held_out = set(config["calibration_ids"])
    calibration_ids = np.asarray(run.split("calibration").ids)
    assert len(calibration_ids) and held_out >= set(calibration_ids.tolist())
    assert run.meta["id_source"]["calibration"] == "train"


def _images_by_id(run, split_name: str, count: int):
    """``count`` evenly spaced samples of a shipped split, re-read from the dataset."""
    from dynconf.engine.data import load_cifar10, load_dataset

    ids = np.asarray(run.split(split_name).ids)
    pick = np.linspace(0, len(ids) - 1, count).round().astype(int)
    if run.meta["dataset"] in ("digits", "noisy_digits"):
        source = load_dataset(run.meta["dataset"]).splits[split_name]
    else:
        if not (DATA_ROOT / "cifar10").is_dir():
            pytest.skip(f"CIFAR-10 not under {DATA_ROOT} (set DYNCONF_DATA)")
        source = load_cifar10(DATA_ROOT, splits=(split_name,)).splits[split_name]
    position = {int(i): p for p, i in enumerate(source.ids)}
    rows = np.asarray([position[int(i)] for i in ids[pick]])
    x, y, _ = next(source.take(rows).batches(count))
    return pick, x, y


@pytest.mark.parametrize("run_dir", SHIPPED, ids=lambda p: p.name)
def test_shipped_outputs_reproduce_from_the_shipped_checkpoint(run_dir):
    """Re-simulating a few test images with the run's own checkpoint gives its stored outputs.

    Exact up to float summation order: another batch size makes the convolutions round
    differently, which can move a spike that sits exactly at threshold by one step. So at most
    a few per-step entries differ, and the accumulated output at T_max is the same.
    """
    run = load_run(run_dir)
    pick, x, y = _images_by_id(run, "test", 6)
    split = run.split("test")
    assert np.array_equal(np.asarray(split.labels)[pick], y.numpy())
    torch.set_num_threads(os.cpu_count() or 1)
    ann = model_from_checkpoint(load_checkpoint(run_dir / run.meta["checkpoint"]))
    again = simulate(SpikingNetwork(ann), x, run.T_max).outputs
    stored = np.asarray(split.outputs)[:, pick]
    differs = np.abs(again - stored) > 1e-4 * (1 + np.abs(stored))
    assert differs.mean() < 0.01, f"{differs.mean():.2%} of per-step outputs differ"
    np.testing.assert_allclose(again.sum(0), stored.sum(0), rtol=1e-4, atol=1e-3)
    assert np.array_equal(again.sum(0).argmax(1), stored.sum(0).argmax(1))
