"""Patience: exit at the first t with c_t > C whose answer argmax S_t has been the same at
steps t-k+1 .. t (k >= 1; k = 1 is the threshold rule); else T_max.

A confident answer that just changed is often a flip that will flip back; waiting until it
has held for k steps trades a little latency for fewer such exits.

Patience k with threshold C is the threshold rule on a masked confidence: c_t where the
answer has held for k steps, -inf elsewhere (never above any C). So it reuses the threshold
rule's exact O(N log T) machinery and sweeps, one masked copy per k (kept on dec.cache).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dynconf.core.decoders import Decoded, get_decoder
from dynconf.core.policies.base import ExitPolicy, OnlineRule, check_threshold
from dynconf.core.policies.threshold import threshold_cache
from dynconf.errors import DynconfError

PATIENCE_GRID = (1, 2, 3, 4, 6, 8)
THRESHOLDS_PER_K = 400


def stable_steps(prediction: np.ndarray) -> np.ndarray:
    """How many consecutive steps up to and including t the answer has been the same [T, N]."""
    run = np.ones(prediction.shape, np.int32)
    for t in range(1, prediction.shape[0]):
        same = prediction[t] == prediction[t - 1]
        run[t] = np.where(same, run[t - 1] + 1, 1)
    return run


def masked(dec: Decoded, k: int) -> Decoded:
    """dec with its confidence set to -inf where the answer has not held for k steps."""
    key = ("patience", k)
    if key not in dec.cache:
        held = stable_steps(dec.prediction) >= k
        confidence = np.where(held, dec.confidence, -np.inf)
        dec.cache[key] = Decoded(
            dec.decoder, dec.kappa, confidence, dec.prediction, dec.correct, dec.labels
        )
    return dec.cache[key]


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


@dataclass
class Patience(ExitPolicy):
    """Threshold C, and the answer unchanged for the last k steps."""

    threshold: float
    k: int = 2
    name = "patience"
    summary = "exit once the confidence is above C and the answer has held for k steps"

    def __post_init__(self):
        self.threshold = check_threshold(self.threshold)
        if isinstance(self.k, bool) or int(self.k) != self.k or self.k < 1:
            raise DynconfError(f"patience k must be an integer >= 1, got {self.k!r}")
        self.k = int(self.k)

    def exit_steps(self, dec: Decoded) -> np.ndarray:
        return threshold_cache(masked(dec, self.k)).exit_steps(self.threshold)

    def online(self, decoder: str, kappa: float | None, T_max: int) -> OnlineRule:
        return PatienceOnline(self.threshold, self.k, decoder, kappa)

    @classmethod
    def candidates(cls, cal: Decoded) -> list[ExitPolicy]:
        out = []
        for k in PATIENCE_GRID:
            if k > cal.T:
                break
            grid = threshold_cache(cal).default_thresholds(THRESHOLDS_PER_K)
            out += [cls(float(c), k) for c in np.union1d(grid, [1.0])]
        return out
