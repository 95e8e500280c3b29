"""Top-2 gap schedule: SNNCutoff's top-k cutoff, reimplemented from its definition.

gap_t = S_t[top1] - S_t[top2], the raw gap between the two largest accumulated outputs. A
calibration sample is "safe" at t when its stays-correct oracle step is <= t (right at t and
at every later step). For each step t a cut beta_t is fitted so that, among calibration
samples with gap_t > beta_t, the share that is safe at t is at least 1 - epsilon; a sample
exits at the first t with gap_t > beta_t, else T_max. Two modes (docs/POLICIES.md):

- ``"snncutoff"`` (the default, SNNCutoff's rule): the candidate cuts are B = ``bins`` (100)
  bin edges beta_m = m * G / B, m = 0..B-1, with G the largest calibration gap over every
  step and sample; beta_t is the smallest edge that qualifies, and the last edge is forced
  to qualify (so every step gets one, and a test sample with a gap above it may exit).
  An edge with nobody above it does not qualify (0 / 0).
- ``"exact"``: the candidate cuts at t are every distinct calibration gap at t (a cut
  between two of them) plus -inf (everybody); beta_t is the smallest that qualifies; a step
  where none does gets beta_t = +inf (nobody exits there).

epsilon is the operating parameter (None: the fit sweeps EPSILON_GRID and keeps the fastest
meeting the target; epsilon = 0 never loses accuracy against T_max on calibration in exact
mode). "Share >= 1 - epsilon" is tested as bad <= epsilon * n (+1e-9) in exact mode and as
SNNCutoff writes it, share >= 1 - epsilon, in snncutoff mode.

The raw gap is not a decoder output, but the ``gap`` decoder's confidence
c_t = 1 - exp(-gap_t / kappa) is a strictly increasing map of it, so the policy runs on a
split decoded with ``gap`` (``decoder`` says so) and keeps its thresholds in that
confidence scale, with the kappa they were fitted at, so the cached and online forms compare
the very same floats. ``betas`` gives them back as raw gaps. The fit reads raw gaps from the
split's outputs when they are attached (exact), else from the confidence.
"""

from __future__ import annotations

import math

import numpy as np

from dynconf.core.decoders import Decoded
from dynconf.core.decoders.gap import DECODER as GAP_DECODER
from dynconf.core.oracle import _oracle_steps
from dynconf.core.policies.base import (
    ExitPolicy,
    OnlineRule,
    check_floats,
    fastest,
    json_floats,
)
from dynconf.core.policies.schedule import ScheduleOnline, check_schedule, first_above
from dynconf.errors import DynconfError

EPSILON_GRID = (0.0, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03,
                0.05, 0.075, 0.1, 0.15, 0.2)  # fmt: skip
MODES = ("snncutoff", "exact")
BINS = 100
SLACK = 1e-9
GAP = GAP_DECODER.name  # the decoder whose confidence is a monotone map of the raw gap
CHUNK_ELEMENTS = 1 << 22


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
    """Exact mode: per-step thresholds on the gap confidence of ``cal`` (module doc)."""
    safe_from = _oracle_steps(cal, "stays_correct")  # T + 1 where never
    return tuple(
        smallest_qualifying_cut(cal.confidence[t], safe_from <= t + 1, epsilon)
        for t in range(cal.T)
    )


def raw_gaps(dec: Decoded) -> np.ndarray:
    """S_t[top1] - S_t[top2] for every step and sample [T, N], kept on dec: from the attached
    outputs (float64 running sums, as the decoders add them) or else the gap confidence."""
    held = dec.cache.get("raw_gaps")
    if held is not None:
        return held
    outputs = dec.cache.get("outputs")
    if outputs is None:
        with np.errstate(divide="ignore"):
            gaps = -dec.kappa * np.log1p(-np.asarray(dec.confidence))
    else:
        T, N, K = outputs.shape
        gaps = np.empty((T, N))
        block = max(1, CHUNK_ELEMENTS // (T * K))
        for lo in range(0, N, block):
            S = np.cumsum(np.asarray(outputs[:, lo : lo + block], dtype=np.float64), axis=0)
            top = np.partition(S, (K - 2, K - 1), axis=-1)
            gaps[:, lo : lo + block] = top[..., K - 1] - top[..., K - 2]
    dec.cache["raw_gaps"] = gaps
    return gaps


def bin_counts(dec: Decoded, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edges [B], above [B, T], safe above [B, T]) of snncutoff mode, kept on dec: how many
    calibration samples have gap_t > edge_m, and how many of those are safe at t."""
    key = ("topk_bins", bins)
    if key in dec.cache:
        return dec.cache[key]
    gaps = raw_gaps(dec)
    finite = gaps[np.isfinite(gaps)]
    top = float(finite.max()) if finite.size else 0.0
    edges = np.arange(bins) * (top / bins)
    safe = _oracle_steps(dec, "stays_correct")[None, :] <= np.arange(1, dec.T + 1)[:, None]
    above = np.empty((bins, dec.T), np.int64)
    good = np.empty((bins, dec.T), np.int64)
    for t in range(dec.T):
        everyone = np.sort(gaps[t])
        safe_ones = np.sort(gaps[t][safe[t]])
        above[:, t] = dec.N - np.searchsorted(everyone, edges, side="right")
        good[:, t] = len(safe_ones) - np.searchsorted(safe_ones, edges, side="right")
    dec.cache[key] = (edges, above, good)
    return dec.cache[key]


def fit_binned(cal: Decoded, epsilon: float, bins: int = BINS) -> np.ndarray:
    """snncutoff mode: each step's raw cut beta_t (module doc)."""
    edges, above, good = bin_counts(cal, bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = good / above  # NaN where nobody is above: never qualifies
    share[-1] = 1.0  # the last edge is forced
    return edges[np.argmax(share >= 1.0 - epsilon, axis=0)]


def gap_thresholds(betas, kappa: float) -> tuple[float, ...]:
    """Raw cuts as thresholds on the gap confidence, computed as the decoder computes c."""
    with np.errstate(over="ignore"):
        return tuple(float(c) for c in 1.0 - np.exp(-np.asarray(betas, dtype=float) / kappa))


def check_gap_decoded(dec: Decoded) -> None:
    if dec.decoder != GAP:
        raise DynconfError(
            f"policy 'topk_gap' reads the raw top-2 gap: decode the split with decoder '{GAP}' "
            f"(got '{dec.decoder}')"
        )


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise DynconfError(f"topk_gap mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


class TopkGap(ExitPolicy):
    """Per-step cuts on the raw top-2 gap from a calibration precision target (module doc).

    ``thresholds`` with ``kappa``: cuts given by hand on the gap confidence at that kappa (no
    fit needed); else fitted at ``epsilon`` (None: swept) in ``mode`` with ``bins``."""

    name = "topk_gap"
    summary = (
        "exit at the first step whose raw top-2 gap of S_t is above that step's beta_t "
        "(SNNCutoff's rule)"
    )
    decoder = GAP

    def __init__(self, epsilon=None, mode: str = "snncutoff", bins: int = BINS,
                 thresholds=None, kappa=None):  # fmt: skip
        self.epsilon = epsilon
        self.mode = mode
        self.bins = bins
        self.thresholds = thresholds
        self.kappa = kappa

    def ready(self) -> bool:
        return self.thresholds is not None and self.kappa is not None

    def fit_given(self) -> None:
        self.thresholds_ = check_floats(self.thresholds, "topk_gap thresholds")
        self.kappa_ = check_kappa_value(self.kappa)
        self.epsilon_ = None

    def fit(self, cal: Decoded, tolerance: float = 0.0) -> TopkGap:
        self.clear_fit()
        if self.ready():
            self.fit_given()
            return self
        check_gap_decoded(cal)
        check_mode(self.mode)
        if self.epsilon is None:
            best = fastest(cal, tolerance, self.candidates(cal), self.name)
            self.set_fitted(best.fitted_state())
            return self
        epsilon = float(self.epsilon)
        if self.mode == "exact":
            self.thresholds_ = fit_betas(cal, epsilon)
        else:
            self.thresholds_ = gap_thresholds(fit_binned(cal, epsilon, int(self.bins)), cal.kappa)
        self.kappa_, self.epsilon_ = float(cal.kappa), epsilon
        return self

    @property
    def betas(self) -> np.ndarray:
        """The thresholds as raw gaps (+inf: nobody exits at that step)."""
        self.check_fitted()
        with np.errstate(divide="ignore"):
            return -self.kappa_ * np.log1p(-np.asarray(self.thresholds_))

    @property
    def params(self) -> dict:
        self.check_fitted()
        return {
            "epsilon": self.epsilon_,
            "mode": self.mode,
            "kappa": self.kappa_,
            "thresholds": json_floats(self.thresholds_),
        }

    def describe(self) -> str:
        self.check_fitted()
        eps = "by hand" if self.epsilon_ is None else f"epsilon={self.epsilon_:g}"
        return f"{eps}, {self.mode}, {len(self.thresholds_)} per-step betas"

    def thresholds_at(self, kappa: float) -> np.ndarray:
        """The thresholds for a split decoded at another kappa (exact only at kappa_)."""
        self.check_fitted()
        if kappa == self.kappa_:
            return np.asarray(self.thresholds_)
        return -np.expm1(-self.betas / kappa)

    def exit_steps(self, dec: Decoded) -> np.ndarray:
        self.check_fitted()
        check_gap_decoded(dec)
        check_schedule(self.thresholds_, dec.T)
        return first_above(dec.confidence, self.thresholds_at(dec.kappa))

    def online(self, decoder: str, kappa: float | None, T_max: int) -> OnlineRule:
        # The rule reads S_t itself, whatever decoder the simulation is told about.
        self.check_fitted()
        check_schedule(self.thresholds_, T_max)
        return ScheduleOnline(self.thresholds_, GAP, self.kappa_)

    def candidates(self, cal: Decoded) -> list[ExitPolicy]:
        check_gap_decoded(cal)
        grid = EPSILON_GRID if self.epsilon is None else (float(self.epsilon),)
        fitted = [TopkGap(eps, self.mode, self.bins).fit(cal) for eps in grid]
        # Never exiting early always meets the target (a forced last bin may not).
        never = TopkGap(None, self.mode, self.bins, (1.0,) * cal.T, cal.kappa).fit(cal)
        return [*fitted, never]


def check_kappa_value(kappa) -> float:
    kappa = float(kappa)
    if not math.isfinite(kappa) or kappa <= 0:
        raise DynconfError(f"kappa must be a finite number > 0, got {kappa}")
    return kappa
