"""The recorder's input pipeline is explicit: the SpikingJelly digits example, trained on raw
pixels x / 16 and recorded by the command line with ``--transform none``, equals its own loop
exactly; the dataset's normalisation gives other inputs (and says so in the meta); rate
coding works on the digits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("spikingjelly.activation_based")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
T = 8


@pytest.fixture(scope="module")
def example():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import spikingjelly_digits

        yield spikingjelly_digits
    finally:
        sys.path.remove(str(EXAMPLES))


@pytest.fixture(scope="module")
def trained_weights(example, tmp_path_factory):
    """The example's network after one epoch on raw pixels, saved as a state dict."""
    from common import digits_splits

    torch.manual_seed(0)
    net = example.build_network()
    example.train(net, digits_splits("none")["train"], epochs=1)
    path = tmp_path_factory.mktemp("weights") / "net.pt"
    torch.save(net.state_dict(), path)
    return net, path


def record_cli(tmp_path: Path, weights: Path, *extra: str) -> tuple[dict, Path]:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "dynconf", "record", "--model",
               "spikingjelly_digits:build_network", "--weights", str(weights), "--dataset",
               "digits", "--T", str(T), "--splits", "test", "--out", str(out), "--no-progress",
               "--json", *extra]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLES)])}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), out


def test_transform_none_equals_the_examples_own_loop(example, trained_weights, tmp_path):
    from common import digits_splits

    from dynconf.core.store import load_run

    net, weights = trained_weights
    own = example.own_loop(net, digits_splits("none")["test"], T).numpy()
    result, out = record_cli(tmp_path, weights, "--transform", "none")
    run = load_run(out)
    recorded = np.asarray(run.split("test").outputs)
    assert recorded.shape == own.shape
    np.testing.assert_array_equal(recorded, own)  # exactly, not approximately
    labels = np.asarray(run.split("test").labels)
    own_accuracy = float((own.sum(0).argmax(1) == labels).mean())
    assert result["accuracy_at_T"]["test"] == own_accuracy
    recording = run.meta["recording"]
    assert recording["transform"] == "none" and "pixels / 16" in recording["transform_detail"]


def test_normalisation_is_the_default_and_is_stated(trained_weights, tmp_path):
    from dynconf.core.store import load_run

    _, weights = trained_weights
    _, out = record_cli(tmp_path, weights)
    recording = load_run(out).meta["recording"]
    assert recording["transform"] == "normalize"
    assert "mean [0.5], std [0.5]" in recording["transform_detail"]


def test_poisson_works_on_digits(trained_weights, tmp_path):
    from dynconf.core.store import load_run

    _, weights = trained_weights
    _, out = record_cli(tmp_path, weights, "--encoder", "poisson")
    run = load_run(out)
    assert run.meta["recording"]["encoder"] == "poisson"
    assert run.meta["recording"]["transform"] == "none"  # rate coding takes [0, 1]
    assert np.isfinite(np.asarray(run.split("test").outputs)).all()
