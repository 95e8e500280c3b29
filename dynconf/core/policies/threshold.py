"""The threshold rule (Dynamic Confidence as published): exit at the first t with c_t > C.

tau_i = min{t : c_{i,t} > C} (strict), T if never (docs/METHOD.md section 3).

How one threshold is fast and a sweep is exact. For each sample keep only its "records": the
steps where the running maximum of c strictly increases (step 1 always is one). The first step
with c_t > C is always a record (every earlier value is <= C), so the exit step for C is the
step of the first record whose value is > C. Record values increase within a sample, so one
threshold is a vectorised binary search per sample (O(N log T)). For a sweep, raising C past a
record's value moves that sample's exit from the record's step to the next record's step (or
T), a fixed change in latency and correctness; with all records sorted once by value and those
changes cumulatively summed, any threshold is a searchsorted (side="right" because a record
equal to C does not pass the strict rule). ThresholdCache holds these precomputations, built
once per Decoded and kept on it (dec.cache).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dynconf.core.decoders import Decoded, get_decoder
from dynconf.core.pareto import ACC_SLACK, LAT_SLACK, Sweep, near_front, pareto_front
from dynconf.core.policies.base import ExitPolicy, OnlineRule, accuracy_needed, check_threshold
from dynconf.core.results import Curve, PolicyResult, baseline_counts, capped_curve, summarize
from dynconf.errors import DynconfError


class ThresholdCache:
    """Per-(split, decoder) precomputation; each threshold afterwards costs O(N log T)."""

    def __init__(self, dec: Decoded):
        self.dec = dec
        T, N = dec.T, dec.N
        self.T, self.N = T, N
        conf = dec.confidence
        # Records: c_t > max(c_1..c_{t-1}); in sample-major order so each sample's records
        # are one contiguous, increasing run of the flat arrays.
        is_record = np.empty((T, N), bool)
        is_record[0] = True
        if T > 1:  # step by step: one [N] running maximum, not a [T, N] one
            running_max = conf[0].copy()
            for t in range(1, T):
                np.greater(conf[t], running_max, out=is_record[t])
                np.maximum(running_max, conf[t], out=running_max)
        sample, step0 = np.nonzero(is_record.T)
        del is_record
        self.rec_values = conf[step0, sample]
        self.rec_steps = (step0 + 1).astype(np.int32)
        del step0
        counts = np.bincount(sample, minlength=N)
        del sample
        self.ends = np.cumsum(counts)
        self.starts = self.ends - counts
        self._search_rounds = int(counts.max()).bit_length()
        self._flat_correct = dec.correct.reshape(-1)
        self._columns = np.arange(N)
        self.baseline_counts = baseline_counts(dec)  # [T] correct at fixed t
        self._events = None  # built on the first sweep
        self._order = None  # the records' order by value, when known before that sweep

    # -- one threshold

    def exit_steps(self, threshold) -> np.ndarray:
        """tau_i for every sample, 1-based, int32."""
        c = check_threshold(threshold)
        values, ends = self.rec_values, self.ends
        # Branchless binary search, all samples at once: pos ends as the last record of each
        # sample with value <= c (start - 1 if none); records increase within a sample.
        pos = self.starts - 1
        cand = np.empty_like(pos)
        ok = np.empty(self.N, bool)
        below = np.empty(self.N, bool)
        seen = np.empty(self.N, np.float64)
        for k in range(self._search_rounds - 1, -1, -1):
            np.add(pos, 1 << k, out=cand)
            np.less(cand, ends, out=ok)
            np.take(values, cand, out=seen, mode="clip")
            np.less_equal(seen, c, out=below)
            ok &= below
            np.copyto(pos, cand, where=ok)
        pos += 1  # the first record with value > c, if it belongs to the sample
        found = pos < ends
        steps = np.take(self.rec_steps, pos, mode="clip")
        steps[~found] = self.T
        return steps

    def evaluate(self, threshold, spikes=None, neurons=None, synops=None) -> PolicyResult:
        c = check_threshold(threshold)
        return summarize(
            self.dec,
            self.exit_steps(c),
            policy="threshold",
            params={"threshold": c},
            threshold=c,
            spikes=spikes,
            neurons=neurons,
            synops=synops,
        )

    def capped_curve(self, threshold) -> Curve:
        """Accuracy and mean latency of exit step min(tau_i, T') for T' = 1..T."""
        return capped_curve(self.dec, self.exit_steps(threshold))

    # -- many thresholds

    @classmethod
    def from_records(cls, dec: Decoded, counts, rec_steps, order=None) -> ThresholdCache:
        """The cache rebuilt from what :meth:`records` gave (records per sample, their steps,
        the sweep's order of records by value), without the scans and the sort."""
        self = cls.__new__(cls)
        self.dec, self.T, self.N = dec, dec.T, dec.N
        counts = np.asarray(counts, np.int64)
        self.ends = np.cumsum(counts)
        self.starts = self.ends - counts
        self.rec_steps = np.asarray(rec_steps, np.int32)
        sample = np.repeat(np.arange(dec.N), counts)
        self.rec_values = dec.confidence[self.rec_steps - 1, sample]
        self._search_rounds = int(counts.max()).bit_length() if dec.N else 0
        self._flat_correct = dec.correct.reshape(-1)
        self._columns = np.arange(dec.N)
        self.baseline_counts = baseline_counts(dec)
        self._events = None
        self._order = None if order is None else np.asarray(order)  # int32 indexes too
        return self

    def records(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(records per sample, their steps, the order of records by value): enough for
        :meth:`from_records` to rebuild this cache (e.g. from a disk cache)."""
        order = np.argsort(self.rec_values)
        if self._events is None:
            self._build_events(order)
        return self.ends - self.starts, self.rec_steps, order

    def _build_events(self, order=None):
        T = self.T
        steps = self.rec_steps
        next_steps = np.empty_like(steps)
        next_steps[:-1] = steps[1:]
        next_steps[self.ends - 1] = T  # after a sample's last record it runs to T
        # Correctness read sample-major, where a sample's records are neighbours in memory.
        by_sample = np.ascontiguousarray(self.dec.correct.T).reshape(-1)
        flat = np.repeat(np.arange(self.N, dtype=np.int64) * T - 1, self.ends - self.starts)
        flat += next_steps
        d_correct = by_sample[flat].astype(np.int8)
        flat -= next_steps - steps
        d_correct -= by_sample[flat]
        del flat, by_sample
        d_latency = next_steps - steps
        del next_steps
        if order is None:
            order = self._order
        if order is None:
            order = np.argsort(self.rec_values)  # ties need no order: they pass together
        self._order = None
        cum_latency = np.zeros(len(order) + 1, np.int64)
        np.cumsum(d_latency[order], dtype=np.int64, out=cum_latency[1:])
        del d_latency
        cum_correct = np.zeros(len(order) + 1, np.int64)
        np.cumsum(d_correct[order], dtype=np.int64, out=cum_correct[1:])
        self._events = (self.rec_values[order], cum_latency, cum_correct)

    def sweep_counts(self, thresholds) -> tuple[np.ndarray, np.ndarray]:
        """Exact (sum of exit steps, number correct) for each threshold, any order."""
        c = np.asarray(thresholds, dtype=np.float64)
        if np.isnan(c).any():
            raise DynconfError("thresholds must not be NaN")
        if self._events is None:
            self._build_events()
        values, cum_latency, cum_correct = self._events
        passed = np.searchsorted(values, c, side="right")  # records with value <= C
        # With no record passed every sample exits at step 1.
        latency_sum = self.N + cum_latency[passed]
        n_correct = self.baseline_counts[0] + cum_correct[passed]
        return latency_sum, n_correct

    def exact_thresholds(self) -> np.ndarray:
        """Every threshold at which some exit changes: the distinct record values, with 0.0
        (below every confidence of a decoder whose values exceed 0: all exit at step 1) and
        1.0 (no confidence exceeds it: nobody exits early). Any other C exits exactly as the
        largest of these below it, so a search over these is exhaustive."""
        return np.union1d(self.rec_values, [0.0, 1.0])

    def default_thresholds(self, n: int = 1000) -> np.ndarray:
        """A grid of about n thresholds for display (the browser's slider, ``sweep``): half
        evenly spaced on [0, 1], half at quantiles of the distinct record values (where the
        policy changes). Fits search exact_thresholds instead."""
        n = max(int(n), 2)
        values = np.unique(self.rec_values)
        ranks = np.linspace(0, len(values) - 1, num=min(len(values), n // 2)).round()
        return np.unique(
            np.concatenate([np.linspace(0.0, 1.0, n - n // 2), values[ranks.astype(int)]])
        )

    def sweep(self, thresholds=None, acc_slack=ACC_SLACK, lat_slack=LAT_SLACK) -> Sweep:
        if thresholds is None:
            thresholds = self.default_thresholds()
        thresholds = np.unique(np.asarray(thresholds, dtype=np.float64))
        if thresholds.size == 0:
            raise DynconfError("no thresholds to sweep")
        latency_sum, n_correct = self.sweep_counts(thresholds)
        latency, accuracy = latency_sum / self.N, n_correct / self.N
        return Sweep(
            thresholds=thresholds,
            accuracy=accuracy,
            mean_latency=latency,
            n_correct=n_correct,
            on_front=pareto_front(latency, accuracy),
            near_front=near_front(latency, accuracy, acc_slack, lat_slack),
            acc_slack=float(acc_slack),
            lat_slack=float(lat_slack),
        )


def threshold_cache(dec: Decoded) -> ThresholdCache:
    """The ThresholdCache of dec, built on first use and kept on dec (dec.cache["threshold"])."""
    cache = dec.cache.get("threshold")
    if cache is None:
        cache = dec.cache["threshold"] = ThresholdCache(dec)
    return cache


class ThresholdOnline(OnlineRule):
    """c_t > C on the decoder's confidence of each row's own S_t: no memory."""

    def __init__(self, threshold: float, decoder: str, kappa: float | None):
        self.threshold, self.decoder, self.kappa = threshold, get_decoder(decoder), kappa

    def step(self, S, z, t):
        c = self.decoder.confidence(S, z, np.asarray(t, dtype=np.float64), self.kappa)
        return c > self.threshold


class Threshold(ExitPolicy):
    """Dynamic Confidence: stop once the confidence is above C (``threshold``; None: the fit
    chooses it exactly, over every distinct calibration confidence)."""

    name = "threshold"
    summary = "exit at the first step whose confidence is above C"

    def __init__(self, threshold: float | None = None):
        self.threshold = threshold

    def ready(self) -> bool:
        return self.threshold is not None

    def fit_given(self) -> None:
        self.threshold_ = check_threshold(self.threshold)

    def fit(self, cal: Decoded, tolerance: float = 0.0) -> Threshold:
        self.clear_fit()
        if self.ready():
            self.fit_given()
        else:
            self.threshold_ = exact_choice(cal, tolerance)[0]
        return self

    def exit_steps(self, dec: Decoded) -> np.ndarray:
        self.check_fitted()
        return threshold_cache(dec).exit_steps(self.threshold_)

    def online(self, decoder: str, kappa: float | None, T_max: int) -> OnlineRule:
        self.check_fitted()
        return ThresholdOnline(self.threshold_, decoder, kappa)

    def describe(self) -> str:
        return f"C={self.params['threshold']:.4g}"

    def candidates(self, cal: Decoded) -> list[ExitPolicy]:
        grid = np.union1d(threshold_cache(cal).default_thresholds(), [1.0])
        return [Threshold(float(c)).fit(cal) for c in grid]


@dataclass
class ThresholdChoice:
    """The calibration sweep and the position in it of the chosen threshold."""

    sweep: Sweep
    index: int
    need: int  # correct calibration samples required


def exact_choice(cal: Decoded, tolerance: float = 0.0) -> tuple[float, int, int]:
    """(C, latency sum, correct) of the exact choice: the lowest-latency threshold over every
    distinct candidate (exact_thresholds) meeting the target, ties: more correct, then the
    higher C. One pass over the sorted records: raising C past a record value moves exits
    by known amounts (ThresholdCache._build_events), so each distinct value's outcome is a
    cumulative sum read at the last record with that value."""
    need = accuracy_needed(cal, tolerance)
    cache = threshold_cache(cal)
    if cache._events is None:
        cache._build_events()
    values, cum_latency, cum_correct = cache._events
    # Records passed at each distinct value (the last record with that value, plus one).
    passed = np.flatnonzero(np.append(values[1:] != values[:-1], True))
    passed += 1
    latency = cum_latency[passed]
    latency += cal.N
    correct = cum_correct[passed]
    correct += cache.baseline_counts[0]
    # Candidates in increasing C: 0.0 when below every record (no record passed: every
    # sample exits at step 1), each distinct value, and 1.0 unless it is a record value
    # (it passes every record). The key is (latency, -correct, -position): the highest C
    # among the fastest and most correct.
    keys = []
    if values[0] > 0.0:
        keys.append((int(cal.N + cum_latency[0]), int(cache.baseline_counts[0]), -1, 0.0))
    ok = correct >= need
    if ok.any():
        fastest = np.where(ok, latency, np.iinfo(np.int64).max)
        among = np.flatnonzero(fastest == fastest.min())
        del fastest
        best = int(among[correct[among] == correct[among].max()][-1])
        keys.append((int(latency[best]), int(correct[best]), best, float(values[passed[best] - 1])))
    if values[-1] < 1.0:
        keys.append((int(latency[-1]), int(correct[-1]), len(passed), 1.0))
    keys = [k for k in keys if k[1] >= need]
    if not keys:
        raise DynconfError("no threshold reaches the calibration target")
    lat, n_correct, _, c = min(keys, key=lambda k: (k[0], -k[1], -k[2]))
    return c, lat, n_correct


def choose_threshold(
    cal: Decoded,
    tolerance: float = 0.0,
    thresholds=None,
    acc_slack: float = ACC_SLACK,
    lat_slack: float = LAT_SLACK,
) -> ThresholdChoice:
    """Lowest-latency threshold whose calibration accuracy >= baseline at T_max - tolerance
    (ties: more correct, then the higher, more conservative threshold), searched over
    ``thresholds``; by default exactly, over every distinct candidate (exact_choice), with
    the sweep drawn on the display grid plus that choice. The candidates always include
    1.0, which never exits early and so always meets the target."""
    need = accuracy_needed(cal, tolerance)
    cache = threshold_cache(cal)
    exact = None
    if thresholds is None:
        exact = exact_choice(cal, tolerance)[0]
        thresholds = np.append(cache.default_thresholds(), exact)
    grid = np.union1d(np.asarray(thresholds, dtype=np.float64), [1.0])
    sw = cache.sweep(grid, acc_slack, lat_slack)
    if exact is not None:
        return ThresholdChoice(sw, int(np.searchsorted(sw.thresholds, exact)), need)
    idx = np.flatnonzero(sw.n_correct >= need)
    best = idx[np.lexsort((-sw.thresholds[idx], -sw.n_correct[idx], sw.mean_latency[idx]))[0]]
    return ThresholdChoice(sw, int(best), need)
