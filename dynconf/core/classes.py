"""Dynamic Confidence class by class: accuracy and latency per label, and the confusion at exit.

A split's accuracy and mean latency hide which classes the threshold serves well: an easy
class exits early and right, a confusable one waits, or exits early and wrong. This module
splits one policy result (its exit steps and answers) by the true label. Counts are
integers and every rate is a count / n of that class, so the table is exact; a class with
no sample gets NaN rates, never a division by zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dynconf.core.decoders import Decoded
from dynconf.core.results import PolicyResult
from dynconf.errors import DynconfError


@dataclass(eq=False)
class ClassMetrics:
    """Per-class numbers of one result, each array [K] indexed by class."""

    n: np.ndarray  # samples whose label is k
    n_correct: np.ndarray  # right at their exit step
    n_correct_full: np.ndarray  # right at T_max (the fixed-T_max baseline)
    latency_sum: np.ndarray  # sum of exit steps
    never_exits: np.ndarray  # never confident enough: c_t <= C at every step, run to T_max

    @property
    def K(self) -> int:
        return int(self.n.shape[0])

    def take(self, classes) -> ClassMetrics:
        """The rows of these classes (indices), in that order."""
        idx = np.asarray(classes, dtype=np.int64)
        return ClassMetrics(
            self.n[idx], self.n_correct[idx], self.n_correct_full[idx],
            self.latency_sum[idx], self.never_exits[idx],
        )  # fmt: skip

    def _rate(self, counts: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, counts / np.maximum(self.n, 1), np.nan)

    @property
    def accuracy(self) -> np.ndarray:
        return self._rate(self.n_correct)

    @property
    def accuracy_full(self) -> np.ndarray:
        return self._rate(self.n_correct_full)

    @property
    def mean_latency(self) -> np.ndarray:
        return self._rate(self.latency_sum)


def _check_classes(name: str, values: np.ndarray, K: int) -> np.ndarray:
    values = np.asarray(values).astype(np.int64, copy=False)
    if values.size and (values.min() < 0 or values.max() >= K):
        raise DynconfError(f"{name} must lie in 0..{K - 1} for {K} classes")
    return values


def class_metrics(dec: Decoded, result: PolicyResult, n_classes: int) -> ClassMetrics:
    """Split ``result`` (a policy on ``dec``) by true label into ``n_classes`` classes.

    "Never exits" needs a threshold: with ``result.threshold`` it counts the samples whose
    confidence never passes C (strict >); for a policy without one, those that exit at T_max.
    """
    K = int(n_classes)
    if K < 1:
        raise DynconfError("need at least one class")
    steps = np.asarray(result.exit_steps)
    if steps.shape != (dec.N,):
        raise DynconfError(f"the result has {steps.shape[0]} samples, the split {dec.N}")
    labels = _check_classes("labels", dec.labels, K)
    if result.threshold is not None:
        never = dec.confidence.max(axis=0) <= float(result.threshold)
    else:
        never = steps == dec.T
    correct = np.asarray(result.correct, dtype=bool)
    latency_sum = np.zeros(K, np.int64)
    np.add.at(latency_sum, labels, steps.astype(np.int64))  # integer sums: exact
    return ClassMetrics(
        n=np.bincount(labels, minlength=K).astype(np.int64),
        n_correct=np.bincount(labels[correct], minlength=K).astype(np.int64),
        n_correct_full=np.bincount(labels[dec.correct[-1]], minlength=K).astype(np.int64),
        latency_sum=latency_sum,
        never_exits=np.bincount(labels[never], minlength=K).astype(np.int64),
    )


def confusion_at_exit(labels, predictions, n_classes: int) -> np.ndarray:
    """Counts [K, K] int64: row = true label, column = the answer given at exit."""
    K = int(n_classes)
    labels = _check_classes("labels", labels, K)
    answers = _check_classes("answers", predictions, K)
    if labels.shape != answers.shape:
        raise DynconfError(f"{labels.shape[0]} labels but {answers.shape[0]} answers")
    return np.bincount(labels * K + answers, minlength=K * K).reshape(K, K).astype(np.int64)
