"""What the three examples share: the digits splits, the command line, the evaluation.

The framework-specific part (build, train, record) is in each example; this file holds only
the steps that do not depend on the framework.
"""

from __future__ import annotations

import argparse
import json
import tempfile

import torch

from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.engine.data import load_digits


def parse_args(description: str, epochs: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=None, help="folder for the run (default: a temp dir)")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--T", type=int, default=32, help="time steps recorded per image")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.out = args.out or tempfile.mkdtemp(prefix="dynconf-example-")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return args


def digits_splits(transform: str = "normalize"):
    """sklearn digits as dynconf splits it: train, calibration (held out of train), test.

    ``transform``: "normalize" ((x / 16 - 0.5) / 0.5, values in [-1, 1]) or "none" (raw
    pixels x / 16 in [0, 1]); `dynconf record --transform` takes the same names.
    """
    return load_digits().with_transform(transform).splits


def training_batches(split, batch_size=64, epoch=0):
    """Shuffled (x [B, 1, 8, 8], y) batches of a split, a new order each epoch."""
    for x, y, _ in split.batches(batch_size, shuffle=True, seed=epoch):
        yield x, y


def recording_batches(split, batch_size=128):
    """(x, y, ids) batches in order: the ids point back at sklearn's images."""
    return [(x, y, split.ids[pos]) for x, y, pos in split.batches(batch_size)]


def evaluate(run) -> dict:
    """Choose the confidence threshold on calibration, report it on test, and the oracle."""
    cal, test = run.split("calibration"), run.split("test")
    cal_dec, test_dec = decode(cal), decode(test)
    sel = metrics.select_threshold(
        cal_dec, test_dec, test_spikes=test.spikes, neurons=run.meta.get("neurons")
    )
    oracle = metrics.oracle(test_dec, variant="first_correct")
    result = {
        "run": str(run.path),
        "framework": run.meta["recording"]["framework"],
        "T_max": run.T_max,
        "neurons": run.meta.get("neurons"),
        "accuracy_at_T_max": sel.test.baseline_accuracy,
        "threshold": sel.threshold,
        "accuracy": sel.test.accuracy,
        "mean_latency": sel.test.mean_latency,
        "latency_reduction": sel.test.latency_reduction,
        "spike_saving": sel.test.spike_saving,
        "oracle_accuracy": oracle.accuracy,
        "oracle_mean_latency": oracle.mean_latency,
    }
    print(f"run: {run.path}  ({run.meta['recording']['framework']}, T_max = {run.T_max})")
    print(f"accuracy at T_max: {result['accuracy_at_T_max']:.2%}")
    print(
        f"Dynamic Confidence, C = {sel.threshold:.3f} chosen on calibration: test accuracy "
        f"{sel.test.accuracy:.2%} at {sel.test.mean_latency:.2f} steps "
        f"({sel.test.latency_reduction:.1%} fewer)"
        + ("" if sel.test.spike_saving is None else f", {sel.test.spike_saving:.1%} fewer spikes")
    )
    print(f"oracle (first correct step): {oracle.accuracy:.2%} at {oracle.mean_latency:.2f} steps")
    print(json.dumps(result))
    return result
