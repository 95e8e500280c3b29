"""Exit policy metrics: one threshold, capped curves, sweeps, Pareto front, selection, oracles.

Everything here works on a confidence.Decoded (confidence, prediction, correct, all [T, N]) and
is exact: exit steps and correct counts are integers, accuracies are counts / N.

Exit rule (method.md section 3): tau_i = min{t : c_{i,t} > C} (strict), T if never.

How one threshold is fast and a sweep is exact. For each sample keep only its "records": the
steps where the running maximum of c strictly increases (step 1 always is one). The first step
with c_t > C is always a record (every earlier value is <= C), so the exit step for C is the
step of the first record whose value is > C. Record values increase within a sample, so one
threshold is a vectorised binary search per sample (O(N log T)). For a sweep, raising C past a
record's value moves that sample's exit from the record's step to the next record's step (or
T), a fixed change in latency and correctness; with all records sorted once by value and those
changes cumulatively summed, any threshold is a searchsorted (side="right" because a record
equal to C does not pass the strict rule). PolicyCache holds these precomputations; the
module-level functions build one per Decoded once and keep it on the Decoded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dynconf.core.decoders import Decoded
from dynconf.errors import DynconfError

ACC_SLACK = 0.005  # default "near the front": at most 0.5 accuracy points below it
LAT_SLACK = 0.0  # ... at the same latency (in steps)
NEAR_EPS = 1e-12  # float tolerance when comparing accuracies of different points


# --------------------------------------------------------------------------- result types


def _f(x) -> float | None:
    return None if x is None else float(x)


@dataclass(eq=False)
class PolicyResult:
    """Dynamic Confidence at one threshold on one split."""

    threshold: float
    exit_steps: np.ndarray  # [N] 1-based
    predictions: np.ndarray  # [N]
    correct: np.ndarray  # [N] bool
    n_correct: int
    N: int
    T_max: int
    accuracy: float
    mean_latency: float
    baseline_accuracy: float  # fixed T_max
    latency_reduction: float  # (T_max - mean latency) / T_max
    iso_accuracy_steps: int | None  # smallest fixed t whose baseline accuracy >= accuracy
    latency_reduction_vs_iso: float | None
    spikes_per_image_at_exit: float | None = None
    spikes_per_image_full: float | None = None
    spikes_per_neuron_at_exit: float | None = None
    spikes_per_neuron_full: float | None = None
    spike_saving: float | None = None  # 1 - spikes at exit / spikes of the full run

    def to_dict(self, per_sample: bool = True) -> dict:
        d = {
            "threshold": float(self.threshold),
            "accuracy": float(self.accuracy),
            "mean_latency": float(self.mean_latency),
            "n_correct": int(self.n_correct),
            "N": int(self.N),
            "T_max": int(self.T_max),
            "baseline_accuracy": float(self.baseline_accuracy),
            "latency_reduction": float(self.latency_reduction),
            "iso_accuracy_steps": self.iso_accuracy_steps,
            "latency_reduction_vs_iso": _f(self.latency_reduction_vs_iso),
            "spikes_per_image_at_exit": _f(self.spikes_per_image_at_exit),
            "spikes_per_image_full": _f(self.spikes_per_image_full),
            "spikes_per_neuron_at_exit": _f(self.spikes_per_neuron_at_exit),
            "spikes_per_neuron_full": _f(self.spikes_per_neuron_full),
            "spike_saving": _f(self.spike_saving),
        }
        if per_sample:
            d["exit_steps"] = self.exit_steps.tolist()
            d["predictions"] = self.predictions.tolist()
            d["correct"] = self.correct.tolist()
        return d


@dataclass(eq=False)
class Curve:
    """One point per cap T' = 1..T: (mean latency, accuracy)."""

    caps: np.ndarray  # [T] 1..T
    latency: np.ndarray  # [T]
    accuracy: np.ndarray  # [T]

    def to_dict(self) -> dict:
        return {
            "caps": self.caps.tolist(),
            "latency": self.latency.tolist(),
            "accuracy": self.accuracy.tolist(),
        }


@dataclass(eq=False)
class Sweep:
    """Many thresholds at once (ascending, unique) with the front and the near-front mask."""

    thresholds: np.ndarray
    accuracy: np.ndarray
    mean_latency: np.ndarray
    n_correct: np.ndarray  # int, exact
    on_front: np.ndarray  # bool: non-dominated (lower latency, higher accuracy)
    near_front: np.ndarray  # bool: see near_front()
    acc_slack: float
    lat_slack: float

    def to_dict(self) -> dict:
        return {
            "thresholds": self.thresholds.tolist(),
            "accuracy": self.accuracy.tolist(),
            "mean_latency": self.mean_latency.tolist(),
            "on_front": self.on_front.tolist(),
            "near_front": self.near_front.tolist(),
            "front": np.flatnonzero(self.on_front).tolist(),
            "acc_slack": self.acc_slack,
            "lat_slack": self.lat_slack,
        }


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


@dataclass(eq=False)
class Selection:
    """A threshold chosen on one split and reported on another (method.md section 4)."""

    threshold: float
    tolerance: float
    target_accuracy: float  # calibration baseline at T_max minus tolerance
    calibration: PolicyResult
    test: PolicyResult
    band: tuple[float, float]  # see select_threshold
    sweep: Sweep  # on the calibration split
    decoder: str
    kappa: float | None

    def to_dict(self, per_sample: bool = False) -> dict:
        return {
            "threshold": float(self.threshold),
            "decoder": self.decoder,
            "kappa": self.kappa,
            "tolerance": float(self.tolerance),
            "target_accuracy": float(self.target_accuracy),
            "band": [float(self.band[0]), float(self.band[1])],
            "acc_slack": self.sweep.acc_slack,
            "lat_slack": self.sweep.lat_slack,
            "calibration": self.calibration.to_dict(per_sample),
            "test": self.test.to_dict(per_sample),
        }


# --------------------------------------------------------------------------- precomputation


def _check_threshold(threshold) -> float:
    try:
        c = float(threshold)
    except (TypeError, ValueError):
        raise DynconfError(f"threshold must be a number, got {threshold!r}") from None
    if math.isnan(c):
        raise DynconfError("threshold must not be NaN")
    return c


class PolicyCache:
    """Per-(split, decoder) precomputation; each threshold afterwards costs O(N log T).

    evaluate() takes optional spikes [T, N] (hidden spikes per step and image) and neurons
    to report spikes at exit; their cumulative sum is cached too (by identity of `spikes`).
    """

    def __init__(self, dec: Decoded):
        self.dec = dec
        T, N = dec.T, dec.N
        self.T, self.N = T, N
        conf = dec.confidence
        # Records: c_t > max(c_1..c_{t-1}); in sample-major order so each sample's records
        # are one contiguous, increasing run of the flat arrays.
        is_record = np.empty((T, N), bool)
        is_record[0] = True
        if T > 1:
            running_max = np.maximum.accumulate(conf, axis=0)
            np.greater(conf[1:], running_max[:-1], out=is_record[1:])
        sample, step0 = np.nonzero(is_record.T)
        self.rec_values = conf[step0, sample]
        self.rec_steps = (step0 + 1).astype(np.int32)
        counts = np.bincount(sample, minlength=N)
        self.ends = np.cumsum(counts)
        self.starts = self.ends - counts
        self._search_rounds = int(counts.max()).bit_length()
        self._flat_correct = dec.correct.reshape(-1)
        self._flat_prediction = dec.prediction.reshape(-1)
        self._columns = np.arange(N)
        self.baseline_counts = dec.correct.sum(axis=1).astype(np.int64)  # [T] at fixed t
        self._events = None  # built on the first sweep
        self._spikes = (None, None)  # (spikes array, its cumulative sum over steps)

    def _cum_spikes(self, spikes) -> np.ndarray:
        held, cum = self._spikes
        if held is not spikes:
            arr = np.asarray(spikes)
            if arr.shape != (self.T, self.N):
                raise DynconfError(f"spikes must have shape ({self.T}, {self.N}), got {arr.shape}")
            cum = np.cumsum(arr, axis=0, dtype=np.float64)
            self._spikes = (spikes, cum)  # holding spikes keeps the identity check valid
        return cum

    # -- one threshold

    def exit_steps(self, threshold) -> np.ndarray:
        """tau_i for every sample, 1-based, int32."""
        c = _check_threshold(threshold)
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

    def _at_steps(self, steps: np.ndarray, flat: np.ndarray) -> np.ndarray:
        return flat[(steps.astype(np.int64) - 1) * self.N + self._columns]

    def iso_accuracy_steps(self, n_correct: int) -> int | None:
        reached = np.flatnonzero(self.baseline_counts >= n_correct)
        return int(reached[0]) + 1 if reached.size else None

    def evaluate(self, threshold, spikes=None, neurons=None) -> PolicyResult:
        c = _check_threshold(threshold)
        steps = self.exit_steps(c)
        return self.result_for_steps(c, steps, spikes, neurons)

    def result_for_steps(
        self, threshold: float, steps: np.ndarray, spikes=None, neurons=None
    ) -> PolicyResult:
        N, T = self.N, self.T
        correct = self._at_steps(steps, self._flat_correct)
        n_correct = int(correct.sum())
        mean_latency = float(steps.sum(dtype=np.int64)) / N
        iso = self.iso_accuracy_steps(n_correct)
        res = PolicyResult(
            threshold=threshold,
            exit_steps=steps,
            predictions=self._at_steps(steps, self._flat_prediction),
            correct=correct,
            n_correct=n_correct,
            N=N,
            T_max=T,
            accuracy=n_correct / N,
            mean_latency=mean_latency,
            baseline_accuracy=int(self.baseline_counts[-1]) / N,
            latency_reduction=(T - mean_latency) / T,
            iso_accuracy_steps=iso,
            latency_reduction_vs_iso=None if iso is None else (iso - mean_latency) / iso,
        )
        if spikes is not None:
            cum = self._cum_spikes(spikes)
            at_exit = float(self._at_steps(steps, cum.reshape(-1)).mean())
            full = float(cum[-1].mean())
            res.spikes_per_image_at_exit = at_exit
            res.spikes_per_image_full = full
            res.spike_saving = 1.0 - at_exit / full if full > 0 else None
            if neurons:
                res.spikes_per_neuron_at_exit = at_exit / neurons
                res.spikes_per_neuron_full = full / neurons
        return res

    def capped_curve(self, threshold) -> Curve:
        """Accuracy and mean latency of exit step min(tau_i, T') for T' = 1..T."""
        steps = self.exit_steps(threshold)
        T, N = self.T, self.N
        correct_at_exit = self._at_steps(steps, self._flat_correct)
        # Samples with tau <= T' keep their answer; the others answer at T'.
        exited = np.bincount(steps, minlength=T + 1)[1:]
        exited_correct = np.bincount(steps, weights=correct_at_exit, minlength=T + 1)[1:]
        exited_steps = np.bincount(steps, weights=steps, minlength=T + 1)[1:]
        caps = np.arange(1, T + 1)
        still_running = steps[None, :] > caps[:, None]  # [T, N]
        running_correct = (self.dec.correct & still_running).sum(axis=1)
        n_correct = np.cumsum(exited_correct) + running_correct
        latency_sum = np.cumsum(exited_steps) + caps * (N - np.cumsum(exited))
        return Curve(caps, latency_sum / N, n_correct / N)

    # -- many thresholds

    def _build_events(self):
        T = self.T
        steps = self.rec_steps
        next_steps = np.empty_like(steps)
        next_steps[:-1] = steps[1:]
        next_steps[self.ends - 1] = T  # after a sample's last record it runs to T
        sample = np.repeat(self._columns, self.ends - self.starts)
        flat_now = (steps.astype(np.int64) - 1) * self.N + sample
        flat_next = (next_steps.astype(np.int64) - 1) * self.N + sample
        d_latency = (next_steps - steps).astype(np.int64)
        d_correct = self._flat_correct[flat_next].astype(np.int64) - self._flat_correct[flat_now]
        order = np.argsort(self.rec_values)  # ties need no order: they pass together
        zero = np.zeros(1, np.int64)
        self._events = (
            self.rec_values[order],
            np.concatenate([zero, np.cumsum(d_latency[order])]),
            np.concatenate([zero, np.cumsum(d_correct[order])]),
        )

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

    def default_thresholds(self, n: int = 1000) -> np.ndarray:
        """A grid of about n thresholds: half evenly spaced on [0, 1], half at quantiles of
        the distinct record values (where the policy actually changes)."""
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


def policy_cache(dec: Decoded) -> PolicyCache:
    """The PolicyCache of dec, built on first use and kept on dec (dec.cache["policy"])."""
    cache = dec.cache.get("policy")
    if cache is None:
        cache = dec.cache["policy"] = PolicyCache(dec)
    return cache


# --------------------------------------------------------------------------- public functions


def exit_steps(dec: Decoded, threshold) -> np.ndarray:
    return policy_cache(dec).exit_steps(threshold)


def evaluate(dec: Decoded, threshold, spikes=None, neurons=None) -> PolicyResult:
    """Dynamic Confidence at one threshold (strict >). spikes [T, N] optional."""
    return policy_cache(dec).evaluate(threshold, spikes, neurons)


def baseline_curve(dec: Decoded) -> np.ndarray:
    """Accuracy at fixed t = 1..T (index t-1)."""
    return policy_cache(dec).baseline_counts / dec.N


def capped_curve(dec: Decoded, threshold) -> Curve:
    return policy_cache(dec).capped_curve(threshold)


def sweep(dec: Decoded, thresholds=None, acc_slack=ACC_SLACK, lat_slack=LAT_SLACK) -> Sweep:
    """Accuracy and mean latency for many thresholds (default: default_thresholds)."""
    return policy_cache(dec).sweep(thresholds, acc_slack, lat_slack)


def default_thresholds(dec: Decoded, n: int = 1000) -> np.ndarray:
    return policy_cache(dec).default_thresholds(n)


def _points(latency, accuracy) -> tuple[np.ndarray, np.ndarray]:
    lat = np.asarray(latency, dtype=np.float64)
    acc = np.asarray(accuracy, dtype=np.float64)
    if lat.shape != acc.shape or lat.ndim != 1:
        raise DynconfError("latency and accuracy must be 1-D arrays of the same length")
    if np.isnan(lat).any() or np.isnan(acc).any():
        raise DynconfError("latency and accuracy must not contain NaN")
    return lat, acc


def pareto_front(latency, accuracy) -> np.ndarray:
    """Mask of non-dominated points: no other point has latency <= and accuracy >= with one
    of them strict. Identical points are all kept."""
    lat, acc = _points(latency, accuracy)
    if lat.size == 0:
        return np.zeros(0, bool)
    order = np.lexsort((-acc, lat))  # latency ascending, accuracy descending within a tie
    lat_s, acc_s = lat[order], acc[order]
    group_start = np.searchsorted(lat_s, lat_s, side="left")
    running_best = np.maximum.accumulate(acc_s)
    best_lower_latency = np.where(
        group_start > 0, running_best[np.maximum(group_start - 1, 0)], -np.inf
    )
    on = (acc_s == acc_s[group_start]) & (acc_s > best_lower_latency)
    mask = np.empty(lat.size, bool)
    mask[order] = on
    return mask


def near_front(latency, accuracy, acc_slack=ACC_SLACK, lat_slack=LAT_SLACK) -> np.ndarray:
    """Mask of points near the front: point (L, A) is near iff A >= F(L - lat_slack) - acc_slack
    where F(x) = best accuracy among points with latency <= x (no such point: near). With both
    slacks 0 this is "no point is at least as fast and strictly more accurate"."""
    lat, acc = _points(latency, accuracy)
    if lat.size == 0:
        return np.zeros(0, bool)
    order = np.argsort(lat, kind="stable")
    lat_s = lat[order]
    running_best = np.maximum.accumulate(acc[order])
    count = np.searchsorted(lat_s, lat - lat_slack + NEAR_EPS, side="right")
    best = np.where(count > 0, running_best[np.maximum(count - 1, 0)], -np.inf)
    return acc >= best - acc_slack - NEAR_EPS


def select_threshold(
    cal_dec: Decoded,
    test_dec: Decoded,
    tolerance: float = 0.0,
    thresholds=None,
    acc_slack: float = ACC_SLACK,
    lat_slack: float = LAT_SLACK,
    test_spikes=None,
    neurons=None,
    cal_spikes=None,
) -> Selection:
    """Lowest-latency swept threshold whose calibration accuracy >= calibration baseline at
    T_max - tolerance (ties: higher accuracy, then the higher, more conservative threshold);
    reported on the test split. The grid always contains 1.0, which never exits early and so
    always meets the target.

    band = (lowest, highest) threshold of the contiguous run of swept thresholds containing
    the choice in which every point is near the front (near_front with acc_slack, lat_slack)
    and keeps calibration accuracy >= target - acc_slack.

    ``test_spikes`` / ``cal_spikes`` (hidden spikes per step, [T, N]) add spikes at exit to
    the test / calibration results.
    """
    if cal_dec.decoder != test_dec.decoder or cal_dec.kappa != test_dec.kappa:
        raise DynconfError("calibration and test must use the same decoder and kappa")
    tolerance = float(tolerance)
    if not math.isfinite(tolerance) or tolerance < 0:
        raise DynconfError(f"tolerance must be >= 0, got {tolerance}")
    cache = policy_cache(cal_dec)
    if thresholds is None:
        thresholds = cache.default_thresholds()
    grid = np.union1d(np.asarray(thresholds, dtype=np.float64), [1.0])
    sw = cache.sweep(grid, acc_slack, lat_slack)
    N = cal_dec.N
    baseline_count = int(cache.baseline_counts[-1])
    # Compare in exact counts: accuracy >= baseline - tolerance  <=>  count >= ceil(...)
    need = math.ceil(baseline_count - tolerance * N - 1e-9)
    ok = sw.n_correct >= need
    idx = np.flatnonzero(ok)
    # lowest latency, then most correct, then highest threshold
    best = idx[np.lexsort((-sw.thresholds[idx], -sw.n_correct[idx], sw.mean_latency[idx]))[0]]
    # Band: the contiguous run of thresholds around the choice that stay near the front and
    # keep calibration accuracy within acc_slack of the target.
    near = sw.near_front & (sw.n_correct >= need - acc_slack * N - 1e-9)
    lo = hi = best
    while lo > 0 and near[lo - 1]:
        lo -= 1
    while hi < len(near) - 1 and near[hi + 1]:
        hi += 1
    threshold = float(sw.thresholds[best])
    return Selection(
        threshold=threshold,
        tolerance=tolerance,
        target_accuracy=baseline_count / N - tolerance,
        calibration=cache.evaluate(threshold, cal_spikes, neurons),
        test=evaluate(test_dec, threshold, test_spikes, neurons),
        band=(float(sw.thresholds[lo]), float(sw.thresholds[hi])),
        sweep=sw,
        decoder=cal_dec.decoder,
        kappa=cal_dec.kappa,
    )


# --------------------------------------------------------------------------- oracles

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
