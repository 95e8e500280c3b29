"""Schedule: one confidence threshold per step, exit at the first t with c_t > C_t; else T_max.

A single threshold treats step 3 and step 50 alike; a schedule can ask early steps for more
(or less) confidence than late ones. The thresholds are fitted on calibration by backward
induction on a Lagrangian: with ``weight`` lambda (how many steps one correct answer is
worth) each sample that exits at t is worth lambda * correct_t - t, and going from the last
step backwards each C_t is the calibration value that maximises the total worth when the
samples above it exit at t and the others take what the later thresholds give them (exact:
every distinct calibration confidence at t is a candidate cut). lambda is the operating
parameter: the generic fit sweeps it and keeps the fastest schedule meeting the target.

Free per-step thresholds overfit a few thousand calibration samples (each meets the target
on calibration and loses on new data), so the fit is regularised: ``monotone`` asks each C_t
to be no lower than C_{t+1} (early steps never need less confidence than late ones), and
``blocks`` shares one threshold over each of a few log-spaced blocks of steps. The policy
fits the monotone per-step form, chosen by 5-fold cross-validation on calibration only.

Steps where everybody exits carry C_t = -inf, steps where nobody does C_t = 1.0 (no
confidence exceeds 1); in params, infinities are written "-inf" (JSON has none).
docs/POLICIES.md has the exact definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

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


def best_cut(score: np.ndarray, gain: np.ndarray, floor: float = -np.inf) -> float:
    """The threshold b >= ``floor`` maximising sum(gain[score > b]) over every distinct cut of
    ``score`` (ties: the higher b, which exits fewer samples): 1.0 for nobody, -inf for
    everybody."""
    if len(score) == 0:
        return 1.0
    order = np.argsort(-score, kind="stable")
    s = score[order]
    total = np.concatenate([[0.0], np.cumsum(gain[order])])  # exiting the j highest
    cuts = np.concatenate([[1.0], s[1:], [-np.inf]])  # the cut that exits the j highest
    valid = cuts >= floor
    valid[1:-1] &= s[:-1] > s[1:]  # a cut inside a run of ties is not a threshold
    total[~valid] = -np.inf
    return float(cuts[int(np.argmax(total))])  # argmax takes the first maximum: fewest exits


def block_starts(T: int, blocks: int | None) -> list[int]:
    """0-based first step of each block of steps 1..T-1 sharing one threshold: every step its
    own (None), or ``blocks`` log-spaced blocks (bounds round(geomspace(1, T, blocks + 1)),
    duplicates dropped, so short runs may get fewer); step T is never in one (all stop)."""
    if blocks is None:
        return list(range(T - 1))
    if int(blocks) != blocks or blocks < 1:
        raise DynconfError(f"schedule blocks must be a whole number >= 1, got {blocks!r}")
    bounds = np.unique(np.round(np.geomspace(1, T, int(blocks) + 1)).astype(int))
    return [int(b) - 1 for b in bounds[:-1]] if T > 1 else []


def fit_schedule(
    dec: Decoded, weight: float, blocks: int | None = None, monotone: bool = False
) -> tuple[float, ...]:
    """Thresholds by backward induction on weight * correct - latency, one per block of
    steps (block_starts; None: one per step); ``monotone``: each no lower than the next
    block's, so the schedule never asks early steps for less confidence (module doc)."""
    T = dec.T
    conf, correct = dec.confidence, dec.correct
    thresholds = np.full(T, -np.inf)  # at T everybody stops
    worth = weight * correct[-1] - T  # what each sample gets if it is still running at T
    starts = block_starts(T, blocks)
    for a, b in reversed(list(zip(starts, [*starts[1:], T - 1], strict=True))):
        block = conf[a:b]
        now = weight * correct[a:b] - np.arange(a + 1.0, b + 1.0)[:, None]
        # A sample exits in the block at its first step whose confidence beats the cut, so
        # only its running-maximum records matter: lowering the cut below a record moves its
        # exit to that record's step. Each record carries that change of worth, other values
        # none (they are still candidate cuts, and ties go to the higher one), and the best
        # cut over all values of all samples is the block's threshold.
        record = np.ones_like(block, dtype=bool)
        record[1:] = block[1:] > np.maximum.accumulate(block, axis=0)[:-1]
        change = np.zeros_like(block)
        later = worth
        for j in range(b - a - 1, -1, -1):
            change[j] = np.where(record[j], now[j] - later, 0.0)
            later = np.where(record[j], now[j], later)
        floor = thresholds[b] if monotone and b < T - 1 else -np.inf
        cut = best_cut(block.ravel(), change.ravel(), floor)
        thresholds[a:b] = cut
        passed = block > cut
        first = passed.argmax(axis=0)
        worth = np.where(passed.any(axis=0), now[first, np.arange(dec.N)], worth)
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
    """Thresholds C_1..C_T on the decoder's confidence, fitted with weight lambda."""

    thresholds: tuple[float, ...]
    weight: float | None = None  # lambda it was fitted with (None: given by hand)
    blocks: int | None = None  # log-spaced blocks sharing a threshold (None: one per step)
    monotone: bool = False  # fitted non-increasing in t
    name = "schedule"
    summary = "exit at the first step whose confidence is above that step's own threshold C_t"
    # How the fit regularises the schedule (docs/POLICIES.md, "schedule"): non-increasing in
    # t, one threshold per step. Chosen by 5-fold cross-validation on calibration only.
    BLOCKS: ClassVar[int | None] = None
    MONOTONE: ClassVar[bool] = True

    def __post_init__(self):
        self.thresholds = check_floats(self.thresholds, "schedule thresholds")
        if not self.thresholds:
            raise DynconfError("a schedule needs at least one threshold")

    @property
    def params(self) -> dict:
        return {
            "weight": self.weight,
            "blocks": self.blocks,
            "monotone": self.monotone,
            "thresholds": json_floats(self.thresholds),
        }

    def describe(self) -> str:
        weight = "by hand" if self.weight is None else f"lambda={self.weight:.4g}"
        shape = "per-step" if self.blocks is None else f"{self.blocks}-block"
        return f"{weight}, {'monotone ' if self.monotone else ''}{shape} thresholds"

    def exit_steps(self, dec: Decoded) -> np.ndarray:
        return first_above(dec.confidence, check_schedule(self.thresholds, dec.T))

    def online(self, decoder: str, kappa: float | None, T_max: int) -> OnlineRule:
        check_schedule(self.thresholds, T_max)
        return ScheduleOnline(self.thresholds, decoder, kappa)

    @classmethod
    def candidates(cls, cal: Decoded) -> list[ExitPolicy]:
        blocks, monotone = cls.BLOCKS, cls.MONOTONE
        fitted = [
            cls(fit_schedule(cal, w, blocks, monotone), w, blocks, monotone) for w in WEIGHT_GRID
        ]
        # The last candidate never exits early, so some candidate always meets the target.
        return [*fitted, cls((1.0,) * cal.T, None, blocks, monotone)]
