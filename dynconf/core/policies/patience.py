"""Patience: exit at the first t with c_t > C whose answer argmax S_t has been the same at
steps t-k+1 .. t (k >= 1; k = 1 is the threshold rule); else T_max.

A confident answer that just changed is often a flip that will flip back; waiting until it
has held for k steps trades a little latency for fewer such exits.

Patience k with threshold C is the threshold rule on a masked confidence: c_t where the
answer has held for k steps, -inf elsewhere (never above any C). So it reuses the threshold
rule's exact O(N log T) machinery and sweeps, one masked copy per k (kept on dec.cache).
The fit is exhaustive: for each k of PATIENCE_GRID (or the given k) one sorted sweep over
every distinct masked confidence finds the best C exactly, and the best (k, C) is kept
(ties: more correct, then the larger k and the higher C, the more conservative).
"""

from __future__ import annotations

import numpy as np

from dynconf.core.decoders import Decoded, get_decoder
from dynconf.core.policies.base import ExitPolicy, OnlineRule, accuracy_needed, check_threshold
from dynconf.core.policies.threshold import exact_choice, threshold_cache
from dynconf.errors import DynconfError

PATIENCE_GRID = (1, 2, 3, 4, 6, 8)
THRESHOLDS_PER_K = 400  # display candidates per k for the policy's front


def stable_steps(prediction: np.ndarray) -> np.ndarray:
    """How many consecutive steps up to and including t the answer has been the same [T, N]
    (at most T: int16 where that fits, since it is kept for every k)."""
    run = np.ones(prediction.shape, np.int16 if prediction.shape[0] < (1 << 15) else np.int32)
    for t in range(1, prediction.shape[0]):
        same = prediction[t] == prediction[t - 1]
        run[t] = np.where(same, run[t - 1] + 1, 1)
    return run


def masked(dec: Decoded, k: int, keep: bool = True) -> Decoded:
    """dec with its confidence set to -inf where the answer has not held for k steps (kept
    on dec unless ``keep`` is False: a fit looks at every k but keeps only the chosen one)."""
    key = ("patience", k)
    if key in dec.cache:
        return dec.cache[key]
    if "stable_steps" not in dec.cache:
        dec.cache["stable_steps"] = stable_steps(dec.prediction)
    held = dec.cache["stable_steps"] >= k
    out = dec.with_confidence(np.where(held, dec.confidence, -np.inf))
    if keep:
        dec.cache[key] = out
    return out


class PatienceOnline(OnlineRule):
    def __init__(self, threshold: float, k: int, decoder: str, kappa: float | None):
        self.threshold, self.k, self.decoder, self.kappa = threshold, k, get_decoder(decoder), kappa
        self.last: np.ndarray | None = None  # each row's previous answer
        self.run: np.ndarray | None = None  # how long it has held

    def step(self, S, z, t):
        answer = S.argmax(axis=1)
        fresh = np.asarray(t) == 1
        if self.last is None:
            self.last, self.run = answer.copy(), np.zeros(len(answer), np.int64)
        same = (answer == self.last) & ~fresh
        self.run = np.where(same, self.run + 1, 1)
        self.last = answer
        c = self.decoder.confidence(S, z, np.asarray(t, dtype=np.float64), self.kappa)
        return (c > self.threshold) & (self.run >= self.k)

    def keep(self, index):
        if self.last is not None:
            self.last, self.run = self.last[index], self.run[index]

    def restart(self, rows):
        if self.run is not None:
            self.run[rows] = 0


def check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, float, np.integer)) or int(k) != k or k < 1:
        raise DynconfError(f"patience k must be an integer >= 1, got {k!r}")
    return int(k)


class Patience(ExitPolicy):
    """Threshold C, and the answer unchanged for the last k steps (None: chosen by the fit)."""

    name = "patience"
    summary = "exit once the confidence is above C and the answer has held for k steps"

    def __init__(self, threshold: float | None = None, k: int | None = None):
        self.threshold = threshold
        self.k = k

    def ready(self) -> bool:
        return self.threshold is not None and self.k is not None

    def fit_given(self) -> None:
        self.threshold_ = check_threshold(self.threshold)
        self.k_ = check_k(self.k)

    def fit(self, cal: Decoded, tolerance: float = 0.0) -> Patience:
        self.clear_fit()
        if self.ready():
            self.fit_given()
            return self
        ks = [check_k(self.k)] if self.k is not None else [k for k in PATIENCE_GRID if k <= cal.T]
        need, best, best_key = accuracy_needed(cal, tolerance), None, None
        for k in ks:
            masked_dec = masked(cal, k, keep=False)
            if self.threshold is not None:
                c = check_threshold(self.threshold)
                latency, correct = threshold_cache(masked_dec).sweep_counts([c])
                latency, correct = int(latency[0]), int(correct[0])
                if correct < need:
                    continue
            else:
                c, latency, correct = exact_choice(masked_dec, tolerance)
            key = (latency, -correct, -k, -c)
            if best_key is None or key < best_key:
                best, best_key = (c, k), key
            masked_dec.cache.clear()  # its ThresholdCache refers back to it: free it now
            del masked_dec  # before the next k's copy is made
        if best is None:
            raise DynconfError("no patience k reaches the calibration target at this threshold")
        self.threshold_, self.k_ = best
        return self

    def exit_steps(self, dec: Decoded) -> np.ndarray:
        self.check_fitted()
        return threshold_cache(masked(dec, self.k_)).exit_steps(self.threshold_)

    def online(self, decoder: str, kappa: float | None, T_max: int) -> OnlineRule:
        self.check_fitted()
        return PatienceOnline(self.threshold_, self.k_, decoder, kappa)

    def candidates(self, cal: Decoded) -> list[ExitPolicy]:
        out = []
        grid = np.union1d(threshold_cache(cal).default_thresholds(THRESHOLDS_PER_K), [1.0])
        for k in PATIENCE_GRID:
            if k > cal.T:
                break
            out += [Patience(float(c), k).fit(cal) for c in grid]
        return out
