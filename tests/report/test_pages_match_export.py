"""Every page's figures are the export's: page by page, the Plotly JSON the browser gets from
the app (AppTest, the real pages) equals, title for title, the figure ``dynconf export``
writes for the same view (``export.collect_figures``), data and layout both.

The explorer draws its charts in its own component, so there the figures behind its
download buttons are compared (recorded as the page hands them to ``download_row``).
"""

from __future__ import annotations

import json

import plotly.io as pio
import pytest

from dynconf.app import charts as ui_charts
from dynconf.core.store import load_run
from dynconf.core.timeline import example_sample
from dynconf.report import export
from dynconf.report.viewdata import make_view
from tests.app.helpers import app, specs

C = 0.6  # the app's threshold, from the URL
PAGES = ["home", "oracle", "selection", "policies", "classes", "samples", "compare", "classroom"]


def _spec(fig) -> dict:
    """A figure as Streamlit sends it to the browser."""
    return json.loads(pio.to_json(fig, validate=False))


@pytest.fixture(scope="module")
def exported(dashboard_runs):
    """The export's figures of synth's test split at C, by title: every page's, the first
    sample's, the classroom at step 1 and synth compared with its top-k copy."""
    run = load_run(dashboard_runs / "synth")
    view = make_view(run, "test")
    sp = run.split("test")
    sid = int(sp.ids[0]) if sp.ids is not None else 0
    other = make_view(load_run(dashboard_runs / "synth_topk"), "test")
    charts, _, context = export.collect_figures(
        view, C, "calibration", samples=[sid], compare=[other], steps=[1]
    )
    assert context["threshold"] == C
    by_title = {}
    for chart in charts:
        by_title.setdefault(chart.title, []).append(chart)
    return by_title, view


def _names(spec: dict) -> list:
    return [(trace.get("name"), len(trace.get("x") or ())) for trace in spec["data"]]


def _check_page(at, by_title, page):
    drawn = specs(at)
    assert drawn, f"{page}: no figure drawn"
    for title, spec in drawn.items():
        assert title in by_title, (page, "not in the export:", title, sorted(by_title))
        ours = [_spec(c.figure) for c in by_title[title]]
        assert any(spec["data"] == o["data"] for o in ours), (
            page, title, "data differ", _names(spec), [_names(o) for o in ours],
        )  # fmt: skip
        assert any(spec == o for o in ours), (page, title, "layout differs")
    return drawn


@pytest.mark.parametrize("page", PAGES)
def test_each_page_draws_the_exported_figures(env, exported, page):
    by_title, view = exported
    query = {"threshold": str(C)}
    if page == "compare":
        query["runs"] = "synth,synth_topk"
    at = app(page, **query)
    if page == "classroom" and not at.get("plotly_chart"):
        pytest.skip("the classroom is painted in the browser on this page")
    drawn = _check_page(at, by_title, page)
    if page == "classes":
        assert len(drawn) == 3  # accuracy, latency and the confusion at exit
    if page == "samples":
        assert any(t.startswith("Confidence over time") for t in drawn)
    if page == "classroom":
        watched = example_sample(view.decoded, C)
        assert f"Sample {watched}: confidence" in drawn or any("id" in t for t in drawn)


def test_explorer_downloads_are_the_exported_figures(env, exported, monkeypatch):
    by_title, _ = exported
    drawn: dict[str, object] = {}
    original = ui_charts.download_row

    def recording(chart, key):
        drawn[chart.key] = chart
        return original(chart, key)

    monkeypatch.setattr(ui_charts, "download_row", recording)
    at = app("explorer", threshold=str(C))
    at.session_state["explorer-downloads"] = True  # the expander open: its figures are built
    at.run()
    assert not at.exception
    keys = {"accuracy_latency", "exit_histogram", "threshold_response", "exit_scatter"}
    assert set(drawn) >= keys, sorted(drawn)
    for key in sorted(keys):
        chart = drawn[key]
        (ours,) = [c for c in by_title[chart.title] if c.key == key]
        assert chart.csv() == ours.csv(), key
        for preset in ("screen", "paper-1col"):
            app_fig = _spec(export.export_figure(chart.figure, preset))
            pack_fig = _spec(export.export_figure(ours.figure, preset))
            assert app_fig == pack_fig, (key, preset)


def test_export_csv_holds_every_step(exported):
    """accuracy_by_T draws (and its CSV holds) every T from 1 to T_max, as the app does."""
    by_title, view = exported
    (chart,) = [c for charts in by_title.values() for c in charts if c.key == "accuracy_by_T"]
    snn = chart.data[chart.data.series == "snn"]
    assert list(snn["T"]) == list(range(1, view.run.T_max + 1))
    assert snn["accuracy"].to_numpy() == pytest.approx(view.baseline)
