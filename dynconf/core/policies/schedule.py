"""Schedule: one confidence threshold per step, exit at the first t with c_t > C_t; else T_max.

A single threshold treats step 3 and step 50 alike; a schedule can ask early steps for more
(or less) confidence than late ones. The thresholds are fitted on calibration by backward
induction on a Lagrangian: with ``weight`` lambda (how many steps one correct answer is
worth) each sample that exits at t is worth lambda * correct_t - t, and going from the last
step backwards each C_t is the calibration value that maximises the total worth when the
samples above it exit at t and the others take what the later thresholds give them (exact:
every distinct calibration confidence at t is a candidate cut). lambda is the operating
parameter: the generic fit sweeps it and keeps the fastest schedule meeting the target.

Steps where everybody exits carry C_t = -inf, steps where nobody does C_t = 1.0 (no
confidence exceeds 1); in params, infinities are written "-inf" (JSON has none).
docs/POLICIES.md has the exact definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dynconf.core.decoders import Decoded, get_decoder
from dynconf.core.policies.base import ExitPolicy, OnlineRule, check_floats, json_floats
from dynconf.errors import DynconfError

WEIGHT_GRID = tuple(float(w) for w in np.geomspace(4.0, 16384.0, 25))  # steps per correct


def first_above(score: np.ndarray, thresholds) -> np.ndarray:
    """1-based first t with score[t] > thresholds[t] per sample ([T, N] scores), T if none."""
    T = score.shape[0]
    passed = score > np.asarray(thresholds, dtype=np.float64)[:T, None]
    return np.where(passed.any(axis=0), passed.argmax(axis=0) + 1, T).astype(np.int32)


def check_schedule(thresholds, T: int) -> np.ndarray:
    if len(thresholds) < T:
        raise DynconfError(f"the schedule has {len(thresholds)} thresholds, the split {T} steps")
    return np.asarray(thresholds, dtype=np.float64)


def best_cut(score: np.ndarray, gain: np.ndarray) -> float:
    """The threshold b maximising sum(gain[score > b]) over every distinct cut of ``score``
    (ties: the higher b, which exits fewer samples): 1.0 for nobody, -inf for everybody."""
    order = np.argsort(-score, kind="stable")
    s = score[order]
    total = np.concatenate([[0.0], np.cumsum(gain[order])])  # exiting the j highest
    valid = np.ones(len(total), bool)
    valid[1:-1] = s[:-1] > s[1:]  # a cut inside a run of ties is not a threshold
    total[~valid] = -np.inf
    j = int(np.argmax(total))  # argmax takes the first maximum: the fewest exits
    if j == 0:
        return 1.0
    return -np.inf if j == len(s) else float(s[j])


def fit_schedule(dec: Decoded, weight: float) -> tuple[float, ...]:
    """Per-step thresholds by backward induction on weight * correct - latency (module doc)."""
    T = dec.T
    conf, correct = dec.confidence, dec.correct
    thresholds = np.full(T, -np.inf)  # at T everybody stops
    worth = weight * correct[-1] - T  # what each sample gets if it is still running at T
    for t in range(T - 2, -1, -1):
        now = weight * correct[t] - (t + 1.0)
        thresholds[t] = best_cut(conf[t], now - worth)
        worth = np.where(conf[t] > thresholds[t], now, worth)
    return tuple(float(c) for c in thresholds)


class ScheduleOnline(OnlineRule):
    """c_t > C_t for each row's own t: no memory."""

    def __init__(self, thresholds, decoder: str, kappa: float | None):
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.decoder, self.kappa = get_decoder(decoder), kappa

    def step(self, S, z, t):
        t = np.asarray(t)
        c = self.decoder.confidence(S, z, t.astype(np.float64), self.kappa)
        return c > self.thresholds[np.minimum(t, len(self.thresholds)) - 1]


@dataclass
class Schedule(ExitPolicy):
    """Per-step thresholds C_1..C_T on the decoder's confidence, fitted with weight lambda."""

    thresholds: tuple[float, ...]
    weight: float | None = None  # lambda it was fitted with (None: given by hand)
    name = "schedule"
    summary = "exit at the first step whose confidence is above that step's own threshold C_t"

    def __post_init__(self):
        self.thresholds = check_floats(self.thresholds, "schedule thresholds")
        if not self.thresholds:
            raise DynconfError("a schedule needs at least one threshold")

    @property
    def params(self) -> dict:
        return {"weight": self.weight, "thresholds": json_floats(self.thresholds)}

    def describe(self) -> str:
        weight = "by hand" if self.weight is None else f"lambda={self.weight:.4g}"
        return f"{weight}, {len(self.thresholds)} per-step thresholds"

    def exit_steps(self, dec: Decoded) -> np.ndarray:
        return first_above(dec.confidence, check_schedule(self.thresholds, dec.T))

    def online(self, decoder: str, kappa: float | None, T_max: int) -> OnlineRule:
        check_schedule(self.thresholds, T_max)
        return ScheduleOnline(self.thresholds, decoder, kappa)

    @classmethod
    def candidates(cls, cal: Decoded) -> list[ExitPolicy]:
        # The last candidate never exits early, so some candidate always meets the target.
        never = cls((1.0,) * cal.T, None)
        return [*(cls(fit_schedule(cal, w), w) for w in WEIGHT_GRID), never]
