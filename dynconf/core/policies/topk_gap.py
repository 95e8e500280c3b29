"""Top-2 gap schedule (SNNCutoff's top-k cutoff, reimplemented from its definition).

gap_t = S_t[top1] - S_t[top2], the raw gap between the two largest accumulated outputs. For
each step t, beta_t is the smallest value such that, among calibration samples with
gap_t > beta_t, the share whose stays-correct oracle step is <= t is at least 1 - epsilon;
a sample exits at the first t with gap_t > beta_t, else T_max. epsilon is the operating
parameter (the generic fit sweeps EPSILON_GRID; epsilon = 0 never loses accuracy against
T_max on calibration, so the fit always has a candidate).

The raw gap is not a decoder output, but the ``gap`` decoder's confidence
c_t = 1 - exp(-gap_t / kappa) is a strictly increasing map of it, so gap_t > beta_t <=>
c_t > 1 - exp(-beta_t / kappa): the policy runs on a split decoded with ``gap`` (``decoder``
says so; comparison and the CLI decode accordingly) and keeps its thresholds in that
confidence scale, with the kappa they were fitted at, so the cached and online forms compare
the very same floats. ``betas`` gives them back as raw gaps.

Choices the definition leaves open (docs/POLICIES.md): the candidate betas at t are the
distinct calibration gaps at t (a cut between two of them) plus -inf (everybody); an empty
set never qualifies, so a step where no cut qualifies gets beta_t = +inf (nobody exits
there); "share >= 1 - epsilon" is tested as bad <= epsilon * n (+1e-9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dynconf.core.decoders import Decoded
from dynconf.core.decoders.gap import DECODER as GAP_DECODER
from dynconf.core.oracle import _oracle_steps
from dynconf.core.policies.base import ExitPolicy, OnlineRule, check_floats, json_floats
from dynconf.core.policies.schedule import ScheduleOnline, check_schedule, first_above
from dynconf.errors import DynconfError

EPSILON_GRID = (0.0, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03,
                0.05, 0.075, 0.1, 0.15, 0.2)  # fmt: skip
SLACK = 1e-9
GAP = GAP_DECODER.name  # the decoder whose confidence is a monotone map of the raw gap


def smallest_qualifying_cut(score: np.ndarray, good: np.ndarray, epsilon: float) -> float:
    """The smallest b with share(good | score > b) >= 1 - epsilon over the cuts of ``score``
    (-inf: everybody; 1.0, which no gap confidence exceeds, when no non-empty set qualifies)."""
    order = np.argsort(-score, kind="stable")
    s = score[order]
    n_in = np.arange(1, len(s) + 1)  # the set of the j highest, j = 1..N
    bad = n_in - np.cumsum(good[order])
    valid = np.ones(len(s), bool)
    valid[:-1] = s[:-1] > s[1:]  # j highest form {score > s[j]} only between distinct values
    ok = np.flatnonzero(valid & (bad <= epsilon * n_in + SLACK))
    if ok.size == 0:
        return 1.0
    j = int(ok[-1]) + 1  # the largest qualifying set has the smallest threshold
    return -math.inf if j == len(s) else float(s[j])


def fit_betas(cal: Decoded, epsilon: float) -> tuple[float, ...]:
    """Per-step thresholds on the gap confidence of ``cal`` (module doc)."""
    safe_from = _oracle_steps(cal, "stays_correct")  # T + 1 where never
    return tuple(
        smallest_qualifying_cut(cal.confidence[t], safe_from <= t + 1, epsilon)
        for t in range(cal.T)
    )


def check_gap_decoded(dec: Decoded) -> None:
    if dec.decoder != GAP:
        raise DynconfError(
            f"policy 'topk_gap' reads the raw top-2 gap: decode the split with decoder '{GAP}' "
            f"(got '{dec.decoder}')"
        )


@dataclass
class TopkGap(ExitPolicy):
    """Per-step thresholds on the raw top-2 gap, from a calibration precision target."""

    thresholds: tuple[float, ...]  # on the gap confidence 1 - exp(-gap / kappa)
    kappa: float
    epsilon: float | None = None
    name = "topk_gap"
    summary = (
        "exit at the first step whose raw top-2 gap of S_t is above that step's beta_t "
        "(SNNCutoff's rule)"
    )
    decoder = GAP

    def __post_init__(self):
        self.thresholds = check_floats(self.thresholds, "topk_gap thresholds")
        self.kappa = float(self.kappa)
        if not math.isfinite(self.kappa) or self.kappa <= 0:
            raise DynconfError(f"kappa must be a finite number > 0, got {self.kappa}")

    @property
    def betas(self) -> np.ndarray:
        """The thresholds as raw gaps (+inf: nobody exits at that step)."""
        with np.errstate(divide="ignore"):
            return -self.kappa * np.log1p(-np.asarray(self.thresholds))

    @property
    def params(self) -> dict:
        return {
            "epsilon": self.epsilon,
            "kappa": self.kappa,
            "thresholds": json_floats(self.thresholds),
        }

    def describe(self) -> str:
        eps = "by hand" if self.epsilon is None else f"epsilon={self.epsilon:g}"
        return f"{eps}, {len(self.thresholds)} per-step betas"

    def thresholds_at(self, kappa: float) -> np.ndarray:
        """The thresholds for a split decoded at another kappa (exact only at self.kappa)."""
        if math.isclose(kappa, self.kappa, rel_tol=0, abs_tol=0):
            return np.asarray(self.thresholds)
        return -np.expm1(-self.betas / kappa)

    def exit_steps(self, dec: Decoded) -> np.ndarray:
        check_gap_decoded(dec)
        check_schedule(self.thresholds, dec.T)
        return first_above(dec.confidence, self.thresholds_at(dec.kappa))

    def online(self, decoder: str, kappa: float | None, T_max: int) -> OnlineRule:
        # The rule reads S_t itself, whatever decoder the simulation is told about.
        check_schedule(self.thresholds, T_max)
        return ScheduleOnline(self.thresholds, GAP, self.kappa)

    @classmethod
    def candidates(cls, cal: Decoded) -> list[ExitPolicy]:
        check_gap_decoded(cal)
        return [cls(fit_betas(cal, eps), cal.kappa, eps) for eps in EPSILON_GRID]
