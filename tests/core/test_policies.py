"""Exit policies against plain per-sample loops written from their definitions, the exact
threshold and patience fits against a brute force over every candidate, and the online
(per-step) form against the cached-run form."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dynconf.core import metrics
from dynconf.core.decoders import DECODERS, Decoded, decode, decode_outputs
from dynconf.core.policies import POLICIES, Patience, Threshold, get_policy
from dynconf.core.policies.base import accuracy_needed
from dynconf.core.policies.patience import PATIENCE_GRID
from dynconf.core.policies.threshold import choose_threshold
from dynconf.errors import DynconfError
from tests.helpers import synthetic_split


def decoded(seed=0, n=300, T=16, decoder="paper", kappa=None):
    arrays = synthetic_split(n, T, 10, seed, neurons=100, dtype=np.float32)
    return decode_outputs(arrays["outputs"], arrays["labels"], decoder, kappa), arrays


def ref_patience(dec, C, k):
    """Exit at the first t with c_t > C whose answer held at t-k+1..t; else T (a plain loop)."""
    conf, pred = dec.confidence.tolist(), dec.prediction.tolist()
    steps = []
    for i in range(dec.N):
        tau = dec.T
        for t in range(dec.T):
            held = t + 1 >= k and all(pred[s][i] == pred[t][i] for s in range(t - k + 1, t + 1))
            if conf[t][i] > C and held:
                tau = t + 1
                break
        steps.append(tau)
    return np.asarray(steps)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("C", [0.0, 0.3, 0.55, 0.8, 0.97])
def test_patience_matches_reference(k, C):
    dec, _ = decoded(seed=k)
    policy = Patience(C, k)
    np.testing.assert_array_equal(policy.exit_steps(dec), ref_patience(dec, C, k))
    res = policy.evaluate(dec)
    assert res.policy == "patience" and res.params == {"threshold": C, "k": k}
    assert res.threshold == C
    assert res.accuracy == ref_correct(dec, res.exit_steps) / dec.N


def ref_correct(dec, steps):
    return sum(bool(dec.correct[s - 1, i]) for i, s in enumerate(steps))


def test_patience_one_is_the_threshold_rule_and_waiting_longer_never_exits_earlier():
    dec, _ = decoded(seed=4)
    for C in (0.2, 0.5, 0.9):
        base = Threshold(C).exit_steps(dec)
        np.testing.assert_array_equal(Patience(C, 1).exit_steps(dec), base)
        previous = base
        for k in (2, 3, 4):
            steps = Patience(C, k).exit_steps(dec)
            assert (steps >= previous).all()
            previous = steps


def test_patience_rejects_bad_k():
    dec, _ = decoded(seed=1, n=20)
    for k in (0, -1, 1.5, True, "x"):
        with pytest.raises(DynconfError, match="integer >= 1"):
            Patience(0.5, k).exit_steps(dec)


def test_threshold_policy_is_the_metrics_rule():
    dec, arrays = decoded(seed=2)
    for C in (0.1, 0.6, 1.0):
        a = Threshold(C).evaluate(dec, spikes=arrays["spikes"], neurons=100)
        b = metrics.evaluate(dec, C, spikes=arrays["spikes"], neurons=100)
        assert a.to_dict() == b.to_dict()
        assert json.dumps(a.to_dict(per_sample=False), allow_nan=False)


def random_split(seed: int, n: int, T: int):
    """A small split with a random confidence and correctness (ties included), so the fits
    meet every case: records of every length, answers that flip, equal confidences."""
    rng = np.random.default_rng(seed)
    conf = np.round(rng.random((T, n)), 2)  # rounding makes ties
    pred = rng.integers(0, 3, (T, n)).astype(np.int32)
    pred[T // 2 :] = np.where(rng.random((T - T // 2, n)) < 0.7, pred[-1], pred[T // 2 :])
    labels = rng.integers(0, 3, n).astype(np.int64)
    return Decoded("paper", float(T), conf, pred, pred == labels[None, :], labels)


def brute_best(dec, need, exits):
    """(latency sum, correct) of the fastest candidate meeting ``need`` (ties: more correct),
    over every distinct confidence value and 0, 1, exit steps from ``exits(C)``."""
    best = None
    for C in sorted(set(dec.confidence.ravel().tolist()) | {0.0, 1.0}):
        steps = exits(C)
        n_correct = ref_correct(dec, steps)
        if n_correct >= need:
            key = (int(sum(steps)), -n_correct)
            best = key if best is None or key < best else best
    return best[0], -best[1]


def ref_threshold(dec, C):
    conf = dec.confidence.tolist()
    return [next((t + 1 for t in range(dec.T) if conf[t][i] > C), dec.T) for i in range(dec.N)]


@pytest.mark.parametrize("tolerance", [0.0, 0.05, 0.2])
@pytest.mark.parametrize("seed", range(4))
def test_threshold_fit_is_optimal_over_every_candidate(seed, tolerance):
    dec = random_split(seed, n=50, T=8)
    need = accuracy_needed(dec, tolerance)
    fitted = Threshold().fit(dec, tolerance)
    res = fitted.evaluate(dec)
    assert (int(res.exit_steps.sum()), res.n_correct) == brute_best(
        dec, need, lambda C: ref_threshold(dec, C)
    )
    assert metrics.select_threshold(dec, dec, tolerance=tolerance).threshold == fitted.threshold_
    # A display grid can only do as well or worse.
    grid = metrics.default_thresholds(dec, 20)
    coarse = choose_threshold(dec, tolerance, grid)
    assert coarse.sweep.mean_latency[coarse.index] >= res.mean_latency


@pytest.mark.parametrize("tolerance", [0.0, 0.1])
@pytest.mark.parametrize("seed", range(3))
def test_patience_fit_is_optimal_over_every_k_and_candidate(seed, tolerance):
    dec = random_split(10 + seed, n=40, T=7)
    need = accuracy_needed(dec, tolerance)
    res = Patience().fit(dec, tolerance).evaluate(dec)
    best = min(
        brute_best(dec, need, lambda C, k=k: ref_patience(dec, C, k))
        for k in PATIENCE_GRID
        if k <= dec.T
    )
    assert (int(res.exit_steps.sum()), res.n_correct) == (best[0], best[1])
    for k in (1, 3):  # a given k: the best C for that k
        fixed = Patience(k=k).fit(dec, tolerance)
        want = brute_best(dec, need, lambda C, k=k: ref_patience(dec, C, k))
        got = fixed.evaluate(dec)
        assert fixed.k_ == k and (int(got.exit_steps.sum()), got.n_correct) == want


def test_registry():
    assert list(POLICIES) == [
        "threshold", "patience", "schedule", "topk_gap", "conformal", "learned"
    ]  # fmt: skip
    assert get_policy("patience") is Patience
    for name, cls in POLICIES.items():
        assert cls.name == name and cls.summary
    with pytest.raises(DynconfError, match="unknown policy"):
        get_policy("oracle")


def run_online(policy, outputs, decoder, kappa, order):
    """Drive a policy's online form as the engine does, one step at a time, with rows
    refilled by the next sample (in ``order``) as soon as one exits."""
    T, N, K = outputs.shape
    rule = policy.online(decoder, kappa, T)
    rows = list(order[:4])
    waiting = list(order[4:])
    S = np.zeros((len(rows), K))
    age = np.zeros(len(rows), np.int64)
    steps = np.zeros(N, np.int64)
    while rows:
        z = np.stack([outputs[a, i] for a, i in zip(age, rows, strict=True)]).astype(np.float64)
        age += 1
        S = S + z
        leaving = rule.step(S, z, age) | (age >= T)
        for r in np.flatnonzero(leaving):
            steps[rows[r]] = age[r]
        for r in np.flatnonzero(leaving):
            if waiting:
                rows[r] = waiting.pop(0)
                S[r], age[r] = 0.0, 0
                rule.restart(np.array([r]))
            else:
                rows[r] = None
        stay = np.array([r for r in range(len(rows)) if rows[r] is not None], np.int64)
        if len(stay) < len(rows):
            rule.keep(stay)
            rows = [rows[r] for r in stay]
            S, age = S[stay], age[stay]
    return steps


@pytest.mark.parametrize("decoder", tuple(DECODERS))
@pytest.mark.parametrize(
    "policy", [Threshold(0.7), Patience(0.6, 3)], ids=["threshold", "patience"]
)
def test_online_form_exits_where_the_cached_run_says(decoder, policy):
    _, arrays = decoded(seed=8, n=60, T=12)
    outputs = arrays["outputs"].astype(np.float64)
    dec = decode_outputs(
        outputs, arrays["labels"], decoder, 5.0 if DECODERS[decoder].uses_kappa else None
    )
    order = np.random.default_rng(0).permutation(60)
    got = run_online(policy, outputs, decoder, dec.kappa, order)
    np.testing.assert_array_equal(got, policy.exit_steps(dec))
    assert 1 < got.mean() < 12 or decoder == "step"


def test_policies_work_on_top_k_runs(tmp_path):
    from dynconf.core.store import save_run

    arrays = synthetic_split(200, 10, 12, seed=3, neurons=50, dtype=np.float32)
    full = save_run(tmp_path / "full", {"test": arrays})
    topk = save_run(tmp_path / "topk", {"test": arrays}, storage="topk", topk=3)
    a, b = decode(full.split("test"), "paper"), decode(topk.split("test"), "paper")
    for policy in (Threshold(0.5), Patience(0.5, 2)):
        np.testing.assert_array_equal(policy.exit_steps(a), policy.exit_steps(b))


def test_compare_policies_fits_each_the_same_way():
    from dynconf.core.oracle import oracle
    from dynconf.core.policies.comparison import compare_policies

    cal, _ = decoded(seed=9, n=400)
    test, arrays = decoded(seed=10, n=400)
    out = compare_policies(cal, test, 0.01, test_spikes=arrays["spikes"], neurons=100)
    # A bare Decoded has no raw gap (topk_gap) and no per-class outputs (conformal).
    assert [f.name for f in out.fits] == [n for n in POLICIES if n not in out.skipped]
    assert set(out.skipped) == {"topk_gap", "conformal"}
    for fit in out.fits:
        policy = POLICIES[fit.name]().fit(cal, 0.01)
        assert fit.params == policy.params
        assert fit.test.to_dict() == policy.evaluate(test, arrays["spikes"], 100).to_dict()
        assert fit.calibration.n_correct >= accuracy_needed(cal, 0.01)
    best = oracle(test, "stays_correct", "cap")
    assert out.oracle.mean_latency == best.mean_latency
    ref = out.fits[0].test.mean_latency
    assert out.fits[0].latency_vs_threshold == 1.0 and out.fits[0].gap_closed == 0.0
    patience = out.fits[1]
    assert patience.gap_closed == pytest.approx(
        (ref - patience.test.mean_latency) / (ref - best.mean_latency)
    )
    with pytest.raises(DynconfError, match="same decoder"):
        compare_policies(cal, decoded(seed=10, decoder="mean")[0])
