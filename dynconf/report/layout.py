"""Margins, legend and title placed from the font sizes, so that nothing is clipped.

Plotly's own margin growth ("automargin") shrinks the plot when a legend gets longer and,
with a legend below the axis, lets the two overlap (the x-axis title of a 760 x 480 figure
ended under the page's bottom edge). Here every margin is computed from the preset's font
sizes and the figure's text, and frozen (``margin.autoexpand = False``): the axes box is the
preset's size whatever the legend says, so a moving threshold cannot resize the plot, and the
legend sits in rows of its own, below the x-axis title or above the plot.

Text widths are estimated from Arial's character widths (the figures' font) with a safety
factor; tests/report/test_presets.py renders every figure of every preset to PDF and checks
that each word lies inside the page and that legend and axis titles do not overlap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dynconf.report.presets import PX_PER_PT, Preset

FONT = "Arial, Helvetica, sans-serif"
TEXT = "#000000"
GRID = "#E6E6E6"
# Assumed width of the app's column when the figure stretches to it (no width known).
APP_WIDTH = 700
# The narrowest width (px) the app lays a legend's rows out in (see _place_legend).
APP_LEGEND_WIDTH = 300
# Category names are turned upright unless they fit side by side in a column this narrow
# (the app's main column at 1024 px with the sidebar open).
CATEGORY_APP_WIDTH = 480
# Plotly's legend geometry (plotly.js legend constants): a 40 px symbol column in front of
# each entry's text, 5 px between entries, 1.3 line spacing, rows at least 16 px + 3 px,
# 10 px padding around the whole box.
LEGEND_SYMBOL = 40
LEGEND_GAP = 5
LINE = 1.3
SAFETY = 1.1  # estimated text widths are stretched by this much

# Arial advance widths in em, by character class.
_NARROW = set("iljtfrI.,:;!|'()[] /")
_WIDE = set("mwMW%@")
_CAPS = set("ABCDEFGHKNOPQRSUVXYZ&")


def text_width(text: str, size: float) -> float:
    """Estimated width in px of one line of ``text`` at font size ``size`` px."""
    em = 0.0
    for ch in _plain(text):
        if ch in _NARROW:
            em += 0.3
        elif ch in _WIDE:
            em += 0.86
        elif ch in _CAPS or ch.isdigit() or ch in "=+-<>_~$#":
            em += 0.62
        else:
            em += 0.54
    return em * size * SAFETY


def _plain(text: str) -> str:
    """What Plotly shows of an escaped label: entities as one character, tags dropped."""
    import re

    text = re.sub(r"<[^>]*>", "", str(text))
    return re.sub(r"&[a-zA-Z#0-9]+;", "x", text)


def wrap(text: str, size: float, max_width: float) -> str:
    """``text`` with <br> between words so that no line is wider than ``max_width``."""
    words = str(text).replace("<br>", " ").split(" ")
    lines: list[str] = []
    for word in words:
        if lines and text_width(f"{lines[-1]} {word}", size) <= max_width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return "<br>".join(lines)


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    try:
        return obj[key]
    except (KeyError, ValueError):
        return None


def legend_names(traces: Sequence[Any], layout: Mapping) -> list[str]:
    """The names the legend will show, in order (Plotly hides a lone trace's legend)."""
    shown = [t for t in traces if _get(t, "showlegend") is not False and _get(t, "name")]
    if layout.get("showlegend") is False or (len(shown) < 2 and not layout.get("showlegend")):
        return []
    return [str(_get(t, "name")) for t in shown]


def _values(v: Any) -> np.ndarray:
    """Numbers of a trace's x or y: a list, an array, or Plotly's typed-array form
    ({"dtype", "bdata"}, base64) that ``Figure.to_dict`` gives for numpy data."""
    if v is None:
        return np.zeros(0)
    if isinstance(v, Mapping) and "bdata" in v:
        import base64

        return _values(np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]))
    try:
        arr = np.asarray(v, dtype=float).ravel()
    except (TypeError, ValueError):
        return np.zeros(0)
    return arr[np.isfinite(arr)]


def _data_range(traces: Sequence[Any], axis: str, layout: Mapping) -> tuple[float, float]:
    """The range an axis will show: its set range, else the span of the traces' data on it
    (stacked bars add up)."""
    name = {"x": "xaxis", "y": "yaxis", "y2": "yaxis2"}[axis]
    rng = (layout.get(name) or {}).get("range")
    if rng is not None and len(rng) == 2 and all(isinstance(r, int | float) for r in rng):
        return float(min(rng)), float(max(rng))
    letter, ref = axis[0], axis
    lo, hi, stack = math.inf, -math.inf, 0.0
    for t in traces:
        on = _get(t, f"{letter}axis") or letter
        if on != ref:
            continue
        vals = _values(_get(t, letter))
        if not len(vals):
            continue
        if _get(t, "type") == "bar" and layout.get("barmode") == "stack" and letter == "y":
            stack += float(vals.max())
            hi = max(hi, stack)
            lo = min(lo, 0.0)
        else:
            lo, hi = min(lo, float(vals.min())), max(hi, float(vals.max()))
    if not math.isfinite(lo):
        return 0.0, 1.0
    if (layout.get(name) or {}).get("rangemode") == "tozero":
        lo = min(lo, 0.0)
    return lo, hi


def tick_labels(lo: float, hi: float, length: float, tick_px: float) -> list[str]:
    """The tick labels Plotly is likely to draw on an axis of ``length`` px (its automatic
    1-2-5 steps), for their width: the widest one sets a margin."""
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    n = min(10.0, max(3.0, length / (tick_px * 3.5)))
    rough = span / n
    exp = math.floor(math.log10(rough))
    step = next(m * 10**exp for m in (1, 2, 5, 10) if m * 10**exp >= rough)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    first = math.ceil(lo / step) * step
    values = [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)] or [lo, hi]
    return [
        f"{v:,.{decimals}f}".replace(",", "") if abs(v) < 1e4 else f"{v / 1e3:.0f}k" for v in values
    ]


def fit(traces: Sequence[Any], layout: dict, preset: Preset, width: int | None = None) -> dict:
    """Set ``layout``'s fonts, axes, title, legend place, margins and height for ``preset``
    (``width`` px, or the app's column when None). Mutates and returns ``layout``."""
    g = _Geometry(preset, width)
    _style_axes(layout, g)
    visible = any((layout.get(k) or {}).get("visible", True) for k in ("xaxis", "yaxis"))
    left, right, plot_w = _side_margins(traces, layout, g, visible)
    # Bottom: x tick labels, standoff and title, then the legend when it goes below.
    x_title = LINE * g.fl if _title_text(layout, "xaxis") else 0.0
    x_zone = (
        g.ticklen + _x_tick_height(traces, layout, g, plot_w) + g.standoff + x_title + g.pad
        if visible
        else g.pad
    )
    legend_h, below = _place_legend(traces, layout, g, plot_w, x_zone, width)
    bottom = x_zone + (g.pad + legend_h + g.pad if below and legend_h else 0.0)
    top = _place_title(layout, g, legend_h if not below else 0.0)
    layout["height"] = round(top + g.plot_h + bottom)
    layout["margin"] = {
        "l": round(left),
        "r": round(right),
        "t": round(top),
        "b": round(bottom),
        "pad": 0,
        "autoexpand": False,
    }
    layout["title"]["y"] = 1 - g.pad / layout["height"]
    if width:
        layout["width"] = width
    else:
        layout.pop("width", None)
    return layout


class _Geometry:
    """The sizes in px that one preset at one width implies."""

    def __init__(self, preset: Preset, width: int | None) -> None:
        self.preset = preset
        self.fl, self.ft = preset.font_pt * PX_PER_PT, preset.tick_pt * PX_PER_PT
        self.W = width or APP_WIDTH
        self.known_width = width is not None
        self.plot_h = preset.plot_height_px
        self.pad = max(4.0, 0.4 * self.fl)
        self.ticklen = max(3.0, round(0.4 * self.ft))
        self.standoff = round(0.6 * self.fl)  # axis title to tick labels


def _title_text(layout: Mapping, key: str) -> str:
    t = (layout.get(key) or {}).get("title") or {}
    return str(t.get("text") or "")


def _style_axes(layout: dict, g: _Geometry) -> None:
    """Fonts, lines and outside ticks of every axis, the figure's font and annotations."""
    axes = sorted(k for k in layout if k.startswith(("xaxis", "yaxis")))
    for key in ("xaxis", "yaxis"):
        if key not in axes:
            axes.append(key)
            layout[key] = {}
    for key in axes:
        ax = layout.setdefault(key, {})
        title = ax.get("title") or {}
        if isinstance(title, str):
            title = {"text": title}
        title["font"] = {"size": g.fl, "color": TEXT}
        title["standoff"] = g.standoff
        ax["title"] = title
        ax.update(
            automargin=True,  # with frozen margins this only makes Plotly honour standoff
            showline=True,
            linecolor=TEXT,
            linewidth=1,
            ticks="outside",
            ticklen=g.ticklen,
            tickcolor=TEXT,
            tickwidth=1,
            tickfont={"size": g.ft, "color": TEXT},
            zeroline=False,
        )
        ax.setdefault("gridcolor", GRID)
    layout["font"] = {"family": FONT, "size": g.fl, "color": TEXT}
    for note in layout.get("annotations") or []:
        note["font"] = {"size": g.ft, "color": TEXT}


def _y_zone(traces: Sequence[Any], layout: Mapping, g: _Geometry, key: str, axis: str) -> float:
    """Room beside the plot for a y axis: tick labels (or category names), standoff, title."""
    ax = layout.get(key) or {}
    if not ax.get("visible", True):
        return g.pad
    if ax.get("type") == "category":
        labels = _category_labels(traces, axis[0])
    else:
        lo, hi = _data_range(traces, axis, layout)
        labels = tick_labels(lo, hi, g.plot_h, g.ft)
    widest = max((text_width(s, g.ft) for s in labels), default=0.0)
    title = LINE * g.fl if _title_text(layout, key) else 0.0
    return g.ticklen + widest + g.standoff + title + g.pad


def _x_tick_height(traces: Sequence[Any], layout: dict, g: _Geometry, plot_w: float) -> float:
    """Height of the x tick labels. Category names (class names) that do not fit side by
    side are turned upright (``tickangle`` -90) and the bottom margin grows to the longest,
    so that no name is cut; numbers always fit flat."""
    ax = layout.get("xaxis") or {}
    if ax.get("type") != "category":
        return LINE * g.ft
    labels = _category_labels(traces, "x")
    if not labels:
        return LINE * g.ft
    y_ax = layout.get("yaxis") or {}
    # A square heatmap (y scaled to x) is as wide as the plot is high.
    span = min(plot_w, g.plot_h) if y_ax.get("scaleanchor") == "x" else plot_w
    # In the app the width is a guess: leave room for a narrower column.
    span = span if g.known_width else min(span, CATEGORY_APP_WIDTH)
    slot = span / max(1, len(set(labels)))
    widest = max(text_width(s, g.ft) for s in labels)
    if widest + g.ft <= slot:
        ax["tickangle"] = 0
        return LINE * g.ft
    ax["tickangle"] = -90
    layout["xaxis"] = ax
    return widest + 0.3 * g.ft


def _category_labels(traces: Sequence[Any], letter: str) -> list[str]:
    out: list[str] = []
    for t in traces:
        vals = _get(t, letter)
        if vals is not None and not isinstance(vals, Mapping):
            out.extend(str(v) for v in vals)
    return out


def _side_margins(
    traces: Sequence[Any], layout: Mapping, g: _Geometry, visible: bool
) -> tuple[float, float, float]:
    """(left, right, plot width): y tick labels and titles; the last x tick label overhangs
    the plot by half its width (the widest label, not the last: which label comes last
    shifts with the data's range, and the plot must not move when a threshold does)."""
    if not visible:
        return g.pad, g.pad, g.W - 2 * g.pad
    xax = layout.get("xaxis") or {}
    if xax.get("type") == "category":
        overhang = g.pad
    else:
        lo, hi = _data_range(traces, "x", layout)
        x_labels = tick_labels(lo, hi, g.W * 0.8, g.ft)
        overhang = max(text_width(x, g.ft) for x in x_labels) / 2 + g.pad
    left = _y_zone(traces, layout, g, "yaxis", "y")
    right = _y_zone(traces, layout, g, "yaxis2", "y2") if "yaxis2" in layout else overhang
    right = max(right, overhang)
    return left, right, g.W - left - right


def _place_legend(
    traces: Sequence[Any], layout: dict, g: _Geometry, plot_w: float, x_zone: float,
    width: int | None,
) -> tuple[float, bool]:
    """Put the legend in rows of its own below the x-axis title or above the plot; returns
    (its height, whether it is below). Names are wrapped to the plot's width."""
    names = legend_names(traces, layout)
    legend = dict(layout.get("legend") or {})
    below = (legend.get("y") or 1.0) < 0
    if not names:
        return 0.0, below
    names = [wrap(n, g.fl, plot_w - LEGEND_SYMBOL) for n in names] if width else names
    # In the app the figure stretches to its column: its rows are counted for the narrowest
    # legend it is shown with (a half-width chart at 1280 px, a full one at 1024 px with the
    # sidebar open), so that no row is cut off or scrolls.
    rows_w = plot_w if width else min(plot_w, APP_LEGEND_WIDTH)
    legend_h, entry_w = _legend_size(names, g.fl, rows_w, fixed=bool(width))
    legend.update(
        orientation="h",
        xref="paper",
        yref="paper",
        x=0,
        xanchor="left",
        font={"size": g.fl, "color": TEXT},
        bgcolor="rgba(255,255,255,0)",
        tracegroupgap=0,
        # Plotly clips a legend above or below the plot to half the figure's height
        # (and adds a scroll bar, which a PDF cannot scroll); it has its own rows here.
        maxheight=round(legend_h + 2 * g.pad),
    )
    if entry_w:
        legend.update(entrywidth=entry_w, entrywidthmode="pixels")
    else:
        legend.pop("entrywidth", None)
    if below:
        legend.update(y=-(x_zone + g.pad) / g.plot_h, yanchor="top")
    else:
        legend.update(y=1 + g.pad / g.plot_h, yanchor="bottom")
    layout["legend"] = legend
    if width:
        shown = (t for t in traces if _get(t, "showlegend") is not False and _get(t, "name"))
        for t, n in zip(shown, names, strict=False):
            _set_name(t, n)
    return legend_h, below


def _place_title(layout: dict, g: _Geometry, legend_above: float) -> float:
    """The title (if the preset has titles and the chart one) and a legend above the plot;
    returns the top margin. Sets the title's layout; the height is set by the caller."""
    title = layout.get("title") or {}
    text = str(title.get("text") or "") if g.preset.title_pt else ""
    fh = (g.preset.title_pt or 0) * PX_PER_PT
    title_h = LINE * fh if text else 0.0
    top = g.pad + title_h + (g.pad + legend_above if legend_above else 0.0)
    top = max(top, g.pad + 0.7 * g.ft)  # the top tick label overhangs the plot by half its height
    layout["title"] = {
        "text": text,
        "font": {"size": fh or g.fl, "color": TEXT},
        "x": 0,
        "xref": "container",
        "xanchor": "left",
        "pad": {"l": round(g.pad)},
        "yref": "container",
        "yanchor": "top",
    }
    return top


def _set_name(trace: Any, name: str) -> None:
    if isinstance(trace, dict):
        trace["name"] = name
    else:
        trace.name = name


def _legend_size(
    names: Sequence[str], size: float, plot_w: float, fixed: bool
) -> tuple[float, int | None]:
    """(height, entry width) of a horizontal legend of ``names`` no wider than the plot.

    With a known width (``fixed``) every entry gets the same width, so columns line up and
    the row count is exact; in the app (width unknown) entries flow at their own width and
    the row count is estimated for ``APP_WIDTH``.
    """
    lines = [n.count("<br>") + 1 for n in names]
    widths = [max(text_width(part, size) for part in n.split("<br>")) for n in names]
    row_h = [max(16.0, k * LINE * size) + 3 for k in lines]
    if fixed:
        entry = max(widths)
        cols = max(1, int((plot_w - 2) // (entry + LEGEND_SYMBOL + LEGEND_GAP)))
        cols = min(cols, len(names))
        # Plotly starts a new row when an entry would pass the plot's right edge; keep 2 px
        # spare so that rounding cannot push the last column over.
        entry = int(plot_w / cols - LEGEND_SYMBOL - LEGEND_GAP - 2)
        rows = [max(row_h[i : i + cols]) for i in range(0, len(names), cols)]
        return sum(rows) + 10, entry
    x, rows, cur = 0.0, [], 0.0
    for w, h in zip(widths, row_h, strict=True):
        item = w + LEGEND_SYMBOL + LEGEND_GAP
        if x and x + item > plot_w:
            rows.append(cur)
            x, cur = 0.0, 0.0
        x += item
        cur = max(cur, h)
    rows.append(cur)
    return sum(rows) + 10, None


def scale_traces(traces: Sequence[dict], weight: float) -> None:
    """Line widths and marker sizes times ``weight`` (a paper figure's are thinner)."""
    if weight == 1:
        return
    for t in traces:
        line = t.get("line")
        if isinstance(line, dict) and isinstance(line.get("width"), int | float):
            line["width"] = max(0.75, line["width"] * weight)
        marker = t.get("marker")
        if isinstance(marker, dict):
            size = marker.get("size")
            if isinstance(size, int | float):
                marker["size"] = max(2.0, size * weight)
            mline = marker.get("line")
            if isinstance(mline, dict) and isinstance(mline.get("width"), int | float):
                mline["width"] = max(0.5, mline["width"] * weight)
