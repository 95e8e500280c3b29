"""The examples run as a user runs them (a subprocess each, briefly trained) and their runs
hold what they say: calibration and test splits, spikes, numbers that match the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.store import load_run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {
    "spikingjelly_digits": ("spikingjelly", "spikingjelly", 128),
    "snntorch_digits": ("snntorch", "snntorch", 128),
    "ann2snn_digits": ("spikingjelly", "spikingjelly", 192),
}


@pytest.fixture(scope="module")
def example_results(tmp_path_factory):
    """All three examples at once (one thread each), 3 epochs, T = 16."""
    out = tmp_path_factory.mktemp("examples")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = {}
    for name, (package, _, _) in EXAMPLES.items():
        pytest.importorskip(package)
        command = [sys.executable, str(ROOT / "examples" / f"{name}.py"), "--epochs", "3"]
        command += ["--T", "16", "--threads", "1", "--out", str(out)]
        procs[name] = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    results = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name}: {stderr[-2000:]}"
        results[name] = (json.loads(stdout.strip().splitlines()[-1]), stdout)
    return results


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_example_records_and_evaluates_a_run(example_results, name):
    result, stdout = example_results[name]
    _, framework, neurons = EXAMPLES[name]
    run = load_run(result["run"])
    assert run.split_names == ("calibration", "test") and run.T_max == 16
    assert run.meta["recording"]["framework"] == result["framework"] == framework
    assert run.meta["neurons"] == result["neurons"] == neurons
    assert run.meta["dataset"] == "digits"
    assert np.asarray(run.split("test").spikes).sum() > 0
    # trained, however briefly: far above chance (10 %)
    assert result["accuracy_at_T_max"] > 0.6, stdout
    # the printed numbers are those of the run
    cal, test = decode(run.split("calibration")), decode(run.split("test"))
    sel = metrics.select_threshold(
        cal, test, test_spikes=run.split("test").spikes, neurons=run.meta["neurons"]
    )
    assert sel.threshold == result["threshold"]
    assert sel.test.accuracy == result["accuracy"]
    assert sel.test.mean_latency == result["mean_latency"]
    assert metrics.oracle(test).accuracy == result["oracle_accuracy"]
    assert "Dynamic Confidence, C = " in stdout and "oracle (first correct step)" in stdout
