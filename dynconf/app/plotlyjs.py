"""Plotly.js in the browser: the vendored bundle, and static figures drawn with it.

Streamlit's own ``st.plotly_chart`` draws with its lazily loaded chunk of the full Plotly.js
(4.7 MB to fetch, parse and run, in every new browser tab), so a page drawn with it waits
seconds before its first chart. The pages that must be quick instead mount the vendored
basic bundle (1.1 MB, the one the explorer, the HTML report and the widget use) once at
the top of the page, and draw their figures with :func:`figure`. A tab that has shown the
explorer has the bundle parsed already, so switching to such a page only draws.

This module imports nothing but Streamlit, so the entry script can mount the bundle before
its heavy imports and the decode: the browser parses Plotly.js while the server works.
"""

from __future__ import annotations

import contextlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitDuplicateElementKey

ASSETS = Path(__file__).with_name("instant_assets")
# dynconf.report.explorer.PLOTLY_BUNDLE, named here without importing that module (numpy,
# plotly); tests/app/test_instant.py checks the two agree.
PLOTLY_BUNDLE = Path(__file__).resolve().parents[1] / "report/explorer/vendor/plotly-basic.min.js"
LIBRARY_KEY = "dynconf-plotly"
# Where a figure's height is not in its layout: Plotly's own default.
DEFAULT_HEIGHT = 450


def _read(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


@cache
def library_component() -> Any:
    """``dynconf.plotly``: the bundle, then a note that wakes whoever waits for it. Plotly
    puts its styles into the document's head: no shadow root."""
    js = PLOTLY_BUNDLE.read_text(encoding="utf-8") + "\n" + _read("plotly_ready.js")
    return st.components.v2.component("dynconf.plotly", js=js, isolate_styles=False)


@cache
def figure_component() -> Any:
    """``dynconf.figure``: one static figure, drawn with Plotly.react once the bundle is in."""
    return st.components.v2.component(
        "dynconf.figure", html='<div class="dcf-root"></div>', js=_read("figure.js"),
        isolate_styles=False,
    )  # fmt: skip


def load_plotly() -> None:
    """Mount the bundle (height 0) if this script run has not yet. Its message never
    changes, so Streamlit's message cache sends it once per browser session, and the
    browser imports it once per tab. A second call in the same run finds its key taken
    and does nothing."""
    with contextlib.suppress(StreamlitDuplicateElementKey):
        library_component()(key=LIBRARY_KEY, height=0)


def figure_json(fig: Any) -> bytes:
    """The figure as Plotly.js reads it (what ``st.plotly_chart`` sends: numpy arrays as
    typed arrays), in UTF-8."""
    import plotly.io as pio

    return pio.to_json(fig, validate=False).encode("utf-8")


def figure(fig: Any, key: str, config: dict | None = None) -> None:
    """Draw ``fig`` exactly as exported (no Streamlit theme) across the page's width,
    with Plotly's own tools (``config``, e.g. ``{"displaylogo": False}``). It is drawn
    again only when the figure changes."""
    load_plotly()
    height = fig.layout.height or DEFAULT_HEIGHT
    data = figure_json(fig)
    head = ('{"config":' + json.dumps(config or {}) + ',"figure":').encode("utf-8")
    figure_component()(data=head + data + b"}", key=key, height=int(height))


def figure_spec(element: Any) -> dict:
    """The figure a ``dynconf.figure`` element carries (for AppTest, which runs no
    JavaScript): ``{"data": [...], "layout": {...}}``."""
    return json.loads(bytes(element.proto.bytes))["figure"]
