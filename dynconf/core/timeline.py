"""Dynamic Confidence as it unfolds: where the exits stand after step t, for the Classroom page.

The published numbers (dynconf.core.results) are the end of the story, after T_max steps.
A class watching time pass needs the middle of it: after step t, which samples have already
answered (c_s > C at some s <= t, the threshold rule of docs/METHOD.md section 3), how many of
those answers are right, how long they took, and the exit histogram so far. Everything is
read off the final exit steps tau_i (a sample has exited by t iff tau_i <= t), so the story
at t = T_max is exactly the published result. Samples that never pass C answer at T_max
(tau_i = T_max) and count as exited only there; ``never_passed`` tells them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dynconf.core.decoders import Decoded
from dynconf.core.policies.base import check_threshold
from dynconf.core.policies.threshold import threshold_cache
from dynconf.core.results import at_steps
from dynconf.errors import DynconfError


@dataclass(eq=False)
class TimelineState:
    """The exits of one split under threshold C after step t (1-based, 1..T)."""

    t: int
    T: int
    threshold: float
    exit_steps: np.ndarray  # [N] final tau_i, 1-based
    correct_at_exit: np.ndarray  # [N] bool: the final answer is right
    never_passed: np.ndarray  # [N] bool: c_t <= C at every step (answers at T by rule)
    exited: np.ndarray  # [N] bool: tau_i <= t
    n_exited: int
    n_correct_exited: int  # exited and right
    accuracy_exited: float | None  # of the answers given so far (None before any)
    mean_latency_exited: float | None  # mean tau_i of the answers given so far
    steps_spent: float  # mean over all samples of min(tau_i, t): time used so far
    accuracy_now: float  # exited answers + every running sample's answer at t (cap at t)
    fixed_accuracy: float  # every sample answering at t (the fixed-T baseline at t)
    exits_correct: np.ndarray  # [T] right answers given at each step s <= t (0 after t)
    exits_wrong: np.ndarray  # [T] wrong answers given at each step s <= t (0 after t)

    @property
    def N(self) -> int:
        return int(self.exit_steps.shape[0])

    @property
    def running(self) -> np.ndarray:
        return ~self.exited


def check_step(t, T: int) -> int:
    """t as an int in 1..T, or a DynconfError saying so."""
    try:
        step = int(t)
    except (TypeError, ValueError):
        raise DynconfError(f"step t must be an integer, got {t!r}") from None
    if step != t or not 1 <= step <= T:
        raise DynconfError(f"step t must be an integer in 1..{T}, got {t!r}")
    return step


def timeline_state(dec: Decoded, threshold: float, t: int) -> TimelineState:
    """Where the threshold rule with C = ``threshold`` stands after step ``t``."""
    c = check_threshold(threshold)
    T, N = dec.T, dec.N
    t = check_step(t, T)
    steps = threshold_cache(dec).exit_steps(c)
    correct = at_steps(dec, steps, dec.correct)
    # max_t c_t <= C means no step passes; such samples exit at T only because the run ends.
    never = dec.confidence.max(axis=0) <= c if N else np.zeros(0, bool)
    exited = steps <= t
    n_exited = int(exited.sum())
    n_ok = int((correct & exited).sum())
    spent = np.minimum(steps, t)
    # Capped at t: exited samples keep their answer, running ones answer with argmax S_t now.
    now = np.where(exited, correct, dec.correct[t - 1])
    ok_counts = np.bincount(steps[correct & exited], minlength=T + 1)[1:]
    bad_counts = np.bincount(steps[~correct & exited], minlength=T + 1)[1:]
    return TimelineState(
        t=t,
        T=T,
        threshold=c,
        exit_steps=steps,
        correct_at_exit=correct,
        never_passed=never,
        exited=exited,
        n_exited=n_exited,
        n_correct_exited=n_ok,
        accuracy_exited=n_ok / n_exited if n_exited else None,
        mean_latency_exited=float(steps[exited].sum(dtype=np.int64)) / n_exited
        if n_exited
        else None,
        steps_spent=float(spent.sum(dtype=np.int64)) / N if N else 0.0,
        accuracy_now=int(now.sum()) / N if N else 0.0,
        fixed_accuracy=int(dec.correct[t - 1].sum()) / N if N else 0.0,
        exits_correct=ok_counts.astype(np.int64),
        exits_wrong=bad_counts.astype(np.int64),
    )


def example_sample(dec: Decoded, threshold: float) -> int:
    """A sample worth watching (its position in the split): answered right, neither at the
    first step nor only at the end, preferably wrong at step 1 (so the class sees the answer
    change as confidence rises), with the median exit step of such samples; ties go to the
    lowest position. Falls back to any sample with the median exit step, then to 0."""
    if dec.N == 0:
        raise DynconfError("the split has no samples")
    c = check_threshold(threshold)
    steps = threshold_cache(dec).exit_steps(c)
    correct = at_steps(dec, steps, dec.correct)
    middle = (steps > 1) & (steps < dec.T) & correct
    for pool in (middle & ~dec.correct[0], middle, np.ones(dec.N, bool)):
        candidates = np.flatnonzero(pool)
        if candidates.size:
            median = np.median(steps[candidates])
            gap = np.abs(steps[candidates] - median)
            return int(candidates[np.argmin(gap)])  # argmin: the first of the closest
    return 0
