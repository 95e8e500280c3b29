"""dynconf.core.compare: latency at matched accuracy, numpy only, rows for the compare page."""

from __future__ import annotations

import types

import numpy as np
import pytest

from dynconf.core import metrics
from dynconf.core.compare import CompareEntry, compare_table, latency_at_accuracy
from dynconf.core.decoders import decode
from dynconf.core.store import load_run


def toy_sweep(accuracy, latency):
    return types.SimpleNamespace(accuracy=np.asarray(accuracy), mean_latency=np.asarray(latency))


def test_latency_at_accuracy_is_the_fastest_threshold_reaching_it():
    sw = toy_sweep([0.5, 0.8, 0.9, 0.9], [1.0, 2.0, 5.0, 4.0])
    assert latency_at_accuracy(sw, 0.9) == 4.0
    assert latency_at_accuracy(sw, 0.8) == 2.0
    assert latency_at_accuracy(sw, 0.9 + 1e-13) == 4.0  # float noise still reaches
    assert latency_at_accuracy(sw, 0.95) is None


def test_compare_table_rows_by_hand():
    base = np.array([0.5, 0.7, 0.9, 0.92])
    sw = toy_sweep([0.6, 0.91, 0.92], [1.5, 2.5, 3.5])
    rows = compare_table([CompareEntry("a", base, sw)], [0.0, 0.01, 0.5])
    assert rows == [
        {
            "run / decoder": "a",
            "T_max accuracy (%)": pytest.approx(92.0),
            "latency @ -0 pp": 3.5,
            "fixed T @ -0 pp": 4,
            "latency @ -1 pp": 2.5,
            "fixed T @ -1 pp": 4,
            "latency @ -50 pp": 1.5,
            "fixed T @ -50 pp": 1,
        }
    ]
    never = compare_table([CompareEntry("b", base, toy_sweep([0.1], [1.0]))], [0.0])
    assert never[0]["latency @ -0 pp"] is None and never[0]["fixed T @ -0 pp"] == 4


def test_compare_table_on_a_run(dashboard_runs):
    run = load_run(dashboard_runs / "synth")
    dec = decode(run.split("test"))
    entry = CompareEntry("paper", metrics.baseline_curve(dec), metrics.sweep(dec))
    (row,) = compare_table([entry], [0.0])
    # At no drop the sweep reaches the T_max accuracy no later than T_max itself.
    assert row["latency @ -0 pp"] <= run.T_max + 1e-9
    assert row["T_max accuracy (%)"] == pytest.approx(100 * entry.baseline[-1])
