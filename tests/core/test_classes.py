"""dynconf.core.classes: per-class accuracy, latency and never-exits, and the confusion at
exit, equal a plain loop over the samples."""

from __future__ import annotations

import numpy as np
import pytest

from dynconf.core import metrics
from dynconf.core.classes import class_metrics, confusion_at_exit
from dynconf.core.decoders import decode, decode_outputs
from dynconf.core.results import summarize
from dynconf.core.store import load_run
from dynconf.errors import DynconfError


@pytest.fixture(scope="module")
def dec(dashboard_runs):
    return decode(load_run(dashboard_runs / "synth").split("test"), "paper")


def loop_table(dec, C: float, K: int) -> dict:
    conf, correct, labels = np.asarray(dec.confidence), np.asarray(dec.correct), dec.labels
    T, N = conf.shape
    rows = {k: {"n": 0, "ok": 0, "ok_full": 0, "lat": 0, "never": 0} for k in range(K)}
    for i in range(N):
        tau = next((s for s in range(1, T + 1) if conf[s - 1, i] > C), T)
        row = rows[int(labels[i])]
        row["n"] += 1
        row["ok"] += int(correct[tau - 1, i])
        row["ok_full"] += int(correct[T - 1, i])
        row["lat"] += tau
        row["never"] += int(not any(conf[s, i] > C for s in range(T)))
    return rows


@pytest.mark.parametrize("C", [0.2, 0.6, 0.9, 1.0])
def test_class_metrics_match_a_loop(dec, C):
    K = 10
    res = metrics.evaluate(dec, C)
    cm = class_metrics(dec, res, K)
    ref = loop_table(dec, C, K)
    for k in range(K):
        r = ref[k]
        assert (cm.n[k], cm.n_correct[k], cm.n_correct_full[k]) == (r["n"], r["ok"], r["ok_full"])
        assert (cm.latency_sum[k], cm.never_exits[k]) == (r["lat"], r["never"])
        assert cm.accuracy[k] == pytest.approx(r["ok"] / r["n"])
        assert cm.accuracy_full[k] == pytest.approx(r["ok_full"] / r["n"])
        assert cm.mean_latency[k] == pytest.approx(r["lat"] / r["n"])
    # The classes add up to the split's result.
    assert cm.n.sum() == dec.N and cm.n_correct.sum() == res.n_correct
    assert cm.latency_sum.sum() / dec.N == pytest.approx(res.mean_latency)


def test_confusion_matches_a_loop(dec):
    res = metrics.evaluate(dec, 0.6)
    K = 10
    conf = confusion_at_exit(dec.labels, res.predictions, K)
    ref = np.zeros((K, K), int)
    for label, answer in zip(dec.labels, res.predictions, strict=True):
        ref[int(label), int(answer)] += 1
    np.testing.assert_array_equal(conf, ref)
    assert np.trace(conf) == res.n_correct  # the diagonal is the right answers
    assert conf.dtype == np.int64


def test_empty_class_gives_nan_not_an_error():
    outputs = np.zeros((3, 4, 3))
    outputs[:, :, 0] = 1.0
    dec = decode_outputs(outputs, np.array([0, 0, 1, 1]))  # class 2 has no sample
    res = metrics.evaluate(dec, 0.9)
    cm = class_metrics(dec, res, 3)
    assert cm.n.tolist() == [2, 2, 0]
    assert np.isnan(cm.accuracy[2]) and np.isnan(cm.mean_latency[2])
    assert cm.accuracy[:2].tolist() == [1.0, 0.0]


def test_policy_without_threshold_counts_runs_to_the_end(dec):
    steps = np.full(dec.N, dec.T, dtype=np.int32)
    steps[::2] = 1
    res = summarize(dec, steps, policy="fixed")
    cm = class_metrics(dec, res, 10)
    expected = np.bincount(dec.labels[steps == dec.T], minlength=10)
    np.testing.assert_array_equal(cm.never_exits, expected)


def test_out_of_range_classes_are_refused(dec):
    res = metrics.evaluate(dec, 0.6)
    with pytest.raises(DynconfError, match="labels must lie in 0..4"):
        class_metrics(dec, res, 5)
    with pytest.raises(DynconfError, match="answers"):
        confusion_at_exit([0, 1], [0, 7], 3)
    with pytest.raises(DynconfError, match="2 labels but 3 answers"):
        confusion_at_exit([0, 1], [0, 1, 1], 3)


def test_take_picks_rows_in_order(dec):
    cm = class_metrics(dec, metrics.evaluate(dec, 0.6), 10)
    sub = cm.take([7, 2])
    assert sub.n.tolist() == [cm.n[7], cm.n[2]]
    np.testing.assert_array_equal(sub.accuracy, cm.accuracy[[7, 2]])
    assert sub.never_exits.tolist() == cm.never_exits[[7, 2]].tolist()
