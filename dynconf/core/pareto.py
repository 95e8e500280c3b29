"""The accuracy-latency Pareto front of many operating points, and "near the front".

A policy swept over its operating parameter gives one (mean latency, accuracy) point per
value; the points no other point beats on both axes form the front, and a choice that sits
near the front (within a slack) is robust: small changes of the parameter cost little.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dynconf.errors import DynconfError

ACC_SLACK = 0.005  # default "near the front": at most 0.5 accuracy points below it
LAT_SLACK = 0.0  # ... at the same latency (in steps)
NEAR_EPS = 1e-12  # float tolerance when comparing accuracies of different points


@dataclass(eq=False)
class Sweep:
    """Many thresholds at once (ascending, unique) with the front and the near-front mask."""

    thresholds: np.ndarray
    accuracy: np.ndarray
    mean_latency: np.ndarray
    n_correct: np.ndarray  # int, exact
    on_front: np.ndarray  # bool: non-dominated (lower latency, higher accuracy)
    near_front: np.ndarray  # bool: see near_front()
    acc_slack: float
    lat_slack: float

    def to_dict(self) -> dict:
        return {
            "thresholds": self.thresholds.tolist(),
            "accuracy": self.accuracy.tolist(),
            "mean_latency": self.mean_latency.tolist(),
            "on_front": self.on_front.tolist(),
            "near_front": self.near_front.tolist(),
            "front": np.flatnonzero(self.on_front).tolist(),
            "acc_slack": self.acc_slack,
            "lat_slack": self.lat_slack,
        }


def _points(latency, accuracy) -> tuple[np.ndarray, np.ndarray]:
    lat = np.asarray(latency, dtype=np.float64)
    acc = np.asarray(accuracy, dtype=np.float64)
    if lat.shape != acc.shape or lat.ndim != 1:
        raise DynconfError("latency and accuracy must be 1-D arrays of the same length")
    if np.isnan(lat).any() or np.isnan(acc).any():
        raise DynconfError("latency and accuracy must not contain NaN")
    return lat, acc


def pareto_front(latency, accuracy) -> np.ndarray:
    """Mask of non-dominated points: no other point has latency <= and accuracy >= with one
    of them strict. Identical points are all kept."""
    lat, acc = _points(latency, accuracy)
    if lat.size == 0:
        return np.zeros(0, bool)
    order = np.lexsort((-acc, lat))  # latency ascending, accuracy descending within a tie
    lat_s, acc_s = lat[order], acc[order]
    group_start = np.searchsorted(lat_s, lat_s, side="left")
    running_best = np.maximum.accumulate(acc_s)
    best_lower_latency = np.where(
        group_start > 0, running_best[np.maximum(group_start - 1, 0)], -np.inf
    )
    on = (acc_s == acc_s[group_start]) & (acc_s > best_lower_latency)
    mask = np.empty(lat.size, bool)
    mask[order] = on
    return mask


def near_front(latency, accuracy, acc_slack=ACC_SLACK, lat_slack=LAT_SLACK) -> np.ndarray:
    """Mask of points near the front: point (L, A) is near iff A >= F(L - lat_slack) - acc_slack
    where F(x) = best accuracy among points with latency <= x (no such point: near). With both
    slacks 0 this is "no point is at least as fast and strictly more accurate"."""
    lat, acc = _points(latency, accuracy)
    if lat.size == 0:
        return np.zeros(0, bool)
    order = np.argsort(lat, kind="stable")
    lat_s = lat[order]
    running_best = np.maximum.accumulate(acc[order])
    count = np.searchsorted(lat_s, lat - lat_slack + NEAR_EPS, side="right")
    best = np.where(count > 0, running_best[np.maximum(count - 1, 0)], -np.inf)
    return acc >= best - acc_slack - NEAR_EPS


def _distinct(value: float, other: float, digits: int) -> str:
    """``value`` with enough digits to read differently from ``other``."""
    for d in range(digits, 17):
        text = f"{value:.{d}g}"
        if text != f"{other:.{d}g}":
            return text
    return repr(value)


def band_text(sweep: Sweep, band: tuple[float, float], t_max: int, digits: int = 4) -> str:
    """A band of swept thresholds as text: "[lo, hi]", and when the band reaches thresholds
    that never exit early (mean latency = T_max; C = 1 always is one), that those mean running
    every step, with the band's last threshold that does exit early."""
    lo, hi = float(band[0]), float(band[1])
    text = f"[{lo:.{digits}g}, {hi:.{digits}g}]"
    inside = (sweep.thresholds >= lo) & (sweep.thresholds <= hi)
    early = inside & (sweep.mean_latency < t_max - 1e-9)
    if not (inside & ~early).any():
        return text
    first_never = float(sweep.thresholds[inside & ~early].min())
    if not early.any():
        return f"{text} (no C in it exits early: every sample runs all {t_max} steps)"
    last = float(sweep.thresholds[early].max())
    never = "C = 1" if first_never == 1.0 else f"C >= {_distinct(first_never, last, digits)}"
    return (
        f"{text}; {never} never exits early (every sample runs all {t_max} steps), so the "
        f"band's last C that exits early is {_distinct(last, first_never, digits)}"
    )


def near_text(sweep: Sweep) -> str:
    """How many swept thresholds are near the front, and what "near" means."""
    n, near = len(sweep.thresholds), int(sweep.near_front.sum())
    faster = "faster" if sweep.lat_slack == 0 else f"at least {sweep.lat_slack:g} steps faster"
    what = f"no {faster} threshold is over {100 * sweep.acc_slack:g} accuracy points more accurate"
    if near == n and n > 1:
        return f"all {n:,} near it: for none of them is a {faster} threshold over " + (
            f"{100 * sweep.acc_slack:g} accuracy points more accurate"
        )
    return f"{near:,} near it ({what})"
