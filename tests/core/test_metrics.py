"""metrics.py against a plain per-sample Python reference, plus invariants (hypothesis).

The reference functions below are written from docs/METHOD.md alone, one sample and one step at
a time, and share no code with dynconf.core.metrics.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynconf.core import metrics
from dynconf.core.decoders import Decoded, decode
from dynconf.errors import DynconfError

# --------------------------------------------------------------------------- slow reference


def ref_exit(conf, i, C):
    T = len(conf)
    for t in range(T):
        if conf[t][i] > C:
            return t + 1
    return T


def ref_policy(dec, C, cap=None):
    """(exit steps, accuracy, mean latency) with exit min(tau_i, cap)."""
    conf, correct = dec.confidence.tolist(), dec.correct.tolist()
    T, N = dec.T, dec.N
    cap = T if cap is None else cap
    steps, n_ok = [], 0
    for i in range(N):
        tau = min(ref_exit(conf, i, C), cap)
        steps.append(tau)
        n_ok += correct[tau - 1][i]
    return steps, n_ok / N, sum(steps) / N


def ref_baseline(dec):
    correct = dec.correct.tolist()
    return [sum(row) / dec.N for row in correct]


def ref_first_correct(dec, i, cap):
    for t in range(cap):
        if dec.correct[t, i]:
            return t + 1
    return None


def ref_stays_correct(dec, i):
    T = dec.T
    best = None
    for t in range(T, 0, -1):  # walk back while correct
        if dec.correct[t - 1, i]:
            best = t
        else:
            break
    return best


def ref_oracle(dec, variant, never, cap):
    steps, n_ok = [], 0
    for i in range(dec.N):
        s = (
            ref_first_correct(dec, i, cap)
            if variant == "first_correct"
            else ref_stays_correct(dec, i)
        )
        if s is not None and s <= cap:
            steps.append(s)
            n_ok += 1
        else:
            steps.append(cap if never == "cap" else 1)
    return n_ok / dec.N, sum(steps) / dec.N, steps


def ref_pareto(lat, acc):
    n = len(lat)
    out = []
    for i in range(n):
        dominated = any(
            lat[j] <= lat[i] and acc[j] >= acc[i] and (lat[j] < lat[i] or acc[j] > acc[i])
            for j in range(n)
        )
        out.append(not dominated)
    return out


def ref_near(lat, acc, acc_slack, lat_slack):
    out = []
    for i in range(len(lat)):
        best = max((acc[j] for j in range(len(lat)) if lat[j] <= lat[i] - lat_slack), default=None)
        out.append(best is None or acc[i] >= best - acc_slack - 1e-12)
    return out


# --------------------------------------------------------------------------- helpers


def make_dec(conf, pred, labels) -> Decoded:
    conf = np.asarray(conf, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.int32)
    labels = np.asarray(labels, dtype=np.int64)
    return Decoded("paper", 1.0, conf, pred, pred == labels[None, :], labels)


def random_dec(seed, T=9, N=40, K=3, levels=None) -> Decoded:
    """Random confidences; with levels, values come from a small set so ties abound."""
    rng = np.random.default_rng(seed)
    conf = rng.integers(0, levels, (T, N)) / levels if levels else rng.random((T, N))
    pred = rng.integers(0, K, (T, N))
    labels = rng.integers(0, K, N)
    return make_dec(conf, pred, labels)


@st.composite
def decs(draw):
    T = draw(st.integers(1, 7))
    N = draw(st.integers(1, 12))
    levels = draw(st.sampled_from([2, 3, 5, 1000]))
    conf = draw(st.lists(st.integers(0, levels), min_size=T * N, max_size=T * N))
    pred = draw(st.lists(st.integers(0, 2), min_size=T * N, max_size=T * N))
    labels = draw(st.lists(st.integers(0, 2), min_size=N, max_size=N))
    return make_dec(np.reshape(conf, (T, N)) / levels, np.reshape(pred, (T, N)), labels)


HYP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture
def real_dec(synthetic_run):
    return decode(synthetic_run.split("test"))


# --------------------------------------------------------------------------- one threshold


@pytest.mark.parametrize("seed", range(4))
def test_evaluate_matches_reference_at_every_confidence_value(seed):
    dec = random_dec(seed, levels=7 if seed % 2 else None)
    # Thresholds exactly equal to confidence values exercise the strict '>'.
    grid = np.unique(np.concatenate([dec.confidence.ravel(), [-1.0, 0.0, 0.5, 1.0, 2.0]]))
    for C in grid:
        res = metrics.evaluate(dec, C)
        steps, acc, lat = ref_policy(dec, C)
        assert res.exit_steps.tolist() == steps
        assert res.accuracy == pytest.approx(acc, abs=0)
        assert res.mean_latency == pytest.approx(lat, rel=1e-15)
        i = np.arange(dec.N)
        assert res.predictions.tolist() == dec.prediction[res.exit_steps - 1, i].tolist()
        assert res.correct.tolist() == dec.correct[res.exit_steps - 1, i].tolist()


def test_evaluate_on_realistic_run(real_dec):
    for C in (0.0, 0.3, 0.6, 0.9, 0.99, float(real_dec.confidence[5, 7])):
        res = metrics.evaluate(real_dec, C)
        steps, acc, lat = ref_policy(real_dec, C)
        assert res.exit_steps.tolist() == steps
        assert res.accuracy == acc and res.mean_latency == pytest.approx(lat, rel=1e-15)


def test_strict_threshold_tie():
    # One sample whose confidence hits exactly 0.5 at step 2 and 0.75 at step 3.
    dec = make_dec([[0.25], [0.5], [0.75]], [[0], [0], [1]], [1])
    assert metrics.exit_steps(dec, 0.5).tolist() == [3]
    assert metrics.exit_steps(dec, np.nextafter(0.5, 0)).tolist() == [2]
    assert metrics.exit_steps(dec, 0.75).tolist() == [3]  # never exceeded: runs to T
    assert metrics.exit_steps(dec, 0.2).tolist() == [1]


def test_baseline_and_iso_and_reductions(real_dec):
    base = metrics.baseline_curve(real_dec)
    assert base.tolist() == pytest.approx(ref_baseline(real_dec), abs=0)
    res = metrics.evaluate(real_dec, 0.5)
    T = real_dec.T
    assert res.baseline_accuracy == base[-1]
    assert res.latency_reduction == pytest.approx((T - res.mean_latency) / T)
    iso = next((t + 1 for t in range(T) if base[t] * real_dec.N >= res.n_correct - 1e-9), None)
    assert res.iso_accuracy_steps == iso
    if iso is not None:
        assert res.latency_reduction_vs_iso == pytest.approx((iso - res.mean_latency) / iso)


def test_spikes_at_exit(synthetic_run):
    sp = synthetic_run.split("test")
    dec = decode(sp)
    neurons = synthetic_run.meta["neurons"]
    res = metrics.evaluate(dec, 0.4, spikes=sp.spikes, neurons=neurons)
    spikes = np.asarray(sp.spikes, dtype=np.float64)
    at_exit = [spikes[: res.exit_steps[i], i].sum() for i in range(dec.N)]
    full = [spikes[:, i].sum() for i in range(dec.N)]
    assert res.spikes_per_image_at_exit == pytest.approx(np.mean(at_exit), rel=1e-12)
    assert res.spikes_per_neuron_at_exit == pytest.approx(np.mean(at_exit) / neurons, rel=1e-12)
    assert res.spikes_per_neuron_full == pytest.approx(np.mean(full) / neurons, rel=1e-12)
    assert res.spike_saving == pytest.approx(1 - np.mean(at_exit) / np.mean(full), rel=1e-12)
    # The decoded split carries its spikes: they need not be passed again.
    assert dec.spikes is sp.spikes
    assert metrics.evaluate(dec, 0.4).spike_saving == res.spike_saving
    bare = decode(sp)
    bare.spikes = None
    without = metrics.evaluate(bare, 0.4)
    assert without.spikes_per_neuron_at_exit is None and without.spike_saving is None
    no_neurons = metrics.evaluate(bare, 0.4, spikes=sp.spikes)
    assert no_neurons.spikes_per_neuron_at_exit is None
    assert no_neurons.spikes_per_image_at_exit == pytest.approx(np.mean(at_exit), rel=1e-12)


def test_cache_is_reused_and_result_is_json(real_dec):
    assert metrics.policy_cache(real_dec) is metrics.policy_cache(real_dec)
    d = metrics.evaluate(real_dec, 0.7).to_dict()
    import json

    json.dumps(d, allow_nan=False)
    assert len(d["exit_steps"]) == real_dec.N


def test_bad_threshold():
    dec = random_dec(0)
    for bad in (float("nan"), "x", None):
        with pytest.raises(DynconfError):
            metrics.evaluate(dec, bad)
    with pytest.raises(DynconfError):
        metrics.sweep(dec, [0.1, float("nan")])


# --------------------------------------------------------------------------- curves


@pytest.mark.parametrize("C", [0.0, 0.35, 0.8, 1.0])
def test_capped_curve_matches_reference(real_dec, C):
    curve = metrics.capped_curve(real_dec, C)
    assert curve.caps.tolist() == list(range(1, real_dec.T + 1))
    for cap in range(1, real_dec.T + 1):
        _, acc, lat = ref_policy(real_dec, C, cap)
        assert curve.accuracy[cap - 1] == pytest.approx(acc, abs=1e-15)
        assert curve.latency[cap - 1] == pytest.approx(lat, abs=1e-12)


# --------------------------------------------------------------------------- sweeps


def test_sweep_matches_single_thresholds(real_dec):
    grid = np.concatenate([np.linspace(-0.1, 1.1, 57), real_dec.confidence[:, :20].ravel()])
    sw = metrics.sweep(real_dec, grid)
    assert np.all(np.diff(sw.thresholds) > 0)
    for C, acc, lat in zip(sw.thresholds, sw.accuracy, sw.mean_latency, strict=True):
        res = metrics.evaluate(real_dec, C)
        assert acc == res.accuracy and lat == res.mean_latency


def test_default_sweep_has_about_1000_points(real_dec):
    sw = metrics.sweep(real_dec)
    assert 500 <= len(sw.thresholds) <= 1000
    assert sw.thresholds[0] == 0.0 and sw.thresholds[-1] >= 1.0 - 1e-12


def test_pareto_front_reference():
    rng = np.random.default_rng(3)
    for _ in range(20):
        lat = rng.integers(0, 6, 25).astype(float)
        acc = rng.integers(0, 6, 25) / 5
        assert metrics.pareto_front(lat, acc).tolist() == ref_pareto(lat, acc)
        for a_s, l_s in ((0.0, 0.0), (0.2, 0.0), (0.0, 1.0), (0.2, 2.0)):
            assert metrics.near_front(lat, acc, a_s, l_s).tolist() == ref_near(lat, acc, a_s, l_s)
    assert metrics.pareto_front([], []).tolist() == []
    with pytest.raises(DynconfError):
        metrics.pareto_front([1.0, float("nan")], [0.5, 0.5])


# --------------------------------------------------------------------------- selection


def test_select_threshold_reference(synthetic_run):
    cal = decode(synthetic_run.split("calibration"))
    test = decode(synthetic_run.split("test"))
    grid = np.linspace(0, 1, 201)
    for tol in (0.0, 0.01, 0.05):
        sel = metrics.select_threshold(cal, test, tolerance=tol, thresholds=grid)
        # Reference: scan the grid (plus 1.0) one threshold at a time.
        base = ref_baseline(cal)[-1]
        best = None
        for C in sorted(set(grid.tolist()) | {1.0}):
            _, acc, lat = ref_policy(cal, C)
            if acc * cal.N >= (base - tol) * cal.N - 1e-9:
                key = (lat, -acc, -C)
                if best is None or key < best[0]:
                    best = (key, C)
        assert sel.threshold == best[1]
        assert sel.calibration.accuracy >= base - tol - 1e-12
        assert sel.test.to_dict(False) == metrics.evaluate(test, sel.threshold).to_dict(False)
        lo, hi = sel.band
        assert lo <= sel.threshold <= hi
        # Every swept threshold inside the band is near the front and near the target.
        inside = (sel.sweep.thresholds >= lo) & (sel.sweep.thresholds <= hi)
        assert sel.sweep.near_front[inside].all()
        assert (
            sel.sweep.accuracy[inside] >= sel.target_accuracy - sel.sweep.acc_slack - 1e-9
        ).all()


def test_select_needs_same_decoder(synthetic_run):
    cal = decode(synthetic_run.split("calibration"))
    test = decode(synthetic_run.split("test"), "mean")
    with pytest.raises(DynconfError):
        metrics.select_threshold(cal, test)
    with pytest.raises(DynconfError):
        metrics.select_threshold(cal, cal, tolerance=-1)


# --------------------------------------------------------------------------- oracles


@pytest.mark.parametrize("variant", metrics.ORACLE_VARIANTS)
@pytest.mark.parametrize("never", metrics.NEVER_CORRECT)
def test_oracle_matches_reference(real_dec, variant, never):
    curve = metrics.oracle_curve(real_dec, variant, never)
    for cap in (1, 2, 7, real_dec.T):
        res = metrics.oracle(real_dec, variant, never, cap)
        acc, lat, steps = ref_oracle(real_dec, variant, never, cap)
        assert res.steps.tolist() == steps
        assert res.accuracy == acc and res.mean_latency == pytest.approx(lat, rel=1e-15)
        assert curve.accuracy[cap - 1] == acc
        assert curve.latency[cap - 1] == pytest.approx(lat, rel=1e-15)


def test_oracle_labels_and_errors(real_dec):
    res = metrics.oracle(real_dec, "first_correct", "step1")
    assert res.to_dict()["never_correct"] == "step1"
    with pytest.raises(DynconfError):
        metrics.oracle(real_dec, "psychic")
    with pytest.raises(DynconfError):
        metrics.oracle(real_dec, never_correct="maybe")
    with pytest.raises(DynconfError):
        metrics.oracle(real_dec, cap=0)


# --------------------------------------------------------------------------- invariants


@HYP
@given(decs(), st.lists(st.floats(-0.5, 1.5), min_size=1, max_size=8))
def test_property_evaluate_equals_reference(dec, extra):
    grid = np.unique(np.concatenate([dec.confidence.ravel(), extra]))
    sw = metrics.sweep(dec, grid)
    for C, acc, lat in zip(sw.thresholds, sw.accuracy, sw.mean_latency, strict=True):
        steps, racc, rlat = ref_policy(dec, C)
        assert metrics.exit_steps(dec, C).tolist() == steps
        assert acc == racc and lat == pytest.approx(rlat, rel=1e-15)


@HYP
@given(decs())
def test_property_monotone_latency_and_baseline_limit(dec):
    grid = np.unique(np.concatenate([dec.confidence.ravel(), [-1.0, 2.0]]))
    sw = metrics.sweep(dec, grid)
    assert np.all(np.diff(sw.mean_latency) >= 0)
    above = metrics.evaluate(dec, float(dec.confidence.max()))  # strict: nobody exits early
    assert above.accuracy == metrics.baseline_curve(dec)[-1]
    assert above.mean_latency == dec.T


@HYP
@given(decs(), st.floats(-0.1, 1.1))
def test_property_oracle_bounds_every_policy(dec, C):
    capped = metrics.capped_curve(dec, C)
    best = metrics.oracle_curve(dec, "first_correct", "cap")
    assert np.all(best.accuracy >= capped.accuracy - 1e-15)
    assert np.all(best.accuracy >= metrics.baseline_curve(dec) - 1e-15)


@HYP
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=30))
def test_property_pareto(points):
    lat = np.array([p[0] for p in points], float)
    acc = np.array([p[1] for p in points], float) / 6
    front = metrics.pareto_front(lat, acc)
    assert front.tolist() == ref_pareto(lat, acc)
    f = np.flatnonzero(front)
    for i in range(len(lat)):  # every point is dominated-or-equalled by some front point
        assert any(lat[j] <= lat[i] and acc[j] >= acc[i] for j in f)
    for i in f:  # front points are mutually non-dominated
        for j in f:
            assert not (
                lat[j] <= lat[i] and acc[j] >= acc[i] and (lat[j], acc[j]) != (lat[i], acc[i])
            )
    assert metrics.near_front(lat, acc, 0.0, 0.0)[front].all()


@HYP
@given(decs())
def test_property_oracle_variants_order(dec):
    first = metrics.oracle(dec, "first_correct")
    stays = metrics.oracle(dec, "stays_correct")
    assert first.accuracy >= stays.accuracy
    assert stays.accuracy == metrics.baseline_curve(dec)[-1]
    assert math.isclose(
        metrics.oracle(dec, "first_correct", "step1").accuracy, first.accuracy, abs_tol=0
    )
