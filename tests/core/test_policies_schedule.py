"""The regularised schedule fits (shared blocks, monotone) against plain per-sample loops
written from their definition (docs/POLICIES.md, "schedule"), and the fitted policy's
online form against its cached form."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dynconf.core.policies import Schedule
from dynconf.core.policies.schedule import block_starts, fit_schedule
from dynconf.errors import DynconfError
from tests.core.test_policies import run_online
from tests.core.test_policies_lab import ref_first_above, split


def ref_blocks(T, blocks):
    """Blocks of 1-based steps 1..T-1 as lists, bounds round(geomspace(1, T, blocks + 1))."""
    if blocks is None:
        return [[t] for t in range(1, T)]
    bounds = sorted({int(round(x)) for x in np.geomspace(1, T, blocks + 1).tolist()})
    return [list(range(lo, hi)) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


def ref_fit(conf, correct, weight, blocks, monotone):
    """Backward induction over blocks, every candidate cut tried by brute force: the value of
    each sample for a cut is lambda * correct - t at its first step in the block above the
    cut, else what it was worth entering the next block."""
    T, N = len(conf), len(conf[0])
    thresholds = [-math.inf] * T
    worth = [weight * correct[T - 1][i] - T for i in range(N)]
    floor = -math.inf
    for steps in reversed(ref_blocks(T, blocks)):

        def value(i, b, steps=steps, worth=worth):
            t = next((t for t in steps if conf[t - 1][i] > b), None)
            return worth[i] if t is None else weight * correct[t - 1][i] - t

        values = {c for t in steps for c in (conf[t - 1][i] for i in range(N))}
        best_b, best_total = 1.0, sum(worth)  # nobody exits
        for b in sorted(values, reverse=True)[1:] + [-math.inf]:
            if b < floor:
                continue
            total = sum(value(i, b) for i in range(N))
            if total > best_total + 1e-9:
                best_b, best_total = b, total
        worth = [value(i, best_b) for i in range(N)]
        for t in steps:
            thresholds[t - 1] = best_b
        if monotone:
            floor = best_b
    return thresholds


@pytest.mark.parametrize("monotone", [False, True])
@pytest.mark.parametrize("blocks", [None, 1, 3, 5])
@pytest.mark.parametrize("weight", [6.0, 80.0])
def test_regularised_schedule_fit_and_exits_match_a_plain_loop(weight, blocks, monotone):
    cal, _ = split(seed=7, n=60, T=12)
    conf, correct = cal.confidence.tolist(), cal.correct.astype(int).tolist()
    want = ref_fit(conf, correct, weight, blocks, monotone)
    got = fit_schedule(cal, weight, blocks, monotone)
    np.testing.assert_allclose(got, want)
    if monotone:
        assert all(a >= b for a, b in zip(got[:-1], got[1:], strict=True))
    policy = Schedule(weight, blocks, monotone).fit(cal)
    assert policy.thresholds_ == got
    test, _ = split(seed=8, n=150, T=12)
    for dec in (cal, test):
        np.testing.assert_array_equal(
            policy.exit_steps(dec), ref_first_above(dec.confidence.tolist(), got)
        )
    params = json.loads(json.dumps(policy.params, allow_nan=False))
    assert params["weight"] == weight and params["blocks"] == blocks
    assert Schedule(thresholds=params["thresholds"]).fit(cal).thresholds_ == policy.thresholds_


def test_blocks_are_log_spaced_and_shared():
    assert [len(b) for b in ref_blocks(64, 6)] == [1, 2, 4, 8, 16, 32]
    assert block_starts(64, 6) == [0, 1, 3, 7, 15, 31]
    cal, _ = split(seed=9, n=200, T=16)
    got = fit_schedule(cal, 50.0, 3)
    starts = block_starts(16, 3)
    for a, b in zip(starts, [*starts[1:], 15], strict=True):
        assert len(set(got[a:b])) == 1
    for bad in (0, 2.5, -1):
        with pytest.raises(DynconfError, match="blocks"):
            fit_schedule(cal, 50.0, bad)


def test_fitted_schedule_is_monotone_and_runs_online_where_cached():
    cal, _ = split(seed=10, n=400)
    test, arrays = split(seed=11, n=300)
    fitted = Schedule().fit(cal, 0.0)
    assert fitted.monotone and fitted.blocks is None
    th = fitted.thresholds_
    assert all(a >= b for a, b in zip(th[:-1], th[1:], strict=True))
    outputs = arrays["outputs"].astype(np.float64)
    order = np.random.default_rng(0).permutation(test.N)
    online = run_online(fitted, outputs, "paper", test.kappa, order)
    np.testing.assert_array_equal(online, fitted.exit_steps(test))
    assert (fitted.exit_steps(test) < test.T).any()  # it does exit early


@pytest.mark.parametrize("monotone", [False, True])
def test_the_shared_sort_induction_equals_the_per_step_fit(monotone):
    """SortedSteps sorts each step once for every lambda; fit_schedule sorts per step and
    lambda: the same thresholds."""
    from dynconf.core.policies.schedule import SortedSteps

    cal, _ = split(seed=12, n=300, T=14)
    shared = SortedSteps(cal)
    for weight in (3.0, 40.0, 900.0):
        assert shared.induction(cal, weight, monotone) == fit_schedule(cal, weight, None, monotone)
