"""The look every dynconf chart shares: palette, colour roles, template, sizes, and the builder.

Colours are the Okabe-Ito palette (safe for the common colour-vision deficiencies), each
with one role used the same way in every chart. A :class:`Chart` is a figure plus the exact
numbers it draws as a tidy table, so that a CSV download always matches its picture.
:class:`FigureBuilder` collects traces and layout as plain data and lets Plotly validate
them once, which keeps a slider move's redraw cheap.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dynconf.report.layout import fit as fit_layout
from dynconf.report.presets import DEFAULT_PRESET, get_preset

# Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
# One role per colour, used the same way in every chart. Baseline black and oracle red
# follow the paper's Figure 1.
COLORS = {
    "baseline": OKABE_ITO["black"],
    "oracle": OKABE_ITO["vermillion"],
    "policy": OKABE_ITO["blue"],
    "sweep": OKABE_ITO["sky_blue"],
    "front": OKABE_ITO["orange"],
    "current": OKABE_ITO["reddish_purple"],
    "correct": OKABE_ITO["bluish_green"],
    "wrong": OKABE_ITO["vermillion"],
    "band": OKABE_ITO["yellow"],
    "test": OKABE_ITO["bluish_green"],
}
# Colours for overlaid series (compare page, class probabilities), in a fixed order.
SERIES = [
    OKABE_ITO["blue"],
    OKABE_ITO["orange"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["black"],
    OKABE_ITO["yellow"],
]
DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]

# Size of the screen preset (dynconf/report/presets.py), the default of a static export;
# the app lets the figure stretch to the column width.
EXPORT_WIDTH = 760
EXPORT_HEIGHT = 480

# Charts with many series (the accuracy-latency planes) carry their legend under the x axis,
# where it can never hide data; the others a legend between title and plot. Only the side
# matters: dynconf/report/layout.py places it in rows of its own from the font sizes.
LEGEND_BELOW = {"orientation": "h", "x": 0, "xanchor": "left", "y": -0.2, "yanchor": "top"}
LEGEND_TOP = {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "xanchor": "left"}
# Axis titles of the accuracy-latency plane (explorer, selection, compare).
PLANE_AXES = ("mean latency (time steps)", "accuracy (%)")

# A small template of our own instead of "plotly_white": assigning a named template makes
# Plotly deep-copy and validate the whole template, which cost ~30 ms per figure and most of a
# slider move's server time.
TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": "Arial, Helvetica, sans-serif", "size": 13, "color": "#000000"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "xaxis": {"gridcolor": "#EBF0F8", "linecolor": "#EBF0F8", "zeroline": False},
        "yaxis": {"gridcolor": "#EBF0F8", "linecolor": "#EBF0F8", "zeroline": False},
        "hoverlabel": {"align": "left"},
    }
)


@dataclass
class Chart:
    """A figure and the numbers it shows.

    ``key`` is a file-name stem (``accuracy_latency``), ``data`` one row per drawn point
    with a ``series`` column naming the trace it belongs to.
    """

    key: str
    title: str
    figure: go.Figure
    data: pd.DataFrame
    notes: dict[str, Any] = field(default_factory=dict)

    def csv(self) -> bytes:
        buf = io.StringIO()
        self.data.to_csv(buf, index=False)
        return buf.getvalue().encode("utf-8")


def _merge(into: dict, new: Mapping) -> dict:
    for k, v in new.items():
        if isinstance(v, Mapping) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = dict(v) if isinstance(v, Mapping) else v
    return into


def plotly_text(text: Any) -> str:
    """Text shown as itself in a Plotly title, legend, annotation or hover label: Plotly
    turns tags such as <a href> into markup and decodes entities, so &, < and > become
    entities and show literally."""
    return html.escape(str(text), quote=False)


class FigureBuilder:
    """Collects traces, shapes and layout as plain data; validates once in :meth:`build`.

    Plotly validates every ``update_layout``/``add_vline`` call separately (~30 ms each);
    building the figure in one go keeps a slider move's redraw cheap.
    """

    def __init__(self, *traces: Any) -> None:
        self.traces: list[Any] = list(traces)
        self.layout: dict[str, Any] = {"template": TEMPLATE, "shapes": [], "annotations": []}
        # Margins, legend place and height from the screen preset's fonts (layout.fit);
        # a chart with a layout of its own (the input image) turns this off.
        self.fit = True

    def add_trace(self, trace: Any) -> None:
        self.traces.append(trace)

    def update_layout(self, **props: Any) -> None:
        _merge(self.layout, props)

    def _line(self, axis: str, value: float, line: dict, text: str | None, position: str):
        if axis == "x":
            shape = {
                "type": "line",
                "xref": "x",
                "x0": value,
                "x1": value,
                "yref": "y domain",
                "y0": 0,
                "y1": 1,
                "line": line,
            }
            note = {
                "xref": "x",
                "x": value,
                "yref": "y domain",
                "y": 0 if "bottom" in position else 1,
                "yanchor": "bottom" if "bottom" in position else "top",
                "xanchor": "left" if "right" in position else "right",
            }
        else:
            shape = {
                "type": "line",
                "yref": "y",
                "y0": value,
                "y1": value,
                "xref": "x domain",
                "x0": 0,
                "x1": 1,
                "line": line,
            }
            note = {
                "yref": "y",
                "y": value,
                "xref": "x domain",
                "x": 1 if "right" in position else 0,
                "xanchor": "right" if "right" in position else "left",
                "yanchor": "top" if "bottom" in position else "bottom",
            }
        self.layout["shapes"].append(shape)
        if text:
            self.layout["annotations"].append({**note, "text": text, "showarrow": False})

    def add_vline(self, x, line, annotation_text=None, annotation_position="top right"):
        self._line("x", x, line, annotation_text, annotation_position)

    def add_hline(self, y, line, annotation_text=None, annotation_position="top right"):
        self._line("y", y, line, annotation_text, annotation_position)

    def add_vrect(self, x0: float, x1: float, color: str, text: str | None = None) -> None:
        self.layout["shapes"].append(
            {"type": "rect", "xref": "x", "x0": x0, "x1": x1, "yref": "y domain", "y0": 0,
             "y1": 1, "fillcolor": color, "opacity": 0.35, "line": {"width": 0},
             "layer": "below"}
        )  # fmt: skip
        if text:
            self.layout["annotations"].append(
                {"xref": "x", "x": (x0 + x1) / 2, "yref": "y domain", "y": 0.02, "text": text,
                 "showarrow": False, "yanchor": "bottom"}
            )  # fmt: skip

    def build(self) -> go.Figure:
        # Plotly renders a subset of HTML (links, images via <a>, <b>) in titles, legends
        # and annotations; names and titles may carry run or class names from a file, so
        # they are escaped here, once for every chart.
        title = self.layout.get("title")
        if isinstance(title, dict) and isinstance(title.get("text"), str):
            title["text"] = plotly_text(title["text"])
        for note in self.layout["annotations"]:
            if isinstance(note.get("text"), str):
                note["text"] = plotly_text(note["text"])
        for trace in self.traces:
            if isinstance(trace.name, str):
                trace.name = plotly_text(trace.name)
        if self.fit:
            fit_layout(self.traces, self.layout, get_preset(DEFAULT_PRESET))
        return go.Figure(data=self.traces, layout=self.layout)


def standard_layout(
    fig: FigureBuilder,
    title: str,
    xaxis: str,
    yaxis: str,
    legend_below: bool = False,
    **extra: Any,
) -> FigureBuilder:
    """Title, axis titles and legend side shared by every chart; margins, fonts and height
    follow from the preset when the figure is built (dynconf/report/layout.py)."""
    fig.update_layout(
        title={"text": title},
        xaxis={"title": {"text": xaxis}},
        yaxis={"title": {"text": yaxis}},
        legend=LEGEND_BELOW if legend_below else LEGEND_TOP,
        hovermode="closest",
        **extra,
    )
    return fig


def c_text(threshold: float) -> str:
    """C in a legend entry: always four decimals (C is in [0, 1]), so the entry is as wide
    for 0.5 as for 0.5251 and the legend does not reflow as the threshold moves."""
    return f"{float(threshold):.4f}"


def frame(series: str, **columns: Any) -> pd.DataFrame:
    """A chart table: one row per drawn point, the trace's name in column ``series``."""
    cols = {k: np.asarray(v) for k, v in columns.items()}
    n = len(next(iter(cols.values())))
    return pd.DataFrame({"series": [series] * n, **cols})


def time_steps(T: int) -> np.ndarray:
    """1, 2, ..., T: steps and caps are 1-based everywhere in dynconf."""
    return np.arange(1, T + 1)


def percent(a: Any) -> np.ndarray:
    """Fractions as percentages for an axis (the text formatter is core.formatting.pct)."""
    return 100.0 * np.asarray(a, dtype=float)
