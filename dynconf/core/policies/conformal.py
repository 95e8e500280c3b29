"""Conformal: delay-adaptive conformal prediction sets at checkpoints (SpikeCP-style,
reimplemented from its description), stopping once the set is small.

At a few checkpoint steps t_1 < ... < t_J the policy forms a prediction set from the
decoder's per-class probabilities p_t (what the confidence is read from: softmax(S_t / kappa)
for paper and gap, ...): the nonconformity score of class y is s_t(y) = 1 - p_t[y] and its
conformal p-value against the n calibration samples' scores of their true labels at the same
checkpoint is p_t(y) = (1 + #{i : s_i >= s_t(y)}) / (n + 1). A sample stops at the first
checkpoint whose set holds between 1 and ``max_set_size`` classes (an empty set is a sign of
an input unlike calibration, not of confidence), else at T_max; the answer is argmax S_tau as
for every policy (the set's top class whenever it holds the top class).

Stopping when the set is small would break a per-checkpoint guarantee, so the sets are
corrected for the J looks:
- ``bonferroni``: the set at checkpoint j holds y unless p_j(y) <= alpha / J. By the union
  bound the true label is in every checkpoint's set with probability >= 1 - alpha, so in the
  set at the stopping checkpoint too (valid for any dependence between checkpoints).
- ``simes``: y is dropped at checkpoint j once, among its p-values at checkpoints 1..j, the
  k-th smallest is <= k * alpha / J for some k (Simes' test applied causally: the k-th
  smallest of the first j p-values is never below the k-th smallest of all J, so every drop
  is a rejection of Simes' test over all J checkpoints, which has level alpha when the
  p-values are positively dependent, as a sample's scores across steps are). k = 1 is the
  Bonferroni drop; Simes' sets are never larger than the intersection of Bonferroni's.
Coverage (the share of samples whose label is in the set at exit) and the mean set size at
exit are in PolicyResult.extras. Mean coverage over random calibration/test splits is at
least 1 - alpha (tests/core/test_policies_conformal.py).

p_t(y) <= a is a threshold on the score: #{i : s_i >= s} <= r with r = floor(a (n + 1) - 1)
(+1e-9 against rounding), i.e. s > the (n - r)-th smallest calibration score (never if r < 0,
always if r >= n); the fitted policy keeps those cut scores (``cuts[j][k - 1]`` for level
k * alpha / J), not the calibration data. It needs per-class probabilities, so the split's
full per-step outputs (attach_outputs; not top-k storage). The operating parameter swept on
calibration is alpha with the correction and the number of checkpoints (evenly spaced,
ending at T_max); docs/POLICIES.md has the choices.
"""

from __future__ import annotations

import math

import numpy as np

from dynconf.core.decoders import Decoded, get_decoder
from dynconf.core.policies.base import ExitPolicy, OnlineRule, fastest, split_outputs
from dynconf.errors import DynconfError

CORRECTIONS = ("bonferroni", "simes")
ALPHA_GRID = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)
CHECKPOINT_COUNTS = (4, 8, 16)
CHUNK_ELEMENTS = 1 << 21  # [J, B, K] work arrays stay small
CACHE_ELEMENTS = 1 << 25  # probabilities at checkpoints are kept on dec below this size
SLACK = 1e-9


def default_checkpoints(T: int, count: int) -> tuple[int, ...]:
    """``count`` evenly spaced steps ending at T (fewer if T is small)."""
    return tuple(int(t) for t in np.unique(np.ceil(np.arange(1, count + 1) * T / count)))


def check_checkpoints(checkpoints, T: int | None = None) -> tuple[int, ...]:
    try:
        out = tuple(int(t) for t in checkpoints)
    except (TypeError, ValueError):
        raise DynconfError(f"checkpoints must be integers, got {checkpoints!r}") from None
    if not out or any(b <= a for a, b in zip(out, out[1:], strict=False)) or out[0] < 1:
        raise DynconfError(f"checkpoints must be increasing steps >= 1, got {out}")
    if T is not None and out[-1] > T:
        raise DynconfError(f"checkpoint {out[-1]} is past T_max = {T}")
    return out


def checkpoint_probabilities(dec: Decoded, checkpoints, lo: int = 0, hi: int | None = None):
    """p_t over classes at each checkpoint for samples lo..hi: [J, B, K] float64, read from
    the split's outputs through dec's decoder (the same arithmetic as the online form).
    Kept on dec for the whole split when small (a calibration sweep reads it many times)."""
    outputs = split_outputs(dec, Conformal.name)
    hi = dec.N if hi is None else hi
    checkpoints = tuple(checkpoints)
    key = ("conformal_p", checkpoints)
    if key in dec.cache:
        return dec.cache[key][:, lo:hi]
    for held, probabilities in list(dec.cache.items()):  # rows of a superset kept on dec
        if _covers(held, checkpoints):
            return probabilities[[held[1].index(t) for t in checkpoints], lo:hi]
    K = outputs.shape[2]
    if len(checkpoints) * dec.N * K <= CACHE_ELEMENTS:
        dec.cache[key] = _probabilities(dec, outputs, checkpoints, 0, dec.N)
        return dec.cache[key][:, lo:hi]
    return _probabilities(dec, outputs, checkpoints, lo, hi)


def _covers(key, checkpoints: tuple) -> bool:
    """Whether a dec.cache key holds the probabilities at (at least) these checkpoints."""
    return isinstance(key, tuple) and key[0] == "conformal_p" and set(checkpoints) <= {*key[1]}


def _probabilities(dec: Decoded, outputs, checkpoints, lo: int, hi: int) -> np.ndarray:
    last, K = checkpoints[-1], outputs.shape[2]
    index = np.asarray(checkpoints) - 1
    steps = np.asarray(checkpoints, dtype=np.float64)[:, None]
    rule = get_decoder(dec.decoder)
    out = np.empty((len(checkpoints), hi - lo, K))
    block = max(1, (1 << 23) // (last * K))
    for a in range(lo, hi, block):
        b = min(hi, a + block)
        z = np.asarray(outputs[:last, a:b], dtype=np.float64)
        S = np.cumsum(z, axis=0)
        out[:, a - lo : b - lo] = rule.probabilities(S[index], z[index], steps, dec.kappa)
    return out


def chunks(dec: Decoded, J: int):
    K = split_outputs(dec, Conformal.name).shape[2]
    block = max(1, CHUNK_ELEMENTS // max(1, J * K))
    for lo in range(0, dec.N, block):
        yield lo, min(dec.N, lo + block)


def cut_scores(true_scores: np.ndarray, alpha: float, correction: str) -> tuple:
    """cuts[j][k - 1]: p_j(y) <= k * alpha / J  <=>  s_j(y) > cuts[j][k - 1] (module doc)."""
    J, n = true_scores.shape
    ordered = np.sort(true_scores, axis=1)
    levels = range(1, (J if correction == "simes" else 1) + 1)
    out = []
    for j in range(J):
        row = []
        for k in levels:
            r = math.floor(k * alpha / J * (n + 1) - 1 + SLACK)
            row.append(math.inf if r < 0 else -math.inf if r >= n else float(ordered[j, n - r - 1]))
        out.append(tuple(row))
    return tuple(out)


def prediction_sets(scores: np.ndarray, cuts, correction: str) -> np.ndarray:
    """Which classes are in the set at each checkpoint: scores [J, B, K] -> bool [J, B, K].

    Simes: checkpoint by checkpoint, each level k's count of checkpoints so far at which
    s(y) is above its cut, [levels, B * K] small integers; y is out from the first
    checkpoint at which some count reaches its k."""
    cut = np.asarray(cuts, dtype=np.float64)  # [J, levels]
    if correction == "bonferroni":
        return scores <= cut[:, 0, None, None]
    J, levels = cut.shape
    flat = scores.reshape(J, -1)
    level = np.arange(1, levels + 1, dtype=np.int32)[:, None]
    count = np.zeros((levels, flat.shape[1]), np.int8 if J < 127 else np.int32)
    hit = np.empty(count.shape, bool)
    dropped = np.zeros(flat.shape[1], bool)
    inside = np.empty(flat.shape, bool)
    for j in range(J):
        np.greater(flat[j], cut[j][:, None], out=hit)
        count += hit
        np.greater_equal(count, level, out=hit)
        dropped |= hit.any(axis=0)
        np.logical_not(dropped, out=inside[j])
    return inside.reshape(scores.shape)


class ConformalOnline(OnlineRule):
    def __init__(self, policy: Conformal, decoder: str, kappa: float | None):
        self.policy, self.decoder, self.kappa = policy, get_decoder(decoder), kappa
        self.cuts = np.asarray(policy.cuts_, dtype=np.float64)
        self.where = {t: j for j, t in enumerate(policy.checkpoints_)}
        self.count: np.ndarray | None = None  # Simes: [B, levels, K] drops so far per level

    def step(self, S, z, t):
        t = np.asarray(t)
        stop = np.zeros(len(t), bool)
        if self.count is None or len(self.count) != len(t):
            self.count = np.zeros((len(t), self.cuts.shape[1], S.shape[1]), np.int32)
        for step, j in self.where.items():
            rows = np.flatnonzero(t == step)
            if not rows.size:
                continue
            steps = np.full(len(rows), float(step))
            p = self.decoder.probabilities(S[rows], z[rows], steps, self.kappa)
            scores = 1.0 - p
            if self.policy.correction_ == "bonferroni":
                inside = scores <= self.cuts[j, 0]
            else:
                self.count[rows] += scores[:, None, :] > self.cuts[j][None, :, None]
                need = np.arange(1, self.cuts.shape[1] + 1)[None, :, None]
                inside = ~(self.count[rows] >= need).any(axis=1)
            size = inside.sum(axis=1)
            stop[rows] = (size >= 1) & (size <= self.policy.max_set_size)
        return stop

    def keep(self, index):
        if self.count is not None:
            self.count = self.count[index]

    def restart(self, rows):
        if self.count is not None:
            self.count[rows] = 0


def check_correction(correction: str) -> str:
    if correction not in CORRECTIONS:
        raise DynconfError(
            f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}"
        )
    return correction


def calibrated_cuts(cal: Decoded, alpha: float, correction: str, checkpoints) -> tuple:
    """The cut scores of the policy at alpha, from the calibration split ``cal``."""
    true = np.empty((len(checkpoints), cal.N))
    for lo, hi in chunks(cal, len(checkpoints)):
        p = checkpoint_probabilities(cal, checkpoints, lo, hi)
        true[:, lo:hi] = 1.0 - np.take_along_axis(p, cal.labels[None, lo:hi, None], axis=2)[..., 0]
    return cut_scores(true, float(alpha), correction)


class Conformal(ExitPolicy):
    """Stop at the first checkpoint whose corrected conformal set is small (module doc).

    The fit computes the cut scores from calibration at ``alpha`` with ``correction`` and
    ``checkpoints`` (each None: swept over ALPHA_GRID, CORRECTIONS and CHECKPOINT_COUNTS
    evenly spaced checkpoints, the fastest meeting the target kept)."""

    name = "conformal"
    summary = (
        "exit at the first checkpoint whose conformal prediction set (Bonferroni or Simes "
        "corrected) holds at most m classes"
    )
    needs_outputs = True

    def __init__(self, alpha=None, correction=None, checkpoints=None, max_set_size: int = 1):
        self.alpha = alpha
        self.correction = correction
        self.checkpoints = checkpoints
        self.max_set_size = max_set_size

    def _calibrate(self, cal: Decoded, alpha: float, correction: str, checkpoints) -> None:
        alpha = float(alpha)
        if not 0 <= alpha < 1:
            raise DynconfError(f"alpha must be in [0, 1), got {alpha}")
        if int(self.max_set_size) != self.max_set_size or self.max_set_size < 1:
            raise DynconfError("max_set_size must be an integer >= 1")
        checkpoints = check_checkpoints(checkpoints, cal.T)
        self.alpha_, self.correction_ = alpha, check_correction(correction)
        self.checkpoints_ = checkpoints
        self.cuts_ = calibrated_cuts(cal, alpha, self.correction_, checkpoints)

    def fit(self, cal: Decoded, tolerance: float = 0.0) -> Conformal:
        self.clear_fit()
        if self.alpha is not None and self.correction is not None:
            checkpoints = self.checkpoints or default_checkpoints(cal.T, 8)
            self._calibrate(cal, self.alpha, self.correction, checkpoints)
            return self
        best = fastest(cal, tolerance, self.candidates(cal), self.name)
        self.set_fitted(best.fitted_state())
        return self

    def candidates(self, cal: Decoded) -> list[ExitPolicy]:
        counts = CHECKPOINT_COUNTS if self.checkpoints is None else (None,)
        corrections = CORRECTIONS if self.correction is None else (self.correction,)
        alphas = ALPHA_GRID if self.alpha is None else (self.alpha,)
        # Every candidate's checkpoints read from one pass over the outputs (kept on cal).
        every = {tuple(self.checkpoints or default_checkpoints(cal.T, n)) for n in (*counts, 4)}
        checkpoint_probabilities(cal, tuple(sorted(set().union(*every))), 0, 0)
        out = []
        for count in counts:
            checkpoints = self.checkpoints or default_checkpoints(cal.T, count)
            for correction in corrections:
                out += [
                    Conformal(a, correction, checkpoints, self.max_set_size).fit(cal)
                    for a in alphas
                ]
        # alpha = 0 drops no class, so it never stops early and always meets the target.
        never = self.checkpoints or default_checkpoints(cal.T, 4)
        out.append(Conformal(0.0, "bonferroni", never, self.max_set_size).fit(cal))
        return out

    @property
    def params(self) -> dict:
        self.check_fitted()
        return {
            "alpha": self.alpha_,
            "correction": self.correction_,
            "checkpoints": list(self.checkpoints_),
            "max_set_size": int(self.max_set_size),
            "target_coverage": 1.0 - self.alpha_,
        }

    def describe(self) -> str:
        self.check_fitted()
        return (
            f"alpha={self.alpha_:g}, {self.correction_}, {len(self.checkpoints_)} checkpoints, "
            f"set size <= {self.max_set_size}"
        )

    def _run(self, dec: Decoded):
        """(exit steps, set size at exit, label in the set at exit), cached per policy."""
        self.check_fitted()
        key = ("conformal_run", self.correction_, self.checkpoints_, self.cuts_,
               self.max_set_size)  # fmt: skip
        if key in dec.cache:
            return dec.cache[key]
        if self.checkpoints_[-1] > dec.T:
            raise DynconfError(f"checkpoint {self.checkpoints_[-1]} is past T_max = {dec.T}")
        J = len(self.checkpoints_)
        steps = np.full(dec.N, dec.T, np.int32)
        size = np.empty(dec.N, np.int64)
        covered = np.empty(dec.N, bool)
        checkpoints = np.asarray(self.checkpoints_, np.int32)
        for lo, hi in chunks(dec, J):
            scores = 1.0 - checkpoint_probabilities(dec, self.checkpoints_, lo, hi)
            inside = prediction_sets(scores, self.cuts_, self.correction_)  # [J, B, K]
            n_in = inside.sum(axis=2)
            stop = (n_in >= 1) & (n_in <= self.max_set_size)
            found = stop.any(axis=0)
            at = np.where(found, stop.argmax(axis=0), J - 1)  # no stop: the last set
            cols = np.arange(hi - lo)
            steps[lo:hi] = np.where(found, checkpoints[at], dec.T)
            size[lo:hi] = n_in[at, cols]
            covered[lo:hi] = inside[at, cols, dec.labels[lo:hi]]
        dec.cache[key] = (steps, size, covered)
        return dec.cache[key]

    def exit_steps(self, dec: Decoded) -> np.ndarray:
        return self._run(dec)[0].copy()

    def extras(self, dec: Decoded, steps: np.ndarray) -> dict:
        _, size, covered = self._run(dec)
        return {
            "coverage": float(covered.mean()) if dec.N else None,
            "mean_set_size": float(size.mean()) if dec.N else None,
            "target_coverage": 1.0 - self.alpha_,
        }

    def online(self, decoder: str, kappa: float | None, T_max: int) -> OnlineRule:
        self.check_fitted()
        check_checkpoints(self.checkpoints_, T_max)
        return ConformalOnline(self, decoder, kappa)
