"""Figures drawn with the vendored Plotly.js (dynconf/app/plotlyjs.py), with AppTest: the
Oracle page sends the library's figure, the bundle once, and nothing for Streamlit's chart."""

from __future__ import annotations

import json

import plotly.io as pio

from dynconf.app import plotlyjs
from dynconf.core.store import load_run
from dynconf.core.view import View
from dynconf.report import explorer as shared
from dynconf.report import figures
from tests.app.helpers import app


def mounted(at) -> list[str]:
    return [e.proto.component_name for e in at.get("bidi_component")]


def oracle_spec(at) -> dict:
    found = [e for e in at.get("bidi_component") if e.proto.component_name == "dynconf.figure"]
    assert len(found) == 1, mounted(at)
    return plotlyjs.figure_spec(found[0])


def test_the_bundle_is_the_explorers():
    assert shared.PLOTLY_BUNDLE.resolve() == plotlyjs.PLOTLY_BUNDLE
    assert plotlyjs.PLOTLY_BUNDLE.is_file()


def test_oracle_page_draws_the_librarys_figure_with_the_vendored_bundle(env):
    at = app("oracle", threshold="0.6")
    names = mounted(at)
    assert names.count("dynconf.plotly") == 1 and names[0] == "dynconf.plotly"
    assert not at.get("plotly_chart")  # Streamlit's own chart would load its full Plotly.js
    run = load_run(env / "synth")
    view = View(run, "test", "paper", None, disk=False)
    want = figures.build_figure(
        "oracle_bound", view, threshold=0.6, variant="first_correct", never="cap", show_all=True
    )
    assert oracle_spec(at) == json.loads(pio.to_json(want.figure, validate=False))
    shown = {trace["name"] for trace in oracle_spec(at)["data"]}
    at.toggle(key="oracle_all").set_value(False).run()
    fewer = {trace["name"] for trace in oracle_spec(at)["data"]}
    assert fewer < shown  # the other oracle variants are gone
    # The downloads under it are the exported figure's.
    assert {b.label for b in at.get("download_button")} >= {"PNG", "SVG", "PDF", "CSV"}


def test_explorer_mounts_the_bundle_once(env):
    at = app("explorer", threshold="0.5")
    assert mounted(at).count("dynconf.plotly") == 1
