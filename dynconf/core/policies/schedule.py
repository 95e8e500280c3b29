"""Schedule: one confidence threshold per step, exit at the first t with c_t > C_t; else T_max.

A single threshold treats step 3 and step 50 alike; a schedule can ask early steps for more
(or less) confidence than late ones. The thresholds are fitted on calibration by backward
induction on a Lagrangian: with ``weight`` lambda (how many steps one correct answer is
worth) each sample that exits at t is worth lambda * correct_t - t, and going from the last
step backwards each C_t is the calibration value that maximises the total worth when the
samples above it exit at t and the others take what the later thresholds give them (exact:
every distinct calibration confidence at t is a candidate cut). lambda is the operating
parameter: the fit sweeps it and keeps the fastest schedule meeting the target. With one
threshold per step (the default) each step's calibration confidences are sorted once
(SortedSteps) and every lambda's induction reuses that order: one cumulative sum per step
and lambda, no sort.

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

import numpy as np

from dynconf.core.decoders import Decoded, get_decoder
from dynconf.core.policies.base import (
    ExitPolicy,
    OnlineRule,
    check_floats,
    fastest,
    json_floats,
)
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


class SortedSteps:
    """Each step's calibration confidences sorted once, high to low, for every lambda.

    ``cuts[t, j]`` is the threshold that exits the j highest at step t (1.0: nobody, -inf:
    everybody), ``distinct[t, j]`` whether that set is {c_t > cut} (not inside a run of ties).
    """

    def __init__(self, dec: Decoded):
        conf = dec.confidence
        T, N = conf.shape
        self.order = np.empty((T, N), np.int32)
        self.cuts = np.empty((T, N + 1))
        self.cuts[:, 0], self.cuts[:, N] = 1.0, -np.inf
        self.distinct = np.ones((T, N + 1), bool)
        self.correct = np.empty((T, N), dec.correct.dtype)
        for t in range(T):  # one step at a time: no [T, N] temporaries besides the results
            order = np.argsort(-conf[t], kind="stable")
            values = conf[t][order]
            self.order[t] = order
            self.cuts[t, 1:N] = values[1:]
            np.greater(values[:-1], values[1:], out=self.distinct[t, 1:N])
            self.correct[t] = dec.correct[t][order]

    def induction(self, dec: Decoded, weight: float, monotone: bool) -> tuple[float, ...]:
        """fit_schedule with one threshold per step, from the shared order (same result)."""
        T = dec.T
        thresholds = np.full(T, -np.inf)
        worth = weight * dec.correct[-1] - T
        total = np.empty(dec.N + 1)
        total[0] = 0.0
        for t in range(T - 2, -1, -1):
            order = self.order[t]
            gain = weight * self.correct[t] - (t + 1.0) - worth[order]
            np.cumsum(gain, out=total[1:])
            valid = self.distinct[t]
            if monotone and t + 1 < T - 1:
                valid = valid & (self.cuts[t] >= thresholds[t + 1])
            j = int(np.argmax(np.where(valid, total, -np.inf)))  # first maximum: fewest exits
            thresholds[t] = self.cuts[t, j]
            exited = order[:j]
            worth[exited] = weight * dec.correct[t, exited] - (t + 1.0)
        return tuple(float(c) for c in thresholds)


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


def fitted_schedule(dec: Decoded, weight: float, blocks, monotone: bool) -> tuple[float, ...]:
    """fit_schedule memoised on dec; per-step schedules through the shared SortedSteps."""
    key = ("schedule", float(weight), blocks, bool(monotone))
    if key not in dec.cache:
        if blocks is None:
            if "schedule_sorted" not in dec.cache:
                dec.cache["schedule_sorted"] = SortedSteps(dec)
            dec.cache[key] = dec.cache["schedule_sorted"].induction(dec, weight, monotone)
        else:
            dec.cache[key] = fit_schedule(dec, weight, blocks, monotone)
    return dec.cache[key]


class Schedule(ExitPolicy):
    """Thresholds C_1..C_T on the decoder's confidence (module doc).

    ``thresholds``: a schedule given by hand (no fit needed); else the fit runs the induction
    at ``weight`` lambda (None: swept over WEIGHT_GRID, the fastest meeting the target kept),
    with ``blocks`` log-spaced blocks sharing a threshold (None: one per step) and
    ``monotone`` (non-increasing in t; the default, chosen by 5-fold cross-validation on
    calibration, docs/POLICIES.md)."""

    name = "schedule"
    summary = "exit at the first step whose confidence is above that step's own threshold C_t"

    def __init__(self, weight=None, blocks=None, monotone: bool = True, thresholds=None):
        self.weight = weight
        self.blocks = blocks
        self.monotone = monotone
        self.thresholds = thresholds

    def ready(self) -> bool:
        return self.thresholds is not None

    def fit_given(self) -> None:
        thresholds = check_floats(self.thresholds, "schedule thresholds")
        if not thresholds:
            raise DynconfError("a schedule needs at least one threshold")
        self.thresholds_, self.weight_ = thresholds, None

    def fit(self, cal: Decoded, tolerance: float = 0.0) -> Schedule:
        self.clear_fit()
        if self.ready():
            self.fit_given()
            return self
        if self.weight is not None:
            weight = float(self.weight)
            self.thresholds_ = fitted_schedule(cal, weight, self.blocks, self.monotone)
            self.weight_ = weight
            return self
        best = fastest(cal, tolerance, self.candidates(cal), self.name)
        self.set_fitted(best.fitted_state())
        return self

    @property
    def params(self) -> dict:
        self.check_fitted()
        return {
            "weight": self.weight_,
            "blocks": self.blocks,
            "monotone": bool(self.monotone),
            "thresholds": json_floats(self.thresholds_),
        }

    def describe(self) -> str:
        self.check_fitted()
        weight = "by hand" if self.weight_ is None else f"lambda={self.weight_:.4g}"
        shape = "per-step" if self.blocks is None else f"{self.blocks}-block"
        return f"{weight}, {'monotone ' if self.monotone else ''}{shape} thresholds"

    def exit_steps(self, dec: Decoded) -> np.ndarray:
        self.check_fitted()
        return first_above(dec.confidence, check_schedule(self.thresholds_, dec.T))

    def online(self, decoder: str, kappa: float | None, T_max: int) -> OnlineRule:
        self.check_fitted()
        check_schedule(self.thresholds_, T_max)
        return ScheduleOnline(self.thresholds_, decoder, kappa)

    def candidates(self, cal: Decoded) -> list[ExitPolicy]:
        weights = WEIGHT_GRID if self.weight is None else (float(self.weight),)
        fitted = [
            Schedule(w, self.blocks, self.monotone).fit(cal, 0.0) for w in weights
        ]
        # The last candidate never exits early, so some candidate always meets the target.
        never = Schedule(None, self.blocks, self.monotone, (1.0,) * cal.T).fit(cal)
        return [*fitted, never]
