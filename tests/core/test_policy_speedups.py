"""The fast paths of the exit policies' fits against slow references written from the
definitions: the learned policy's Newton logistic fit against plain gradient descent, a
per-row gradient and scikit-learn; Simes' prediction sets against per-class p-values; and
the conformal fit's shared checkpoint probabilities against computing each set alone; the
threshold sweep's event sums against a per-sample loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dynconf.core.oracle import _oracle_steps
from dynconf.core.policies import Conformal, Learned
from dynconf.core.policies import conformal as conformal_module
from dynconf.core.policies.conformal import (
    checkpoint_probabilities,
    cut_scores,
    default_checkpoints,
    prediction_sets,
)
from dynconf.core.policies.learned import (
    SplitFeatures,
    _train,
    logistic_fit,
    split_features,
    training_columns,
)
from dynconf.core.policies.patience import PATIENCE_GRID, Patience, masked
from dynconf.core.policies.threshold import ThresholdCache, exact_choice
from tests.core.test_policies_lab import split


def logistic_data(seed: int, n: int = 300, F: int = 7):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(F, n))
    X[F - 1] = 0.8 * X[0] + 0.2 * X[F - 1]  # correlated features, as the learned ones are
    z = rng.normal(size=F) @ X + 0.3
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-z))
    return X, y


def objective_gradient_loop(X, y, theta, l2=1.0):
    """The gradient of sum_i log(1 + e^z_i) - y_i z_i + l2/2 |w|^2, one row at a time."""
    F, n = X.shape
    grad = [l2 * theta[f] for f in range(F)] + [0.0]
    for i in range(n):
        z = theta[F] + sum(theta[f] * X[f, i] for f in range(F))
        residual = 1.0 / (1.0 + math.exp(-z)) - float(y[i])
        for f in range(F):
            grad[f] += residual * X[f, i]
        grad[F] += residual
    return np.array(grad)


def gradient_descent(X, y, l2=1.0, steps=20000):
    """Plain gradient descent at step 1 / (Lipschitz constant), from zero."""
    F, n = X.shape
    A = np.vstack([X, np.ones(n)])
    lipschitz = 0.25 * np.linalg.eigvalsh(A @ A.T).max() + l2
    penalty = np.append(np.full(F, l2), 0.0)
    theta = np.zeros(F + 1)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(theta @ A)))
        grad = A @ (p - y) + penalty * theta
        if np.abs(grad).max() < 1e-11:
            break
        theta -= grad / lipschitz
    return theta


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logistic_fit_is_the_optimum_plain_gradient_descent_reaches(seed):
    X, y = logistic_data(seed)
    theta = logistic_fit(X, y)
    assert np.abs(objective_gradient_loop(X, y, theta)).max() < 1e-7
    np.testing.assert_allclose(theta, gradient_descent(X, y), rtol=0, atol=1e-7)
    # The same optimum from any start.
    start = np.random.default_rng(seed).normal(size=theta.shape) * 3
    np.testing.assert_allclose(logistic_fit(X, y, start=start), theta, rtol=0, atol=1e-9)


def test_logistic_fit_matches_scikit_learns_objective():
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = logistic_data(5, n=2000)
    ref = linear_model.LogisticRegression(C=1.0, tol=1e-12, max_iter=10000).fit(X.T, y)
    want = np.append(ref.coef_[0], ref.intercept_)
    np.testing.assert_allclose(logistic_fit(X, y), want, rtol=0, atol=1e-6)


def test_a_warm_started_fold_model_is_the_cold_one():
    cal, _ = split(3, n=240, T=12)
    safe = _oracle_steps(cal, "stays_correct")[None, :] <= np.arange(1, cal.T + 1)[:, None]
    rng = np.random.default_rng(0)
    every = training_columns(np.arange(cal.N), cal.T, rng)
    fold = np.sort(rng.choice(cal.N, 180, replace=False))
    features = SplitFeatures(cal.confidence, cal.prediction, cal.T)
    assert features.shared is not None
    for got, want in zip(features(fold), split_features(cal.confidence[:, fold],
                         cal.prediction[:, fold], cal.T), strict=True):  # fmt: skip
        np.testing.assert_array_equal(got, want)  # a sample's features are its own
    final = _train(features, safe, every)
    cold = _train(features, safe, fold)
    warm = _train(features, safe, fold, final)
    assert cold[2:] == warm[2:]  # the same standardisation
    np.testing.assert_allclose(warm[0], cold[0], rtol=0, atol=1e-8)
    assert warm[1] == pytest.approx(cold[1], abs=1e-8)


def test_learned_fit_meets_its_target_with_the_newton_model():
    cal, _ = split(4, n=300, T=16)
    policy = Learned().fit(cal, 0.0)
    steps = policy.exit_steps(cal)
    assert int(cal.correct[steps - 1, np.arange(cal.N)].sum()) >= int(cal.correct[-1].sum())


def simes_sets_loop(true_scores, scores, alpha):
    """Simes' sets from per-class conformal p-values: y is out at checkpoint j once, for some
    k, the k-th smallest of its p-values at checkpoints 1..j is <= k alpha / J."""
    J, n = true_scores.shape
    _, B, K = scores.shape
    inside = np.ones(scores.shape, bool)
    for b in range(B):
        for y in range(K):
            pvalues = []
            for j in range(J):
                above = sum(1 for i in range(n) if true_scores[j, i] >= scores[j, b, y])
                pvalues.append((1 + above) / (n + 1))
                ordered = sorted(pvalues)
                # p <= a, as the policy tests it: #{s_i >= s} <= a (n + 1) - 1 (+1e-9)
                if any((ordered[k - 1] * (n + 1) - 1) <= k * alpha / J * (n + 1) - 1 + 1e-9
                       for k in range(1, j + 2)):  # fmt: skip
                    inside[j:, b, y] = False
                    break
    return inside


@pytest.mark.parametrize("seed", range(6))
def test_simes_sets_match_per_class_p_values(seed):
    rng = np.random.default_rng(seed)
    J, n = int(rng.integers(1, 9)), int(rng.integers(5, 40))
    true = rng.random((J, n)).round(int(rng.integers(1, 3)))  # ties too
    scores = rng.random((J, 6, 4)).round(2)
    for alpha in (0.05, 0.2, 0.5):
        got = prediction_sets(scores, cut_scores(true, alpha, "simes"), "simes")
        np.testing.assert_array_equal(got, simes_sets_loop(true, scores, alpha))


def test_conformal_fit_is_the_same_with_or_without_shared_probabilities(monkeypatch):
    cal, _ = split(6, n=200, T=16)
    shared = Conformal().fit(cal, 0.0)
    union = tuple(sorted({t for c in (4, 8, 16) for t in default_checkpoints(cal.T, c)}))
    assert ("conformal_p", union) in cal.cache
    for count in (4, 8, 16):
        checkpoints = default_checkpoints(cal.T, count)
        alone = conformal_module._probabilities(cal, cal.cache["outputs"], checkpoints, 0, cal.N)
        np.testing.assert_array_equal(checkpoint_probabilities(cal, checkpoints), alone)
    fresh, _ = split(6, n=200, T=16)
    monkeypatch.setattr(conformal_module, "CACHE_ELEMENTS", 0)  # nothing kept: each alone
    unshared = Conformal().fit(fresh, 0.0)
    assert unshared.fitted_state() == shared.fitted_state()
    np.testing.assert_array_equal(unshared.exit_steps(fresh), shared.exit_steps(cal))


@pytest.mark.parametrize("seed", [0, 1])
def test_patience_fit_is_the_best_exact_choice_over_k(seed):
    cal, _ = split(seed, n=150, T=12)
    cal = cal.with_confidence(cal.confidence.round(2))  # many ties
    want = {}
    for k in PATIENCE_GRID:  # brute force over k: the threshold rule's exact choice on each
        c, latency, correct = exact_choice(masked(cal, k, keep=False))
        want[(latency, -correct, -k, -c)] = (c, k)
    fitted = Patience().fit(cal)
    assert (fitted.threshold_, fitted.k_) == want[min(want)]


def test_threshold_events_match_a_per_sample_loop():
    cal, _ = split(7, n=60, T=10)
    cal = cal.with_confidence(cal.confidence.round(2))
    cache = ThresholdCache(cal)
    for c in (-1.0, 0.1, 0.35, 0.5, 0.77, 0.9, 1.0):
        latency, n_correct = cache.sweep_counts([c])
        steps = [next((t + 1 for t in range(cal.T) if cal.confidence[t, i] > c), cal.T)
                 for i in range(cal.N)]  # fmt: skip
        assert int(latency[0]) == sum(steps)
        assert int(n_correct[0]) == sum(bool(cal.correct[s - 1, i]) for i, s in enumerate(steps))


@pytest.mark.parametrize("seed", range(4))
def test_exact_threshold_choice_is_the_brute_force_best(seed):
    cal, _ = split(seed + 10, n=40, T=8)
    cal = cal.with_confidence(cal.confidence.round(1))  # ties, and values 0.0 and 1.0
    for tolerance in (0.0, 0.05, 0.2):
        need = math.ceil(int(cal.correct[-1].sum()) - tolerance * cal.N - 1e-9)
        best = None
        for order, c in enumerate(sorted({0.0, 1.0, *cal.confidence.ravel().tolist()})):
            steps = [next((t + 1 for t in range(cal.T) if cal.confidence[t, i] > c), cal.T)
                     for i in range(cal.N)]  # fmt: skip
            correct = sum(bool(cal.correct[s - 1, i]) for i, s in enumerate(steps))
            key = (sum(steps), -correct, -order)
            if correct >= need and (best is None or key < best[0]):
                best = (key, (c, sum(steps), correct))
        assert exact_choice(cal, tolerance) == best[1]
