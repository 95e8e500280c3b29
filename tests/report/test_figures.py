"""dynconf.report.figures draws exactly the numbers dynconf.core.metrics computes, in Okabe-Ito.

The builders are reached through figures.py, the app's single import point.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dynconf.core import metrics
from dynconf.core.compare import CompareEntry, compare_table
from dynconf.core.decoders import class_probabilities, decode
from dynconf.core.store import load_run
from dynconf.report import figures
from dynconf.report.style import OKABE_ITO

THRESHOLD = 0.6


@pytest.fixture(scope="module")
def setup(dashboard_runs):
    run = load_run(dashboard_runs / "synth")
    sp = run.split("test")
    dec = decode(sp, "paper")
    res = metrics.evaluate(dec, THRESHOLD, spikes=sp.spikes, neurons=run.meta["neurons"])
    return run, sp, dec, res


def trace(fig: go.Figure, name_start: str):
    found = [t for t in fig.data if (t.name or "").startswith(name_start)]
    assert found, f"no trace named {name_start!r} in {[t.name for t in fig.data]}"
    return found[0]


def test_accuracy_latency_draws_library_values(setup):
    run, sp, dec, res = setup
    base = metrics.baseline_curve(dec)
    sw = metrics.sweep(dec)
    capped = metrics.capped_curve(dec, THRESHOLD)
    orc = metrics.oracle_curve(dec)
    chart = figures.accuracy_latency(base, res, capped=capped, oracle=orc, sweep=sw)
    fig = chart.figure
    cur = trace(fig, "current")
    assert cur.x[0] == pytest.approx(res.mean_latency)
    assert cur.y[0] == pytest.approx(100 * res.accuracy)
    np.testing.assert_allclose(trace(fig, "baseline").y, 100 * base)
    np.testing.assert_array_equal(trace(fig, "baseline").x, np.arange(1, run.T_max + 1))
    front = trace(fig, "Pareto front")
    assert len(front.x) == int(sw.on_front.sum())
    assert np.all(np.diff(front.x) >= 0)  # drawn as a line from fast to slow
    np.testing.assert_allclose(trace(fig, "policy").y, 100 * capped.accuracy)
    np.testing.assert_allclose(trace(fig, "oracle").x, orc.latency)
    # The CSV is the drawn data: read it back and find the same current point.
    table = pd.read_csv(io.BytesIO(chart.csv()))
    row = table[table.series == "current"].iloc[0]
    assert row.accuracy == pytest.approx(res.accuracy)
    assert set(table.series) == {"baseline", "sweep", "policy_capped", "oracle", "current"}


def test_exit_histogram_counts_every_sample_once(setup):
    run, sp, dec, res = setup
    chart = figures.exit_histogram(res, run.T_max)
    ok, bad = trace(chart.figure, "correct"), trace(chart.figure, "wrong")
    assert sum(ok.y) == int(res.correct.sum())
    assert sum(bad.y) + sum(ok.y) == dec.N
    expected = np.bincount(res.exit_steps, minlength=run.T_max + 1)[1:]
    np.testing.assert_array_equal(chart.data.total.to_numpy(), expected)


def test_exit_scatter_is_webgl_with_one_point_per_sample(setup):
    run, sp, dec, res = setup
    chart = figures.exit_scatter(res, sp.labels, sp.ids, run.classes)
    traces = chart.figure.data
    assert all(isinstance(t, go.Scattergl) for t in traces)
    assert sum(len(t.x) for t in traces) == dec.N
    wrong = trace(chart.figure, "wrong")
    assert len(wrong.x) == int((~res.correct).sum())
    # customdata: position, id, exit step; text: answer and label. The hover shows all.
    assert np.asarray(wrong.customdata).dtype.kind == "i"  # compact binary transfer
    for k in (0, len(wrong.x) - 1):
        pos = int(wrong.customdata[k][0])
        assert not res.correct[pos]
        assert int(wrong.customdata[k][1]) == int(sp.ids[pos]) == wrong.x[k]
        assert int(wrong.customdata[k][2]) == int(res.exit_steps[pos])
        answer, label = run.classes[res.predictions[pos]], run.classes[sp.labels[pos]]
        assert wrong.text[k] == f"answer {answer}<br>label {label}"
    for key in ("id", "exit step", "%{text}"):
        assert key in wrong.hovertemplate
    # Jitter only spreads points vertically inside their step.
    assert np.all(np.abs(np.asarray(wrong.y) - res.exit_steps[~res.correct]) <= 0.3 + 1e-9)


def test_threshold_response_marks_current_threshold(setup):
    run, sp, dec, res = setup
    sw = metrics.sweep(dec)
    chart = figures.threshold_response(sw, res)
    cur = trace(chart.figure, "current")
    assert cur.x[0] == pytest.approx(THRESHOLD)
    assert cur.y[0] == pytest.approx(100 * res.accuracy)
    np.testing.assert_allclose(trace(chart.figure, "mean latency").y, sw.mean_latency)
    assert any(s.x0 == pytest.approx(THRESHOLD) for s in chart.figure.layout.shapes)
    shaded = figures.threshold_response(sw, res, band=(0.4, 0.7)).figure.layout.shapes
    assert [(s.x0, s.x1) for s in shaded if s.type == "rect"] == [(0.4, 0.7)]


def test_pareto_selection_shows_band_and_test_result(dashboard_runs):
    run = load_run(dashboard_runs / "synth")
    sel = metrics.select_threshold(decode(run.split("calibration")), decode(run.split("test")))
    chart = figures.pareto_selection(sel, baseline_accuracy=sel.calibration.baseline_accuracy)
    band = trace(chart.figure, "robust band")
    lo, hi = sel.band
    assert len(band.x) >= 1
    assert all(lo <= c <= hi for c in band.customdata)
    test_pt = trace(chart.figure, "chosen, on test")
    assert test_pt.y[0] == pytest.approx(100 * sel.test.accuracy)
    assert chart.data[chart.data.series == "chosen_test"].threshold.iloc[0] == sel.threshold


def test_oracle_bound_is_paper_figure_1(setup):
    run, sp, dec, res = setup
    curves = {
        "first": metrics.oracle_curve(dec, "first_correct", "cap"),
        "stays": metrics.oracle_curve(dec, "stays_correct", "step1"),
    }
    chart = figures.oracle_bound(metrics.baseline_curve(dec), curves, current=res)
    assert trace(chart.figure, "baseline").line.color == OKABE_ITO["black"]
    assert trace(chart.figure, "first").line.color == OKABE_ITO["vermillion"]
    # The oracle is an upper bound of the baseline at every cap.
    np.testing.assert_array_less(
        trace(chart.figure, "baseline").y - 1e-9, np.asarray(trace(chart.figure, "first").y)
    )


@pytest.mark.parametrize("decoder", ["paper", "mean", "step"])
def test_class_probabilities_match_decoder_confidence(setup, decoder):
    run, sp, _, _ = setup
    dec = decode(sp, decoder, kappa=7.0 if decoder == "paper" else None)
    for i in (0, 5, 123):
        p = class_probabilities(np.asarray(sp.outputs[:, i, :]), decoder, dec.kappa)
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
        np.testing.assert_allclose(p.max(axis=1), dec.confidence[:, i], rtol=1e-9)
        if decoder != "step":  # the answer is argmax S_t; "step" reads z_t alone
            np.testing.assert_array_equal(p.argmax(axis=1), dec.prediction[:, i])


def test_sample_charts(setup):
    run, sp, dec, res = setup
    i = int(np.flatnonzero(~res.correct)[0])
    conf = figures.sample_confidence(
        dec.confidence[:, i], THRESHOLD, int(res.exit_steps[i]), correct=dec.correct[:, i]
    )
    np.testing.assert_allclose(conf.figure.data[0].y, dec.confidence[:, i])
    assert conf.data.correct.sum() == dec.correct[:, i].sum()
    probs = class_probabilities(np.asarray(sp.outputs[:, i, :]), "paper", dec.kappa)
    chart = figures.sample_probabilities(probs, run.classes, int(sp.labels[i]), top=3)
    assert len(chart.figure.data) == 3
    assert chart.figure.data[0].name.endswith("(label)")


def test_compare_table_is_latency_at_matched_accuracy(dashboard_runs):
    run = load_run(dashboard_runs / "synth")
    entries = []
    for name in ("paper", "margin"):
        dec = decode(run.split("test"), name)
        entries.append(CompareEntry(name, metrics.baseline_curve(dec), metrics.sweep(dec)))
    table = pd.DataFrame(compare_table(entries, [0.0, 0.01]))  # as the compare page shows it
    for e, (_, row) in zip(entries, table.iterrows(), strict=True):
        target = e.baseline[-1] - 0.01
        ok = e.sweep.accuracy >= target - 1e-12
        assert row["latency @ -1 pp"] == pytest.approx(e.sweep.mean_latency[ok].min())
        assert row["fixed T @ -1 pp"] == int(np.flatnonzero(e.baseline >= target)[0] + 1)
        assert row["latency @ -1 pp"] <= row["fixed T @ -1 pp"] + 1e-9
    chart = figures.compare(entries)
    # The decoders of one run share its fixed-T baseline (the answer is argmax S_t whatever
    # the decoder): one baseline, then a front per entry, each in its own style.
    assert np.array_equal(entries[0].baseline, entries[1].baseline)
    assert len(chart.figure.data) == 3
    fronts = chart.figure.data[1:]
    assert [t.name for t in fronts] == ["paper", "margin"]
    assert fronts[0].line.color != fronts[1].line.color


def test_accuracy_by_T_reads_flat_and_per_split_meta():
    flat = {"snn_accuracy_by_T": {"1": 0.5, "4": 0.8, "2": 0.7}, "ann_accuracy": 0.9}
    chart = figures.accuracy_by_T(flat)
    np.testing.assert_array_equal(chart.figure.data[0].x, [1, 2, 4])
    per_split = {
        "snn_accuracy_by_T": {"test": {"1": 0.4, "8": 0.9}, "calibration": {"1": 0.1}},
        "ann_accuracy": {"test": 0.95, "calibration": 0.5},
    }
    chart = figures.accuracy_by_T(per_split, "test")
    np.testing.assert_allclose(chart.figure.data[0].y, [40.0, 90.0])
    assert chart.data[chart.data.series == "ann"].accuracy.iloc[0] == 0.95
    assert figures.accuracy_by_T({}) is None


def test_every_colour_is_okabe_ito(setup):
    run, sp, dec, res = setup
    sw = metrics.sweep(dec)
    charts = [
        figures.accuracy_latency(metrics.baseline_curve(dec), res, sweep=sw),
        figures.exit_histogram(res, run.T_max),
        figures.exit_scatter(res, sp.labels, sp.ids, run.classes),
        figures.threshold_response(sw, res),
    ]
    palette = {c.lower() for c in OKABE_ITO.values()}
    for chart in charts:
        for t in chart.figure.data:
            for color in (
                getattr(getattr(t, "line", None), "color", None),
                getattr(getattr(t, "marker", None), "color", None),
            ):
                if isinstance(color, str):
                    assert color.lower() in palette, (chart.key, t.name, color)


def test_names_from_a_file_cannot_inject_markup(tmp_path):
    """Plotly renders <a href> and <img>-like tags in titles, legends and hovers: run and class
    names from a run's meta.json must reach every chart as text."""
    import json as _json

    from dynconf.core.store import save_run
    from dynconf.report.export import collect_charts
    from tests.helpers import synthetic_split

    evil = "<a href='http://127.0.0.1:8719/phish'>log in</a>"
    run = save_run(
        tmp_path / "evil",
        {"test": synthetic_split(80, 8, 3, 1, 10), "calibration": synthetic_split(60, 8, 3, 2, 10)},
        classes=[evil, "b<b>old</b>", "c"],
        dataset=evil,
    )
    charts, res, _ = collect_charts(run, "test", calibration="calibration")
    charts.append(figures.sample_probabilities(np.full((8, 3), 1 / 3), run.classes, 0, title=evil))
    for chart in charts:
        text = _json.dumps(chart.figure.to_plotly_json()["layout"].get("title", {}))
        text += _json.dumps([t.get("name") for t in chart.figure.to_plotly_json()["data"]])
        for trace in chart.figure.data:
            text += str(getattr(trace, "hovertemplate", "")) + str(getattr(trace, "text", ""))
        assert "<a " not in text and "<b>" not in text, chart.key
    scatter = next(c for c in charts if c.key == "exit_scatter")
    assert "&lt;a href=" in str(scatter.figure.data[0].text)
