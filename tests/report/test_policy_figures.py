"""The exit policies' charts: every policy's front on the evaluation split with its chosen
point, the per-sample exit charts of a policy without a threshold, and the export pack."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.policies import POLICIES, get_policy
from dynconf.core.policies.comparison import (
    MAX_FRONT_CANDIDATES,
    compare_policies,
    policy_fronts,
    split_decoder,
    thin,
)
from dynconf.core.store import load_run
from dynconf.errors import DynconfError
from dynconf.report import export, figures


@pytest.fixture(scope="module")
def synth(dashboard_runs):
    return load_run(dashboard_runs / "synth")


@pytest.fixture(scope="module")
def fitted(synth):
    cal, test = split_decoder(synth.split("calibration")), split_decoder(synth.split("test"))
    comparison = compare_policies(cal, test, 0.0)
    return comparison, policy_fronts(comparison, cal, test)


def plain_metrics(split, steps) -> tuple[float, float]:
    """Accuracy and mean latency of exiting each sample at ``steps``, from the raw outputs:
    the answer is argmax of the accumulated output at the exit step."""
    S = np.cumsum(np.asarray(split.outputs, dtype=np.float64), axis=0)
    right = [int(np.argmax(S[tau - 1, i])) == int(split.labels[i]) for i, tau in enumerate(steps)]
    return float(np.mean(right)), float(np.mean(steps))


def dominated(lat, acc, i) -> bool:
    return any(
        lat[j] <= lat[i] and acc[j] >= acc[i] and (lat[j] < lat[i] or acc[j] > acc[i])
        for j in range(len(lat))
    )


def test_every_fitted_policy_gets_its_front_on_the_evaluation_split(synth, fitted):
    comparison, fronts = fitted
    assert [f.name for f in fronts] == [fit.name for fit in comparison.fits] == list(POLICIES)
    cal_sp, test_sp = synth.split("calibration"), synth.split("test")
    for front in fronts:
        assert get_policy(front.name).name == front.fit.policy.name
        cal_dec = split_decoder(cal_sp)(front.decoder, front.kappa)
        test_dec = split_decoder(test_sp)(front.decoder, front.kappa)
        candidates = front.fit.policy.candidates(cal_dec)
        assert front.n_candidates == len(candidates)
        kept = thin(candidates, MAX_FRONT_CANDIDATES)
        assert len(front.mean_latency) == len(kept) <= MAX_FRONT_CANDIDATES
        assert front.descriptions == [p.describe() for p in kept]
        # Each point, recomputed from the raw outputs (spot-check a spread of candidates).
        for i in np.linspace(0, len(kept) - 1, num=min(len(kept), 6)).round().astype(int):
            acc, lat = plain_metrics(test_sp, kept[i].exit_steps(test_dec))
            assert front.accuracy[i] == pytest.approx(acc, abs=1e-12)
            assert front.mean_latency[i] == pytest.approx(lat, abs=1e-12)
        # The front is exactly the non-dominated candidates (brute force).
        lat, acc = front.mean_latency, front.accuracy
        assert front.on_front.tolist() == [not dominated(lat, acc, i) for i in range(len(lat))]
        f_lat, f_acc, _ = front.front()
        assert np.all(np.diff(f_lat) >= 0) and np.all(np.diff(f_acc) > 0)
        # The chosen point is the comparison's own fit and test result.
        fit = next(f for f in comparison.fits if f.name == front.name)
        assert front.fit is fit


def test_thinning_spreads_over_the_sweep_and_keeps_both_ends():
    items = list(range(2400))
    kept = thin(items, 200)
    assert len(kept) == 200 and kept[0] == 0 and kept[-1] == 2399
    assert max(np.diff(kept)) - min(np.diff(kept)) <= 1  # evenly spread
    assert thin(items[:5], 200) == items[:5]
    with pytest.raises(DynconfError, match="max_points"):
        thin(items, 0)


def test_fronts_of_decoded_splits_refuse_a_policy_needing_another_decoder(synth):
    cal, test = decode(synth.split("calibration")), decode(synth.split("test"))
    comparison = compare_policies(cal, test, 0.0, names=["threshold", "patience"])
    fronts = policy_fronts(comparison, cal, test)
    assert [f.name for f in fronts] == ["threshold", "patience"]
    with pytest.raises(DynconfError, match="both decoded"):
        policy_fronts(comparison, cal, split_decoder(synth.split("test")))
    gap = compare_policies(
        split_decoder(synth.split("calibration")),
        split_decoder(synth.split("test")),
        names=["topk_gap"],
    )
    with pytest.raises(DynconfError, match="decoder 'gap'"):
        policy_fronts(gap, cal, test)


def test_fronts_chart_draws_each_front_and_chosen_point_and_its_csv_matches(synth, fitted):
    comparison, fronts = fitted
    test = decode(synth.split("test"))
    oracle = metrics.oracle_curve(test, "stays_correct", "cap")
    chart = figures.policy_fronts(metrics.baseline_curve(test), fronts, oracle=oracle)
    assert chart.key == "policy_fronts"
    traces = {t.name: t for t in chart.figure.data}
    assert "baseline (fixed T)" in traces and "oracle, stays correct" in traces
    data = chart.data
    for front in fronts:
        lat, acc, params = front.front()
        line = traces[f"{front.name}: front"]
        np.testing.assert_allclose(line.x, lat)
        np.testing.assert_allclose(line.y, 100 * acc)
        # One legend entry per policy (its chosen point's marker); the front is not listed.
        assert line.showlegend is False
        point = traces[front.name]
        assert point.legendgroup == line.legendgroup and point.mode == "markers"
        assert point.x[0] == front.fit.test.mean_latency
        assert point.y[0] == pytest.approx(100 * front.fit.test.accuracy)
        rows = data[data.series == f"{front.name} front"]
        np.testing.assert_allclose(rows.mean_latency, lat)
        np.testing.assert_allclose(rows.accuracy, acc)
        assert list(rows.params) == params
        chosen = data[data.series == f"{front.name} chosen"]
        assert chosen.accuracy.iloc[0] == front.fit.test.accuracy
        assert chosen.params.iloc[0] == front.fit.description
    csv = pd.read_csv(io.BytesIO(chart.csv()))
    assert len(csv) == len(data)
    assert set(csv.kind.dropna()) == {"front", "chosen"}


@pytest.mark.parametrize("name", ["schedule", "conformal", "learned", "topk_gap"])
def test_exit_charts_draw_a_policy_result_without_a_threshold(synth, fitted, name):
    comparison, _ = fitted
    fit = next(f for f in comparison.fits if f.name == name)
    res = fit.test
    if name != "learned":  # learned has a threshold on its own score; the others have none
        assert res.threshold is None
    sp = synth.split("test")
    hist = figures.exit_histogram(res, synth.T_max, title=f"Exit steps of {name}")
    assert hist.title == f"Exit steps of {name}"
    assert hist.data.total.sum() == sp.labels.shape[0]
    np.testing.assert_array_equal(
        hist.data.total, np.bincount(res.exit_steps, minlength=synth.T_max + 1)[1:]
    )
    assert hist.data.correct.sum() == res.n_correct
    scatter = figures.exit_scatter(res, sp.labels, sp.ids, synth.classes)
    assert scatter.data.exit_step.tolist() == res.exit_steps.tolist()
    assert scatter.data.correct.sum() == res.n_correct


def test_the_export_pack_holds_the_policy_fronts_in_every_format(synth):
    charts, res, context = export.collect_charts(synth, "test", calibration="calibration")
    chart = next(c for c in charts if c.key == "policy_fronts")
    cal, test = split_decoder(synth.split("calibration")), split_decoder(synth.split("test"))
    comparison = compare_policies(cal, test, 0.0, decoder="paper")
    fronts = policy_fronts(comparison, cal, test)
    chosen = chart.data[chart.data.kind == "chosen"]
    assert list(chosen.policy) == [f.name for f in fronts]
    np.testing.assert_allclose(chosen.mean_latency, [f.fit.test.mean_latency for f in fronts])
    files = export.pack_files(synth, [chart], res, context)
    with Image.open(io.BytesIO(files["policy_fronts.png"])) as im:
        assert im.format == "PNG"
    assert b"<svg" in files["policy_fronts.svg"][:500]
    assert files["policy_fronts.pdf"].startswith(b"%PDF")
    assert pd.read_csv(io.BytesIO(files["policy_fronts.csv"])).equals(
        pd.read_csv(io.BytesIO(chart.csv()))
    )
    with zipfile.ZipFile(io.BytesIO(export.zip_bytes(files))) as zf:
        assert {f"policy_fronts.{ext}" for ext in ("png", "svg", "pdf", "csv")} <= set(
            zf.namelist()
        )
    # Without a calibration split nothing can be fitted, so the chart is left out.
    charts, _, _ = export.collect_charts(synth, "test", threshold=0.6)
    assert "policy_fronts" not in {c.key for c in charts}
