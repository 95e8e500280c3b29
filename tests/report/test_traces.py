"""Shared traces: the baseline, the Pareto front and the current point drawn one way everywhere."""

from __future__ import annotations

import types

import numpy as np
import pytest

from dynconf.core import metrics
from dynconf.core.compare import CompareEntry
from dynconf.core.decoders import decode
from dynconf.core.store import load_run
from dynconf.report import figures, traces
from dynconf.report.style import COLORS

THRESHOLD = 0.6


@pytest.fixture(scope="module")
def analysis(dashboard_runs):
    run = load_run(dashboard_runs / "synth")
    dec = decode(run.split("test"))
    return types.SimpleNamespace(
        run=run,
        dec=dec,
        res=metrics.evaluate(dec, THRESHOLD),
        base=metrics.baseline_curve(dec),
        sweep=metrics.sweep(dec),
        sel=metrics.select_threshold(decode(run.split("calibration")), dec),
    )


def named(fig, name_start):
    (found,) = [t for t in fig.data if (t.name or "").startswith(name_start)]
    return found.to_plotly_json()


def without_name(trace: dict) -> dict:
    return {k: v for k, v in trace.items() if k not in ("name", "hovertemplate")}


def test_baseline_is_one_trace_in_plane_and_oracle(analysis):
    a = analysis
    plane = figures.accuracy_latency(a.base, a.res).figure
    oracle = figures.oracle_bound(a.base, {"o": metrics.oracle_curve(a.dec)}).figure
    expected = traces.baseline_trace(a.base).to_plotly_json()
    for fig in (plane, oracle):
        got = named(fig, "baseline")
        assert got["hovertemplate"] == expected["hovertemplate"]
        np.testing.assert_array_equal(got["x"], expected["x"])
        np.testing.assert_allclose(got["y"], 100 * a.base)
        # Thin (1.5) so that the capped policy curve drawn over it stays visible.
        assert got["line"] == {"color": COLORS["baseline"], "width": 1.5}


def test_front_is_one_trace_in_plane_selection_and_compare(analysis):
    a = analysis
    lat, acc, thr = traces.front_points(a.sweep)
    assert np.all(np.diff(lat) >= 0) and len(lat) == int(a.sweep.on_front.sum())
    plane = named(figures.accuracy_latency(a.base, a.res, sweep=a.sweep).figure, "Pareto")
    np.testing.assert_allclose(plane["x"], lat)
    np.testing.assert_allclose(plane["customdata"], thr)
    sel_sweep = a.sel.sweep
    selection = named(figures.pareto_selection(a.sel).figure, "Pareto")
    reference = traces.front_trace(sel_sweep).to_plotly_json()
    assert without_name(selection).keys() == without_name(reference).keys()
    # A front is a line, not hundreds of markers, in the plane and the selection.
    assert "marker" not in selection and "marker" not in plane
    assert selection["mode"] == plane["mode"] == reference["mode"] == "lines"
    compared = figures.compare([CompareEntry("x", a.base, a.sweep)]).figure
    front = named(compared, "x")
    np.testing.assert_allclose(front["y"], 100 * acc)
    # On the compare chart a few markers (marker.maxdisplayed) tell overlaid fronts apart.
    assert front["mode"] == "lines+markers" and 0 < front["marker"]["maxdisplayed"] <= 10


def test_current_point_is_one_star(analysis):
    a = analysis
    stars = [
        named(figures.accuracy_latency(a.base, a.res).figure, "current"),
        named(figures.oracle_bound(a.base, {}, current=a.res).figure, "current"),
        named(figures.threshold_response(a.sweep, a.res).figure, "current"),
        named(figures.pareto_selection(a.sel).figure, "chosen (calibration)"),
    ]
    for s in stars:
        assert s["marker"]["symbol"] == "star" and s["marker"]["color"] == COLORS["current"]
        assert s["marker"]["size"] == stars[0]["marker"]["size"]
        assert s["y"][0] in (pytest.approx(100 * a.res.accuracy), 100 * a.sel.calibration.accuracy)
    assert stars[2]["x"][0] == THRESHOLD  # threshold_response's x axis is C
    assert stars[0]["x"][0] == stars[1]["x"][0] == pytest.approx(a.res.mean_latency)
