"""Comparing runs and decoders: the latency each needs to reach a matched accuracy.

Targets are relative to each entry's own accuracy at T_max, so runs of different difficulty
can share one table; next to each latency stands the fixed T the baseline needs for the same
target. The compare page draws the entries (dynconf.report.plane.compare) and shows this table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Accuracies equal up to float noise count as reaching the target.
REACH_EPS = 1e-12


@dataclass
class CompareEntry:
    """One (run, split, decoder) being compared."""

    label: str
    baseline: np.ndarray  # fixed-T accuracy, t = 1..T
    sweep: Any  # metrics.Sweep


def latency_at_accuracy(sweep: Any, target: float) -> float | None:
    """Lowest mean latency among swept thresholds whose accuracy reaches ``target``."""
    acc, lat = np.asarray(sweep.accuracy, dtype=float), np.asarray(sweep.mean_latency)
    ok = acc >= target - REACH_EPS
    return float(lat[ok].min()) if ok.any() else None


def compare_table(entries: Sequence[CompareEntry], drops: Sequence[float]) -> list[dict[str, Any]]:
    """One row per entry: mean latency to reach its T_max accuracy minus each drop.

    ``drops`` are fractions (0.01 = one percentage point). Each row has "run / decoder",
    "T_max accuracy (%)" and, per drop, "latency @ -1 pp" and "fixed T @ -1 pp" (the first T
    whose baseline reaches the target). None: the target is never reached.
    """
    rows = []
    for e in entries:
        base = np.asarray(e.baseline, dtype=float)
        row: dict[str, Any] = {"run / decoder": e.label, "T_max accuracy (%)": 100 * base[-1]}
        for d in drops:
            target = base[-1] - d
            reach = np.flatnonzero(base >= target - REACH_EPS)
            tag = f"-{100 * d:g} pp"
            row[f"latency @ {tag}"] = latency_at_accuracy(e.sweep, target)
            row[f"fixed T @ {tag}"] = int(reach[0] + 1) if len(reach) else None
        rows.append(row)
    return rows
