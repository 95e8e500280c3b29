"""What the app's AppTest tests share: open the app (optionally on a page) and fail on any
exception; read a metric's value, the page's figures and their arrays as the browser gets them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from dynconf.app.routes import page_path

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def app(page: str | None = None, **query) -> AppTest:
    """The app after its first run with ``query`` in the URL, then on ``page`` if given."""
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if page:
        at.switch_page(page_path(page)).run()
        assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    """The value of the page's metric called ``label``; fails listing the labels there are."""
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r} in {[m.label for m in at.metric]}"
    return found[0]


def values(x) -> np.ndarray:
    """A figure array as sent to the browser: a list, or Plotly's typed array (base64)."""
    if isinstance(x, dict) and "bdata" in x:
        arr = np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"])
        shape = [int(n) for n in str(x.get("shape", len(arr))).split(",")]
        return arr.reshape(shape)
    return np.asarray(x)


def figure_specs(at: AppTest) -> list[dict]:
    """The page's Plotly figures as sent to the browser: Streamlit's charts, then those drawn
    with the vendored Plotly.js (dynconf.app.plotlyjs)."""
    from dynconf.app.plotlyjs import figure_spec

    drawn = [e for e in at.get("bidi_component") if e.proto.component_name == "dynconf.figure"]
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")] + [
        figure_spec(e) for e in drawn
    ]


def specs(at: AppTest) -> dict[str, dict]:
    """The page's Plotly figures (as sent to the browser) by their title."""
    return {spec["layout"]["title"]["text"]: spec for spec in figure_specs(at)}


def slider(at: AppTest):
    """The sidebar's threshold slider (its key carries a generation: dynconf.app.threshold)."""
    found = [s for s in at.slider if s.label == "Threshold C"]
    assert len(found) == 1, [s.label for s in at.slider]
    return found[0]


def exact_box(at: AppTest):
    """The sidebar's exact threshold box."""
    found = [n for n in at.number_input if n.label == "Exact threshold"]
    assert len(found) == 1, [n.label for n in at.number_input]
    return found[0]
