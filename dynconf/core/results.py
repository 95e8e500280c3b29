"""What an exit policy did on one split: per-sample exit steps turned into exact metrics.

Every policy ends in the same place: an exit step tau_i per sample (1-based). From those,
and the decoded split's correctness, this module computes accuracy, mean latency, the
savings against T_max and against the iso-accuracy fixed T, and spikes and synaptic
operations (SynOps, dynconf/engine/synops.py) at exit when the split has them. Counts are
integers and accuracies are counts / N, so results are exact and comparable across policies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dynconf.core.decoders import Decoded
from dynconf.errors import DynconfError


def _f(x) -> float | None:
    return None if x is None else float(x)


@dataclass(eq=False)
class PolicyResult:
    """One exit policy on one split. ``threshold`` is the policy's confidence threshold C
    where it has one (None otherwise); ``policy`` and ``params`` say exactly what ran."""

    threshold: float | None
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
    synops_per_sample_at_exit: float | None = None  # None when the split has no synops
    synops_per_sample_full: float | None = None
    synops_saving: float | None = None  # 1 - SynOps at exit / SynOps of the full run
    policy: str = "threshold"
    params: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)  # policy-specific numbers, e.g. coverage

    def to_dict(self, per_sample: bool = True) -> dict:
        d = {
            "threshold": _f(self.threshold),
            "policy": self.policy,
            "params": dict(self.params),
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
            "synops_per_sample_at_exit": _f(self.synops_per_sample_at_exit),
            "synops_per_sample_full": _f(self.synops_per_sample_full),
            "synops_saving": _f(self.synops_saving),
            **{key: _f(value) for key, value in self.extras.items()},
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


def baseline_counts(dec: Decoded) -> np.ndarray:
    """Correct samples at fixed t = 1..T, int64 [T] (kept on dec.cache)."""
    counts = dec.cache.get("baseline_counts")
    if counts is None:
        counts = dec.cache["baseline_counts"] = dec.correct.sum(axis=1).astype(np.int64)
    return counts


def baseline_curve(dec: Decoded) -> np.ndarray:
    """Accuracy at fixed t = 1..T (index t-1)."""
    return baseline_counts(dec) / dec.N


def at_steps(dec: Decoded, steps: np.ndarray, per_step: np.ndarray) -> np.ndarray:
    """per_step[tau_i - 1, i] for every sample (per_step is [T, N])."""
    flat = per_step.reshape(-1)
    return flat[(steps.astype(np.int64) - 1) * dec.N + np.arange(dec.N)]


def iso_accuracy_steps(dec: Decoded, n_correct: int) -> int | None:
    reached = np.flatnonzero(baseline_counts(dec) >= n_correct)
    return int(reached[0]) + 1 if reached.size else None


def cumulative_spikes(dec: Decoded, spikes, role: str = "spikes") -> np.ndarray:
    """Hidden spikes (or, role "synops", synaptic operations) of steps 1..t, [T, N] float64,
    cached per array."""
    held = dec.cache.get(role)
    if held is not None and held[0] is spikes:
        return held[1]
    arr = np.asarray(spikes)
    if arr.shape != (dec.T, dec.N):
        raise DynconfError(f"{role} must have shape ({dec.T}, {dec.N}), got {arr.shape}")
    cum = np.cumsum(arr, axis=0, dtype=np.float64)
    dec.cache[role] = (spikes, cum)  # holding the array keeps the identity check valid
    return cum


def check_steps(dec: Decoded, steps) -> np.ndarray:
    steps = np.asarray(steps)
    if steps.shape != (dec.N,) or steps.dtype.kind not in "iu":
        raise DynconfError(f"exit steps must be {dec.N} integers, got {steps.dtype} {steps.shape}")
    if steps.size and (steps.min() < 1 or steps.max() > dec.T):
        raise DynconfError(f"exit steps must lie in 1..{dec.T}")
    return steps


def summarize(
    dec: Decoded,
    steps: np.ndarray,
    *,
    policy: str = "threshold",
    params: dict | None = None,
    threshold: float | None = None,
    spikes=None,
    neurons=None,
    synops=None,
) -> PolicyResult:
    """The metrics of exiting every sample at ``steps`` (1-based, [N]); spikes and synops
    ([T, N] per step) add what was spent up to the exits. They come with ``dec`` (its
    ``spikes``, ``synops`` and ``neurons``); an explicit keyword overrides what it carries."""
    steps = check_steps(dec, steps)
    spikes = dec.spikes if spikes is None else spikes
    synops = dec.synops if synops is None else synops
    neurons = dec.neurons if neurons is None else neurons
    N, T = dec.N, dec.T
    correct = at_steps(dec, steps, dec.correct)
    n_correct = int(correct.sum())
    mean_latency = float(steps.sum(dtype=np.int64)) / N
    iso = iso_accuracy_steps(dec, n_correct)
    res = PolicyResult(
        threshold=threshold,
        exit_steps=steps,
        predictions=at_steps(dec, steps, dec.prediction),
        correct=correct,
        n_correct=n_correct,
        N=N,
        T_max=T,
        accuracy=n_correct / N,
        mean_latency=mean_latency,
        baseline_accuracy=int(baseline_counts(dec)[-1]) / N,
        latency_reduction=(T - mean_latency) / T,
        iso_accuracy_steps=iso,
        latency_reduction_vs_iso=None if iso is None else (iso - mean_latency) / iso,
        policy=policy,
        params=dict(params or {}),
    )
    if spikes is not None:
        cum = cumulative_spikes(dec, spikes)
        spent = float(at_steps(dec, steps, cum).mean())
        full = float(cum[-1].mean())
        res.spikes_per_image_at_exit = spent
        res.spikes_per_image_full = full
        res.spike_saving = 1.0 - spent / full if full > 0 else None
        if neurons:
            res.spikes_per_neuron_at_exit = spent / neurons
            res.spikes_per_neuron_full = full / neurons
    if synops is not None:
        cum = cumulative_spikes(dec, synops, "synops")
        spent, full = float(at_steps(dec, steps, cum).mean()), float(cum[-1].mean())
        res.synops_per_sample_at_exit, res.synops_per_sample_full = spent, full
        res.synops_saving = 1.0 - spent / full if full > 0 else None
    return res


def capped_curve(dec: Decoded, steps: np.ndarray) -> Curve:
    """Accuracy and mean latency of exit step min(tau_i, T') for T' = 1..T, for any policy's
    exit steps tau: samples with tau <= T' keep their answer, the others answer at T'."""
    steps = check_steps(dec, steps)
    T, N = dec.T, dec.N
    correct_at_exit = at_steps(dec, steps, dec.correct)
    exited = np.bincount(steps, minlength=T + 1)[1:]
    exited_correct = np.bincount(steps, weights=correct_at_exit, minlength=T + 1)[1:]
    exited_steps = np.bincount(steps, weights=steps, minlength=T + 1)[1:]
    caps = np.arange(1, T + 1)
    still_running = steps[None, :] > caps[:, None]  # [T, N]
    running_correct = (dec.correct & still_running).sum(axis=1)
    n_correct = np.cumsum(exited_correct) + running_correct
    latency_sum = np.cumsum(exited_steps) + caps * (N - np.cumsum(exited))
    return Curve(caps, latency_sum / N, n_correct / N)
