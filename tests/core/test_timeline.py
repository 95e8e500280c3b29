"""dynconf.core.timeline: the state of the exits after step t equals a per-sample replay of
the threshold rule, step by step, and ends in the published result at t = T_max."""

from __future__ import annotations

import numpy as np
import pytest

from dynconf.core import metrics
from dynconf.core.decoders import decode, decode_outputs
from dynconf.core.store import load_run
from dynconf.core.timeline import check_step, example_sample, timeline_state
from dynconf.errors import DynconfError


@pytest.fixture(scope="module")
def dec(dashboard_runs):
    return decode(load_run(dashboard_runs / "synth").split("test"), "paper")


def replay(conf: np.ndarray, correct: np.ndarray, C: float, t: int) -> dict:
    """The rule by hand: walk each sample's steps 1..t; exit at the first c_s > C."""
    T, N = conf.shape
    exited, right, steps, spent, now, never = [], [], [], [], [], []
    hist_ok, hist_bad = [0] * T, [0] * T
    for i in range(N):
        tau = T
        for s in range(1, T + 1):
            if conf[s - 1, i] > C:
                tau = s
                break
        never.append(all(conf[s, i] <= C for s in range(T)))
        ok = bool(correct[tau - 1, i])
        done = tau <= t
        exited.append(done)
        right.append(ok)
        steps.append(tau)
        spent.append(min(tau, t))
        now.append(ok if done else bool(correct[t - 1, i]))
        if done:
            (hist_ok if ok else hist_bad)[tau - 1] += 1
    n_done = sum(exited)
    n_ok = sum(1 for d, r in zip(exited, right, strict=True) if d and r)
    lat = sum(s for d, s in zip(exited, steps, strict=True) if d)
    return {
        "exited": exited, "steps": steps, "right": right, "never": never,
        "n_exited": n_done, "n_ok": n_ok,
        "acc": n_ok / n_done if n_done else None, "lat": lat / n_done if n_done else None,
        "spent": sum(spent) / N, "now": sum(now) / N,
        "fixed": sum(bool(correct[t - 1, i]) for i in range(N)) / N,
        "hist_ok": hist_ok, "hist_bad": hist_bad,
    }  # fmt: skip


@pytest.mark.parametrize("C", [0.0, 0.3, 0.55, 0.8, 0.97, 1.0])
def test_state_matches_a_per_sample_replay(dec, C):
    conf, correct = np.asarray(dec.confidence), np.asarray(dec.correct)
    for t in (1, 2, 5, dec.T - 1, dec.T):
        st = timeline_state(dec, C, t)
        ref = replay(conf, correct, C, t)
        assert st.exited.tolist() == ref["exited"]
        assert st.exit_steps.tolist() == ref["steps"]
        assert st.correct_at_exit.tolist() == ref["right"]
        assert st.never_passed.tolist() == ref["never"]
        assert (st.n_exited, st.n_correct_exited) == (ref["n_exited"], ref["n_ok"])
        assert st.accuracy_exited == (None if ref["acc"] is None else pytest.approx(ref["acc"]))
        assert st.mean_latency_exited == (None if ref["lat"] is None else pytest.approx(ref["lat"]))
        assert st.steps_spent == pytest.approx(ref["spent"])
        assert st.accuracy_now == pytest.approx(ref["now"])
        assert st.fixed_accuracy == pytest.approx(ref["fixed"])
        assert st.exits_correct.tolist() == ref["hist_ok"]
        assert st.exits_wrong.tolist() == ref["hist_bad"]


def test_the_story_ends_in_the_published_result(dec):
    C = 0.7
    res = metrics.evaluate(dec, C)
    end = timeline_state(dec, C, dec.T)
    assert end.n_exited == dec.N and end.exited.all()
    assert end.accuracy_exited == pytest.approx(res.accuracy)
    assert end.accuracy_now == pytest.approx(res.accuracy)
    assert end.mean_latency_exited == pytest.approx(res.mean_latency)
    assert end.steps_spent == pytest.approx(res.mean_latency)
    assert int(end.exits_correct.sum()) == res.n_correct
    # Between, the answers so far and the capped curve agree at every t.
    capped = metrics.capped_curve(dec, C)
    for t in range(1, dec.T + 1):
        st = timeline_state(dec, C, t)
        assert st.accuracy_now == pytest.approx(capped.accuracy[t - 1])
        assert st.steps_spent == pytest.approx(capped.latency[t - 1])


def test_exits_only_grow_with_t(dec):
    before = np.zeros(dec.N, bool)
    for t in range(1, dec.T + 1):
        now = timeline_state(dec, 0.6, t).exited
        assert (now >= before).all()
        before = now


def test_bad_steps_are_refused(dec):
    for bad in (0, dec.T + 1, 2.5, "x", None):
        with pytest.raises(DynconfError, match="step t"):
            timeline_state(dec, 0.5, bad)
    assert check_step(np.int64(3), dec.T) == 3
    with pytest.raises(DynconfError, match="threshold"):
        timeline_state(dec, float("nan"), 1)


def test_no_sample_exits_before_t_when_nothing_passes():
    outputs = np.zeros((4, 3, 2))  # confidence 0.5 everywhere: C = 0.5 is never passed
    dec = decode_outputs(outputs, np.array([0, 1, 0]))
    st = timeline_state(dec, 0.5, 3)
    assert st.n_exited == 0 and st.accuracy_exited is None and st.mean_latency_exited is None
    end = timeline_state(dec, 0.5, 4)
    assert end.n_exited == 3 and end.never_passed.all()


def test_example_sample_is_a_mid_run_right_answer(dec):
    C = 0.7
    res = metrics.evaluate(dec, C)
    i = example_sample(dec, C)
    assert 1 < res.exit_steps[i] < dec.T and res.correct[i]
    steps = res.exit_steps
    pool = (steps > 1) & (steps < dec.T) & res.correct & ~np.asarray(dec.correct[0])
    if pool.any():
        assert not dec.correct[0, i]  # wrong at step 1: the answer changes on screen
        median = np.median(steps[pool])
        assert abs(steps[i] - median) == np.abs(steps[pool] - median).min()
    # Nothing in the middle (C = 0: all exit at step 1): still a valid position.
    assert 0 <= example_sample(dec, 0.0) < dec.N
