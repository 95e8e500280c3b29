"""The figure registry: every figure the app draws builds by name from a view, and a wrong
name or parameter is a clear error."""

from __future__ import annotations

import pytest

from dynconf.core.store import load_run
from dynconf.errors import DynconfError
from dynconf.report import figures
from dynconf.report.viewdata import make_view


@pytest.fixture(scope="module")
def view(dashboard_runs):
    return make_view(load_run(dashboard_runs / "synth"), "test")


def _params(spec, view):
    given = {"threshold": 0.6, "calibration": "calibration", "step": 3,
             "sample_id": int(view.data.ids[0])}  # fmt: skip
    return {k: v for k, v in given.items() if k in spec.params}


def test_every_registered_figure_builds_from_a_view(view):
    pages = set()
    for name, spec in figures.FIGURES.items():
        chart = figures.build_figure(name, view, **_params(spec, view))
        pages.add(spec.page)
        if chart is None:  # only what needs data the view lacks (an image without dataset)
            assert name == "sample_image", name
            continue
        assert chart.figure.data, name
        assert len(chart.data) > 0, name
    assert {"explorer", "home", "oracle", "selection", "policies", "classes", "samples",
            "compare", "classroom"} <= pages  # fmt: skip


def test_figures_reuse_the_views_results(view):
    """A figure reads the view's memoized numbers: the threshold's result is the view's."""
    res = view.evaluate(0.6)
    chart = figures.build_figure("exit_histogram", view, threshold=0.6)
    assert int(chart.data["total"].sum()) == len(res.exit_steps)
    assert int(chart.data["correct"].sum()) == int(res.correct.sum())
    assert view.evaluate(0.6) is res


def test_bad_names_and_parameters_are_clear_errors(view):
    with pytest.raises(DynconfError, match="unknown figure 'nope'"):
        figures.build_figure("nope", view)
    with pytest.raises(DynconfError, match="takes no colour"):
        figures.build_figure("exit_histogram", view, threshold=0.5, colour="red")
    with pytest.raises(DynconfError, match="needs threshold"):
        figures.build_figure("exit_histogram", view)
    with pytest.raises(DynconfError, match="no sample has id"):
        figures.build_figure("sample_confidence", view, sample_id=10**9, threshold=0.5)
