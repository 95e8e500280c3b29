"""The policy lab (schedule, topk_gap, conformal, learned) against plain per-sample loops
written from their definitions (docs/POLICIES.md), their online forms against the cached
forms, the conformal coverage guarantee over random re-splits, and the comparison/CLI."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

from dynconf.core.decoders import DECODERS, decode_outputs
from dynconf.core.oracle import oracle
from dynconf.core.policies import (
    POLICIES,
    Conformal,
    Learned,
    Schedule,
    Threshold,
    TopkGap,
    attach_outputs,
)
from dynconf.core.policies.base import accuracy_needed
from dynconf.core.policies.comparison import compare_policies, split_decoder
from dynconf.core.policies.conformal import default_checkpoints
from dynconf.core.policies.schedule import fit_schedule
from dynconf.core.policies.topk_gap import fit_betas
from dynconf.errors import DynconfError
from tests.core.test_policies import run_online
from tests.helpers import synthetic_split


def split(seed, n=300, T=16, decoder="paper", kappa=None):
    arrays = synthetic_split(n, T, 10, seed, neurons=100, dtype=np.float32)
    outputs = arrays["outputs"].astype(np.float64)
    dec = decode_outputs(outputs, arrays["labels"], decoder, kappa)
    return attach_outputs(dec, outputs), arrays


def stays_correct_step(correct_column):
    """Plain loop: earliest t (1-based) with the answer right at every step t..T, T+1 if none."""
    T = len(correct_column)
    for t in range(T):
        if all(correct_column[t:]):
            return t + 1
    return T + 1


def ref_first_above(scores, thresholds):
    T, N = len(scores), len(scores[0])
    out = []
    for i in range(N):
        out.append(next((t + 1 for t in range(T) if scores[t][i] > thresholds[t]), T))
    return np.asarray(out)


# --------------------------------------------------------------------------- topk_gap


def ref_betas(gaps, safe_from, epsilon):
    """beta_t = the smallest b with share(oracle step <= t | gap_t > b) >= 1 - eps, over the
    candidate cuts: every distinct gap at t, and -inf (everybody); +inf if none qualifies."""
    T, N = len(gaps), len(gaps[0])
    betas = []
    for t in range(T):
        best = math.inf
        for b in sorted({*gaps[t], -math.inf}):
            chosen = [i for i in range(N) if gaps[t][i] > b]
            if not chosen:
                continue
            bad = sum(1 for i in chosen if safe_from[i] > t + 1)
            if bad <= epsilon * len(chosen) + 1e-9:
                best = b
                break
        betas.append(best)
    return betas


def raw_gaps(outputs):
    S = np.cumsum(outputs, axis=0)
    top = np.sort(S, axis=2)
    return (top[..., -1] - top[..., -2]).tolist()


@pytest.mark.parametrize("epsilon", [0.0, 0.02, 0.1, 0.3])
def test_topk_gap_is_snncutoffs_rule_on_the_raw_gap(epsilon):
    cal, cal_arrays = split(seed=1, n=200, T=12, decoder="gap")
    test, test_arrays = split(seed=2, n=200, T=12, decoder="gap")
    safe_from = [stays_correct_step(cal.correct[:, i].tolist()) for i in range(cal.N)]
    betas = ref_betas(raw_gaps(cal_arrays["outputs"].astype(np.float64)), safe_from, epsilon)
    policy = TopkGap(epsilon, mode="exact").fit(cal)
    assert policy.thresholds_ == fit_betas(cal, epsilon)
    np.testing.assert_allclose(policy.betas, betas, rtol=1e-9)
    for dec, arrays in ((cal, cal_arrays), (test, test_arrays)):
        want = ref_first_above(raw_gaps(arrays["outputs"].astype(np.float64)), betas)
        np.testing.assert_array_equal(policy.exit_steps(dec), want)
    json.dumps(policy.params, allow_nan=False)


def test_topk_gap_at_epsilon_zero_keeps_the_baseline_and_needs_the_gap_decoder():
    cal, _ = split(seed=3, decoder="gap")
    res = TopkGap(0.0, mode="exact").fit(cal).evaluate(cal)
    assert res.n_correct == int(cal.correct[-1].sum())
    fitted = TopkGap().fit(cal)
    assert fitted.evaluate(cal).n_correct >= accuracy_needed(cal, 0.0)
    paper, _ = split(seed=3)
    with pytest.raises(DynconfError, match="decoder 'gap'"):
        fitted.exit_steps(paper)


# --------------------------------------------------------------------------- schedule


def ref_schedule(conf, correct, weight):
    """Backward induction per sample, written as loops: worth of running from t on."""
    T, N = len(conf), len(conf[0])
    thresholds = [-math.inf] * T
    worth = [weight * correct[T - 1][i] - T for i in range(N)]
    for t in range(T - 2, -1, -1):
        now = [weight * correct[t][i] - (t + 1) for i in range(N)]
        best_b, best_total = 1.0, sum(0.0 for _ in range(N))  # nobody exits
        for b in sorted(set(conf[t]), reverse=True)[1:] + [-math.inf]:
            total = sum(now[i] - worth[i] for i in range(N) if conf[t][i] > b)
            if total > best_total + 1e-9:
                best_b, best_total = b, total
        thresholds[t] = best_b
        worth = [now[i] if conf[t][i] > best_b else worth[i] for i in range(N)]
    return thresholds


@pytest.mark.parametrize("weight", [5.0, 40.0, 400.0])
def test_schedule_fit_and_exits_match_a_plain_loop(weight):
    cal, _ = split(seed=4, n=120, T=10)
    want = ref_schedule(cal.confidence.tolist(), cal.correct.astype(int).tolist(), weight)
    got = fit_schedule(cal, weight)
    np.testing.assert_allclose(got, want)
    policy = Schedule(weight, monotone=False).fit(cal)
    assert policy.thresholds_ == got
    test, _ = split(seed=5, n=200, T=10)
    for dec in (cal, test):
        np.testing.assert_array_equal(
            policy.exit_steps(dec), ref_first_above(dec.confidence.tolist(), got)
        )
    assert json.dumps(policy.params, allow_nan=False)
    again = Schedule(thresholds=policy.params["thresholds"]).fit(cal)
    assert again.thresholds_ == policy.thresholds_


def test_schedule_fit_meets_the_target_and_a_constant_schedule_is_the_threshold_rule():
    cal, _ = split(seed=6, n=400)
    fitted = Schedule().fit(cal, 0.0)
    assert fitted.evaluate(cal).n_correct >= accuracy_needed(cal, 0.0)
    for C in (0.3, 0.8):
        np.testing.assert_array_equal(
            Schedule(thresholds=(C,) * cal.T).exit_steps(cal), Threshold(C).exit_steps(cal)
        )
    with pytest.raises(DynconfError, match="thresholds"):
        Schedule(thresholds=(0.5,) * 3).exit_steps(cal)


# --------------------------------------------------------------------------- conformal


def ref_conformal(cal, dec, alpha, correction, checkpoints, max_size=1):
    """Per sample: p-values by counting, Bonferroni or causal Simes drops, first checkpoint
    whose set has 1..max_size classes; (steps, set size at exit, label covered)."""
    P_cal = cal.cache["outputs"]
    J, n = len(checkpoints), cal.N

    def probs(outputs, i, t):
        S = np.cumsum(outputs[:t, i].astype(np.float64), axis=0)[-1]
        z = outputs[t - 1, i].astype(np.float64)
        return DECODERS[cal.decoder].probabilities(S, z, float(t), cal.kappa)

    true_scores = [[1.0 - probs(P_cal, i, t)[cal.labels[i]] for i in range(n)] for t in checkpoints]
    steps, sizes, covered = [], [], []
    outputs = dec.cache["outputs"]
    for i in range(dec.N):
        pvals = {y: [] for y in range(outputs.shape[2])}
        exit_at, last_set = None, None
        for j, t in enumerate(checkpoints):
            p = probs(outputs, i, t)
            members = []
            for y in range(len(p)):
                s = 1.0 - p[y]
                pv = (1 + sum(1 for v in true_scores[j] if v >= s)) / (n + 1)
                pvals[y].append(pv)
                if correction == "bonferroni":
                    keep = not pv <= alpha / J + 1e-9 / (n + 1)
                else:
                    ordered = sorted(pvals[y])
                    keep = not any(
                        ordered[k - 1] <= k * alpha / J + 1e-9 / (n + 1)
                        for k in range(1, len(ordered) + 1)
                    )
                if keep:
                    members.append(y)
            last_set = members
            if 1 <= len(members) <= max_size:
                exit_at = t
                break
        steps.append(exit_at if exit_at is not None else dec.T)
        sizes.append(len(last_set))
        covered.append(int(dec.labels[i]) in last_set)
    return np.asarray(steps), np.asarray(sizes), np.asarray(covered)


@pytest.mark.parametrize("correction", ["bonferroni", "simes"])
@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_conformal_matches_a_plain_loop(correction, alpha):
    cal, _ = split(seed=7, n=150, T=12)
    test, _ = split(seed=8, n=80, T=12)
    checkpoints = (2, 5, 8, 12)
    policy = Conformal(alpha, correction, checkpoints, max_set_size=2).fit(cal)
    steps, sizes, covered = ref_conformal(cal, test, alpha, correction, checkpoints, 2)
    res = policy.evaluate(test)
    np.testing.assert_array_equal(res.exit_steps, steps)
    assert res.extras["mean_set_size"] == pytest.approx(sizes.mean())
    assert res.extras["coverage"] == pytest.approx(covered.mean())
    assert res.to_dict()["coverage"] == pytest.approx(covered.mean())
    assert 1 < res.mean_latency < 12


def test_simes_sets_are_never_larger_than_bonferronis():
    cal, _ = split(seed=9, n=300)
    test, _ = split(seed=10, n=300)
    cps = default_checkpoints(cal.T, 4)
    bon = Conformal(0.1, "bonferroni", cps).fit(cal)
    sim = Conformal(0.1, "simes", cps).fit(cal)
    assert (sim.exit_steps(test) <= bon.exit_steps(test)).mean() > 0.9
    assert sim.evaluate(test).extras["coverage"] <= bon.evaluate(test).extras["coverage"] + 0.02


def subset(dec, idx):
    from dynconf.core.decoders import Decoded

    out = Decoded(
        dec.decoder,
        dec.kappa,
        dec.confidence[:, idx],
        dec.prediction[:, idx],
        dec.correct[:, idx],
        dec.labels[idx],
    )
    return attach_outputs(out, dec.cache["outputs"][:, idx])


@pytest.mark.parametrize("correction", ["bonferroni", "simes"])
def test_conformal_coverage_holds_over_random_resplits(correction):
    """The guarantee is statistical: over 200 random calibration/test splits of 3,000
    samples, the mean share of test labels inside the set at exit is >= 1 - alpha."""
    pool, _ = split(seed=11, n=3000, T=16)
    rng = np.random.default_rng(0)
    alpha, coverages, latencies = 0.1, [], []
    for _ in range(200):
        order = rng.permutation(pool.N)
        cal, test = subset(pool, order[:1000]), subset(pool, order[1000:])
        res = Conformal(alpha, correction, (2, 4, 8, 16)).fit(cal).evaluate(test)
        coverages.append(res.extras["coverage"])
        latencies.append(res.mean_latency)
    assert np.mean(coverages) >= 1 - alpha
    assert min(latencies) < 16  # the sets do get small: it is not covering by never stopping


def test_conformal_needs_full_outputs():
    arrays = synthetic_split(100, 8, 10, 1, neurons=10, dtype=np.float32)
    bare = decode_outputs(arrays["outputs"], arrays["labels"])
    with pytest.raises(DynconfError, match="full per-step outputs"):
        Conformal().fit(bare)


# --------------------------------------------------------------------------- learned


def ref_learned_scores(dec, model):
    """The features and score per sample with plain loops."""
    T, N = dec.T, dec.N
    out = np.empty((T, N))
    for i in range(N):
        run, best = 0, -math.inf
        for t in range(T):
            c = float(dec.confidence[t, i])
            prev = float(dec.confidence[t - 1, i]) if t else c
            changed = t > 0 and dec.prediction[t, i] != dec.prediction[t - 1, i]
            run = 1 if t == 0 or changed else run + 1
            best = max(best, c)
            x = [c, c - prev, float(changed), run / T, (t + 1) / T, best, c * (t + 1) / T]
            acc = model.bias_ + sum(
                w * (v - m) / s
                for v, w, m, s in zip(x, model.weights_, model.means_, model.scales_, strict=True)
            )
            out[t, i] = 1.0 / (1.0 + math.exp(-acc))
    return out


def test_learned_scores_and_exits_match_a_plain_loop_and_are_cross_fitted():
    cal, _ = split(seed=12, n=300)
    test, _ = split(seed=13, n=200)
    fitted = Learned().fit(cal, 0.0)
    again = Learned().fit(split(seed=12, n=300)[0], 0.0)
    assert fitted.params == again.params  # deterministic
    want = ref_learned_scores(test, fitted)
    np.testing.assert_allclose(fitted.scored(test).confidence, want, rtol=1e-12)
    np.testing.assert_array_equal(
        fitted.exit_steps(test), ref_first_above(want.tolist(), [fitted.threshold_] * test.T)
    )
    # On calibration the scores are out of fold, not the final model's in-sample ones.
    in_sample = ref_learned_scores(cal, fitted)
    oof = fitted.scored(cal).confidence
    assert not np.allclose(oof, in_sample)
    assert fitted.evaluate(cal).n_correct >= accuracy_needed(cal, 0.0)
    assert json.dumps(fitted.params, allow_nan=False)


# --------------------------------------------------------------------------- online forms


def fitted_lab_policies(seed=20):
    cal, _ = split(seed, n=300, T=12, kappa=5.0)
    gap_cal, _ = split(seed, n=300, T=12, decoder="gap", kappa=5.0)
    return {
        "schedule": Schedule(thresholds=fit_schedule(cal, 60.0)),
        "topk_gap": TopkGap(0.05, mode="exact").fit(gap_cal),
        "conformal_bonferroni": Conformal(0.1, "bonferroni", (3, 6, 9, 12)).fit(cal),
        "conformal_simes": Conformal(0.1, "simes", (3, 6, 9, 12)).fit(cal),
        "learned": Learned().fit(cal, 0.01),
    }


LAB = fitted_lab_policies()


@pytest.mark.parametrize("decoder", ["paper", "gap", "margin", "mean"])
@pytest.mark.parametrize("name", list(LAB))
def test_lab_online_forms_exit_where_the_cached_run_says(decoder, name):
    policy = LAB[name]
    arrays = synthetic_split(60, 12, 10, 8, neurons=100, dtype=np.float32)
    outputs = arrays["outputs"].astype(np.float64)
    use = policy.decoder or decoder
    dec = decode_outputs(outputs, arrays["labels"], use, 5.0 if DECODERS[use].uses_kappa else None)
    attach_outputs(dec, outputs)
    if name == "learned" and decoder != "paper":
        policy = Learned(policy.threshold_).set_fitted(policy.fitted_state())
    order = np.random.default_rng(0).permutation(60)
    got = run_online(policy, outputs, decoder, dec.kappa, order)
    np.testing.assert_array_equal(got, policy.exit_steps(dec))
    assert 1 < got.mean() < 12


# --------------------------------------------------------------------------- comparison, CLI


def test_compare_policies_with_decode_functions_runs_every_policy(tmp_path):
    from dynconf.core.store import save_run

    run = save_run(
        tmp_path / "r",
        {
            "calibration": synthetic_split(400, 16, 10, 30, neurons=100, dtype=np.float32),
            "test": synthetic_split(400, 16, 10, 31, neurons=100, dtype=np.float32),
        },
        neurons=100,
    )
    cal_fn, test_fn = split_decoder(run.split("calibration")), split_decoder(run.split("test"))
    out = compare_policies(cal_fn, test_fn, 0.0, test_spikes=run.split("test").spikes, neurons=100)
    assert [f.name for f in out.fits] == list(POLICIES) and not out.skipped
    for fit in out.fits:
        cls = POLICIES[fit.name]
        dec_cal = cal_fn(cls.decoder or "paper", None)
        assert fit.decoder == (cls.decoder or "paper")
        assert fit.calibration.n_correct >= accuracy_needed(dec_cal, 0.0)
        again = cls().fit(dec_cal, 0.0).evaluate(test_fn(fit.decoder, None))
        assert fit.test.exit_steps.tolist() == again.exit_steps.tolist()
    conformal = next(f for f in out.fits if f.name == "conformal")
    assert 0 <= conformal.test.extras["coverage"] <= 1
    assert out.oracle.mean_latency == oracle(test_fn("paper", None), "stays_correct").mean_latency
    assert json.dumps(out.to_dict(), allow_nan=False)
    # The bare-Decoded call still works: what cannot run there is skipped, with the reason.
    from dynconf.core.decoders import decode

    bare_cal, bare_test = decode(run.split("calibration")), decode(run.split("test"))
    bare = compare_policies(bare_cal, bare_test)
    assert set(bare.skipped) == {"topk_gap", "conformal"}
    assert [f.name for f in bare.fits] == ["threshold", "patience", "schedule", "learned"]
    with pytest.raises(DynconfError, match="decoder 'gap'"):
        compare_policies(bare_cal, bare_test, names=["topk_gap"])


def test_kappa_auto_keeps_the_fastest_threshold_meeting_the_target(tmp_path):
    from dynconf.core.store import save_run

    run = save_run(
        tmp_path / "r",
        {
            "calibration": synthetic_split(400, 16, 10, 32, neurons=100, dtype=np.float32),
            "test": synthetic_split(400, 16, 10, 33, neurons=100, dtype=np.float32),
        },
    )
    cal_fn, test_fn = split_decoder(run.split("calibration")), split_decoder(run.split("test"))
    out = compare_policies(cal_fn, test_fn, 0.0, names=["threshold"], kappa="auto")
    assert out.kappa in [s["kappa"] for s in out.kappa_search]
    fastest = min(s["mean_latency"] for s in out.kappa_search)
    chosen = next(s for s in out.kappa_search if s["kappa"] == out.kappa)
    assert chosen["mean_latency"] == fastest
    fixed = Threshold().fit(cal_fn("paper", out.kappa)).evaluate(test_fn("paper", out.kappa))
    assert out.fits[0].test.mean_latency == fixed.mean_latency and out.fits[0].kappa == out.kappa


def cli(argv):
    from dynconf.cli import policies

    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    policies.add_arguments(parser)
    return policies.run_command(parser.parse_args(argv))


def test_policies_command(synthetic_run):
    path = str(synthetic_run.path)
    out = cli([path, "--calibration-split", "calibration", "--eval-split", "test", "--json"])
    text = json.dumps(out, allow_nan=False)
    assert [p["name"] for p in out["policies"]] == list(POLICIES)
    for p in out["policies"]:
        for key in ("accuracy", "mean_latency", "spikes_per_neuron_at_exit",
                    "latency_vs_threshold", "gap_closed"):  # fmt: skip
            assert key in p["test"]
    conformal = next(p for p in out["policies"] if p["name"] == "conformal")
    assert {"coverage", "mean_set_size"} <= set(conformal["test"])
    assert out["oracle"]["variant"] == "stays_correct"
    assert '"policies"' in text
    from dynconf.cli.policies import format_text

    table = format_text(
        cli([path, "--policy", "threshold", "--policy", "learned", "--kappa", "auto"])
    )
    assert "threshold" in table and "learned" in table and "oracle" in table
    with pytest.raises(DynconfError, match="must differ"):
        cli([path, "--calibration-split", "test", "--eval-split", "test"])
    with pytest.raises(SystemExit):
        cli([path, "--kappa", "big"])
