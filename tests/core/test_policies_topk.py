"""topk_gap's "snncutoff" mode against an independent reference written from SNNCutoff's
definition (plain loops), and on the shipped CIFAR-10 run; the "exact" mode is checked
against its own reference in test_policies_lab.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dynconf.core.decoders import decode_outputs, decode_split
from dynconf.core.policies import TopkGap, attach_outputs
from tests.helpers import synthetic_split

CIFAR = Path(__file__).resolve().parents[2] / "cached_runs" / "cifar10_resnet20"


def ref_gaps(outputs):
    """S_t[top1] - S_t[top2] per step and sample, summing step by step."""
    T, N, K = outputs.shape
    gaps = np.empty((T, N))
    for i in range(N):
        S = np.zeros(K)
        for t in range(T):
            S = S + outputs[t, i]
            top = sorted(S.tolist(), reverse=True)
            gaps[t, i] = top[0] - top[1]
    return gaps


def ref_safe(correct):
    """safe[t][i]: the answer is right at t and at every later step."""
    T, N = correct.shape
    safe = np.zeros((T, N), bool)
    for i in range(N):
        ok = True
        for t in range(T - 1, -1, -1):
            ok = ok and bool(correct[t, i])
            safe[t, i] = ok
    return safe


def ref_snncutoff_betas(gaps, safe, epsilon, bins=100):
    """Bin edges m * G / bins (G: the largest gap anywhere); per step the first edge whose
    exiting set {gap > edge} is at least 1 - epsilon safe, an empty set never qualifying,
    the last edge always qualifying."""
    T, N = gaps.shape
    top = max(gaps.ravel().tolist())
    edges = [m * (top / bins) for m in range(bins)]
    betas = []
    for t in range(T):
        chosen = edges[-1]
        for edge in edges[:-1]:
            inside = [i for i in range(N) if gaps[t, i] > edge]
            if inside and sum(bool(safe[t, i]) for i in inside) / len(inside) >= 1 - epsilon:
                chosen = edge
                break
        betas.append(chosen)
    return betas


def ref_exits(gaps, betas):
    T, N = gaps.shape
    return [next((t + 1 for t in range(T) if gaps[t, i] > betas[t]), T) for i in range(N)]


@pytest.mark.parametrize("epsilon", [0.0, 0.01, 0.05, 0.2])
def test_snncutoff_mode_equals_the_reference(epsilon):
    cal_arrays = synthetic_split(150, 10, 6, 3, neurons=10, dtype=np.float32)
    test_arrays = synthetic_split(150, 10, 6, 4, neurons=10, dtype=np.float32)
    outputs = cal_arrays["outputs"].astype(np.float64)
    cal = attach_outputs(decode_outputs(outputs, cal_arrays["labels"], "gap", 4.0), outputs)
    test_out = test_arrays["outputs"].astype(np.float64)
    test = decode_outputs(test_out, test_arrays["labels"], "gap", 4.0)
    gaps = ref_gaps(outputs)
    betas = ref_snncutoff_betas(gaps, ref_safe(cal.correct), epsilon)
    policy = TopkGap(epsilon).fit(cal)
    assert policy.mode == "snncutoff"
    np.testing.assert_allclose(policy.betas, betas, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(policy.exit_steps(cal), ref_exits(gaps, betas))
    np.testing.assert_array_equal(policy.exit_steps(test), ref_exits(ref_gaps(test_out), betas))


@pytest.mark.skipif(not CIFAR.exists(), reason="shipped CIFAR-10 run not present")
def test_snncutoff_mode_on_the_shipped_cifar_run():
    from dynconf.core.store import load_run

    run = load_run(CIFAR)
    cal_sp, test_sp = run.split("calibration"), run.split("test")
    cal = attach_outputs(decode_split(run, "calibration", "gap"), cal_sp.outputs)
    test = attach_outputs(decode_split(run, "test", "gap"), test_sp.outputs)
    binned = TopkGap(0.0075).fit(cal).evaluate(test)
    assert binned.n_correct == 8810 and round(binned.mean_latency, 2) == 33.74
    assert not (binned.exit_steps == 1).any()  # no sample exits at step 1
    exact = TopkGap(0.0075, mode="exact").fit(cal).evaluate(test)
    assert exact.n_correct == 8804 and round(exact.mean_latency, 2) == 32.59
    assert (exact.exit_steps == 1).sum() == 23
    # Every cut is one of the 100 bin edges up to the largest calibration gap.
    gaps = np.asarray(cal.cache["raw_gaps"])
    edges = np.arange(100) * (gaps.max() / 100)
    assert np.isclose(TopkGap(0.0075).fit(cal).betas, edges[:, None], rtol=1e-9).any(axis=0).all()
