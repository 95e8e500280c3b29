"""The oracle: the best any exit rule could do if it knew the label (paper Fig. 1).

Two readings of "the right step to stop" (docs/METHOD.md section 5): first_correct stops at the
first step whose answer is right; stays_correct (SNNCutoff's) at the earliest step from which
the answer stays right up to T_max. Samples never right count as wrong and take the cap or
one step, a convention shown both ways.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dynconf.core.decoders import Decoded
from dynconf.core.results import Curve
from dynconf.errors import DynconfError


@dataclass(eq=False)
class OracleResult:
    variant: str
    never_correct: str
    cap: int
    accuracy: float
    mean_latency: float
    steps: np.ndarray  # [N] 1-based oracle exit step
    correct: np.ndarray  # [N] bool: correct at its oracle step

    def to_dict(self, per_sample: bool = False) -> dict:
        d = {
            "variant": self.variant,
            "never_correct": self.never_correct,
            "cap": int(self.cap),
            "accuracy": float(self.accuracy),
            "mean_latency": float(self.mean_latency),
        }
        if per_sample:
            d["steps"] = self.steps.tolist()
        return d


ORACLE_VARIANTS = ("first_correct", "stays_correct")
NEVER_CORRECT = ("cap", "step1")


def _oracle_steps(dec: Decoded, variant: str) -> np.ndarray:
    """Oracle step over the whole run (1-based), T+1 where none exists."""
    key = ("oracle", variant)
    if key in dec.cache:
        return dec.cache[key]
    correct, T = dec.correct, dec.T
    if variant == "first_correct":
        steps = np.where(correct.any(axis=0), correct.argmax(axis=0) + 1, T + 1)
    elif variant == "stays_correct":
        # earliest t with correct on every step t..T: one past the last wrong step
        wrong_from_end = ~correct[::-1]
        last_wrong = np.where(wrong_from_end.any(axis=0), T - wrong_from_end.argmax(axis=0), 0)
        steps = np.where(correct[-1], last_wrong + 1, T + 1)
    else:
        raise DynconfError(
            f"unknown oracle variant {variant!r} (choose from {', '.join(ORACLE_VARIANTS)})"
        )
    steps = steps.astype(np.int64)
    dec.cache[key] = steps
    return steps


def _check_never(never_correct: str) -> None:
    if never_correct not in NEVER_CORRECT:
        raise DynconfError(
            f"never_correct must be one of {', '.join(NEVER_CORRECT)}, got {never_correct!r}"
        )


def oracle(
    dec: Decoded, variant: str = "first_correct", never_correct: str = "cap", cap: int | None = None
) -> OracleResult:
    """Oracle exit within cap (default T). first_correct: first correct step; stays_correct:
    earliest step after which the prediction stays correct up to T (the horizon is always T).
    Samples with no such step <= cap are wrong and take `cap` steps ("cap") or 1 ("step1")."""
    _check_never(never_correct)
    T = dec.T
    cap = T if cap is None else int(cap)
    if not 1 <= cap <= T:
        raise DynconfError(f"cap must be in 1..{T}, got {cap}")
    best = _oracle_steps(dec, variant)
    found = best <= cap
    steps = np.where(found, best, cap if never_correct == "cap" else 1)
    return OracleResult(
        variant=variant,
        never_correct=never_correct,
        cap=cap,
        accuracy=int(found.sum()) / dec.N,
        mean_latency=float(steps.sum()) / dec.N,
        steps=steps,
        correct=found,
    )


def oracle_curve(dec: Decoded, variant: str = "first_correct", never_correct: str = "cap") -> Curve:
    """The oracle upper-bound curve: one point per cap 1..T (paper Fig. 1, red)."""
    _check_never(never_correct)
    T, N = dec.T, dec.N
    best = _oracle_steps(dec, variant)
    found_by = np.cumsum(np.bincount(best, minlength=T + 2)[1 : T + 1])
    steps_by = np.cumsum(np.bincount(best, weights=best, minlength=T + 2)[1 : T + 1])
    caps = np.arange(1, T + 1)
    fallback = caps if never_correct == "cap" else np.ones(T, np.int64)
    latency = (steps_by + fallback * (N - found_by)) / N
    return Curve(caps, latency, found_by / N)
