"""Sessions share the app's views, never their state: what one session asked for (its kappa
spelling, its controls) does not reach what another session is shown, and what a view keeps
cannot be written to by any page.

Each test starts from empty app caches, so the first session is the one that builds the
shared views, then compares a second session's page with views built afresh.
"""

from __future__ import annotations

import json

import numpy as np
import plotly.io as pio
import pytest

from dynconf.core.decoders import check_kappa
from dynconf.core.store import load_run
from dynconf.core.view import View
from dynconf.report import figures
from dynconf.report.viewdata import make_view
from tests.app.helpers import app, specs

PLANE = "Runs and decoders compared"
RUNS = "synth,synth_topk"


@pytest.fixture
def empty_caches():
    """No view left by an earlier test: the sessions of a test build every view themselves."""
    import streamlit as st

    from dynconf.app import caches

    caches.CACHE.clear()
    st.cache_data.clear()
    yield caches


def _fresh_plane(root, kappa=None) -> dict:
    """The compare plane of synth and synth_topk (test split, paper) from views built here."""
    views = [make_view(load_run(root / name), "test", "paper", kappa) for name in RUNS.split(",")]
    chart = figures.build_figure("compare", views[0], views=views)
    return json.loads(pio.to_json(chart.figure, validate=False))


def _trace_names(spec: dict) -> list[str]:
    return [t["name"] for t in spec["data"]]


def _table_labels(at) -> list[str]:
    return list(at.table[0].value["run / decoder"])


def test_a_kappa_typed_in_one_session_does_not_reach_the_next(env, empty_caches):
    first = app("compare", runs=RUNS, kappas="4, 16")  # 16 is T_max: the same views as default
    assert "synth_topk/test · paper (kappa = 16)" in _trace_names(specs(first)[PLANE])
    second = app("compare", runs=RUNS)
    drawn = specs(second)[PLANE]
    fresh = _fresh_plane(env)
    assert _trace_names(drawn) == _trace_names(fresh)
    assert drawn["data"] == fresh["data"]
    assert "synth_topk/test · paper (kappa = T_max = 16)" in _trace_names(drawn)


def test_the_legend_names_each_kappa_as_the_page_asked(env, empty_caches):
    app("compare", runs=RUNS)  # the views are built for the default kappa first
    at = app("compare", runs=RUNS, kappas="16")
    labels = _table_labels(at)
    fronts = [n for n in _trace_names(specs(at)[PLANE]) if "baseline" not in n]
    assert fronts == labels == [f"{name}/test · paper (kappa = 16)" for name in RUNS.split(",")]


def test_the_shared_view_follows_from_its_key(env, empty_caches):
    caches = empty_caches
    path = env / "synth_topk"
    typed = caches.get_analysis(path, "test", "paper", 16.0)
    assert caches.get_analysis(path, "test", "paper", None) is typed  # one view for both
    assert typed.kappa is None  # T_max, however the first caller spelled it
    assert caches.get_analysis(env / "synth", "test", "paper", 4).kappa == 4.0
    assert caches.get_analysis(path, "test", "margin", 16).kappa is None  # takes no kappa


@pytest.mark.parametrize("kappa", [None, 16, 16.0, 4, 0.5])
def test_view_shared_keeps_one_spelling_per_key(dashboard_runs, kappa):
    run = load_run(dashboard_runs / "synth")
    view = View.shared(run, "test", "paper", kappa)
    key = check_kappa("paper", kappa, run.T_max)
    assert view.key_kappa == key
    assert view.kappa == (None if key == run.T_max else key)
    plain = View(run, "test", "paper", kappa)
    np.testing.assert_array_equal(view.decoded.confidence, plain.decoded.confidence)
    np.testing.assert_array_equal(view.baseline, plain.baseline)


def _arrays(value) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        return [value]
    return [v for v in vars(value).values() if isinstance(v, np.ndarray)]


def test_what_a_session_leaves_in_a_shared_view_is_read_only(env, empty_caches):
    for page in ("explorer", "oracle", "selection", "classes", "compare"):
        app(page, threshold="0.6", runs=RUNS)
    view = empty_caches.get_analysis(env / "synth", "test", "paper", None)
    kept = [
        view.baseline, view.sweep, view.oracle_curve(), view.oracle(), view.evaluate(0.6),
        view.capped(0.6), view.classes(0.6), view.selection("calibration").test,
        view.selection("calibration").sweep, view.decoded,
    ]  # fmt: skip
    arrays = [arr for value in kept for arr in _arrays(value)]
    assert len(arrays) > 20
    assert not [arr.shape for arr in arrays if arr.flags.writeable]
    with pytest.raises(ValueError, match="read-only"):
        view.baseline[0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        view.evaluate(0.6).exit_steps[:] = 1
