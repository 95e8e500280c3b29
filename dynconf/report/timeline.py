"""The Classroom page's charts: the exits after step t, drawn large enough for a room.

Each builder draws one ``dynconf.core.timeline.TimelineState`` (or one sample's confidence up
to t) and keeps its axes fixed over t = 1..T_max, so that stepping through time moves the
data, never the frame: the sample grid fills with colour, the histogram's bars grow to their
final height, the confidence line creeps towards C. Type is larger than the other charts'
(``classroom_preset``, after the ``slides`` preset) because it is read across a classroom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dynconf.report.layout import fit
from dynconf.report.presets import PX_PER_IN, Preset, get_preset
from dynconf.report.style import (
    COLORS,
    Chart,
    FigureBuilder,
    standard_layout,
    time_steps,
)

PRESET = "slides"  # dynconf/report/presets.py: large type, read across a room
RUNNING_COLOR = "#D9D9D9"  # light grey: not answered yet
STATUS = ("running", "answered right", "answered wrong")
HOVER_MAX = 2500  # samples up to which each grid cell has a hover text


def classroom_preset(plot_height: int | None = None) -> Preset:
    """The ``slides`` preset's look with type a little smaller (14 pt), so that two charts
    side by side still fit a 1024 px projector; ``plot_height`` (px) replaces its height."""
    preset = replace(get_preset(PRESET), font_pt=14, tick_pt=13, title_pt=17)
    if plot_height is not None:
        preset = replace(preset, plot_height_in=plot_height / PX_PER_IN)
    return preset


def _big(fig: FigureBuilder, plot_height: int | None = None) -> None:
    fit(fig.traces, fig.layout, classroom_preset(plot_height))
    fig.fit = False  # fitted here; build must not re-fit to the screen preset


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, columns) of the sample grid: about twice as wide as tall, every cell used but
    the last row's tail."""
    if n <= 0:
        return 0, 0
    cols = max(1, math.ceil(math.sqrt(2 * n)))
    return math.ceil(n / cols), cols


def sample_status(state: Any) -> np.ndarray:
    """0 running, 1 answered right, 2 answered wrong, per sample at the state's t."""
    exited = np.asarray(state.exited, dtype=bool)
    right = np.asarray(state.correct_at_exit, dtype=bool)
    return np.where(exited, np.where(right, 1, 2), 0).astype(np.int8)


def _grid_hover(ids, words, steps, status, cells: int) -> np.ndarray:
    """Hover text of each grid cell, ~30 bytes a sample on every tick: kept for a
    class-sized split, left out of a 10,000-sample one (300 kB a step)."""
    hover = np.full(cells, "", dtype=object)
    hover[: len(status)] = [
        f"id {i}: {w}" + (f" at step {s}" if code else "")
        for i, w, s, code in zip(ids.tolist(), words, steps.tolist(), status.tolist(), strict=True)
    ]
    return hover


def _grid_keys(fig: FigureBuilder, status, colors, watched: int | None, cols: int) -> None:
    """Legend entries with the count of each status (a heatmap has none: the counts say how
    far the story is), and the watched sample's black frame."""
    counts = np.bincount(status, minlength=3)
    for code, (name, color) in enumerate(zip(STATUS, colors, strict=True)):
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=f"{name} ({counts[code]})",
                marker={"color": color, "size": 14, "symbol": "square"},
            )
        )
    if watched is not None and 0 <= watched < len(status):
        r, c = divmod(int(watched), cols)
        fig.add_trace(
            go.Scatter(
                x=[c],
                y=[r],
                mode="markers",
                name="watched sample",
                marker={
                    "symbol": "square-open",
                    "size": 16,
                    "color": COLORS["baseline"],
                    "line": {"width": 3},
                },
                hoverinfo="skip",
                cliponaxis=False,  # a frame on the first row stays whole above the grid
            )
        )


def timeline_grid(
    state: Any,
    ids: Sequence[int] | None = None,
    watched: int | None = None,
    title: str | None = None,
) -> Chart:
    """Every sample as one cell, in split order: grey while running, green once it answered
    right, vermillion once it answered wrong. ``watched`` (a position) gets a black frame."""
    status = sample_status(state)
    n = len(status)
    rows, cols = grid_shape(n)
    ids = np.arange(n) if ids is None else np.asarray(ids)
    z = np.full(rows * cols, np.nan)
    z[:n] = status
    words = np.asarray(STATUS)[status]
    steps = np.asarray(state.exit_steps)
    hover = _grid_hover(ids, words, steps, status, rows * cols) if n <= HOVER_MAX else None
    if hover is not None:
        hover = hover.reshape(rows, cols)
    title = title or f"Samples after step {state.t} of {state.T}"
    colors = (RUNNING_COLOR, COLORS["correct"], COLORS["wrong"])
    scale = [[k / 3 + e, c] for k, c in enumerate(colors) for e in (0.0, 1 / 3)]
    scale = [[min(1.0, round(p, 6)), c] for p, c in scale]
    fig = FigureBuilder(
        go.Heatmap(
            z=z.reshape(rows, cols),
            text=hover,
            hovertemplate=None if hover is None else "%{text}<extra></extra>",
            hoverinfo="skip" if hover is None else None,
            colorscale=scale,
            zmin=-0.5,
            zmax=2.5,
            showscale=False,
            xgap=1,
            ygap=1,
        )
    )
    _grid_keys(fig, status, colors, watched, cols)
    standard_layout(fig, title, "", "")
    fig.update_layout(
        xaxis={"visible": False, "range": [-0.5, cols - 0.5], "constrain": "domain"},
        yaxis={
            "visible": False,
            "range": [rows - 0.5, -0.5],  # first sample top left
            "scaleanchor": "x",
            "constrain": "domain",
        },
    )
    # Square cells in a column about 600 px wide (the app's main column at 1024 px).
    _big(fig, plot_height=max(120, min(420, round(rows * 600 / max(cols, 1)))))
    data = pd.DataFrame(
        {
            "position": np.arange(n),
            "id": ids,
            "row": np.arange(n) // max(cols, 1),
            "column": np.arange(n) % max(cols, 1),
            "status": words,
            "exit_step": np.where(status > 0, steps, 0),
        }
    )
    return Chart("timeline_grid", title, fig.build(), data, notes={"t": state.t})


def timeline_histogram(state: Any, title: str | None = None) -> Chart:
    """Answers given at each step so far, right and wrong stacked; the y axis is fixed at the
    final tallest bar so the bars grow into place as t advances."""
    T = int(state.T)
    x = time_steps(T)
    ok = np.asarray(state.exits_correct, dtype=np.int64)
    bad = np.asarray(state.exits_wrong, dtype=np.int64)
    final = np.bincount(np.asarray(state.exit_steps, dtype=np.int64), minlength=T + 1)[1:]
    top = max(1, int(final.max()) if final.size else 1)
    title = title or "Exits so far"
    fig = FigureBuilder()
    for counts, name, color in ((ok, "right", COLORS["correct"]), (bad, "wrong", COLORS["wrong"])):
        fig.add_trace(
            go.Bar(
                x=x,
                y=counts,
                name=name,
                marker={"color": color},
                hovertemplate=f"step %{{x}}<br>%{{y}} answered {name}<extra></extra>",
            )
        )
    fig.add_vline(
        x=state.t,
        line={"color": COLORS["current"], "dash": "dash", "width": 3},
        annotation_text=f"t = {state.t}",
        # Beside the line on the side with room, so late steps are not cut at the edge.
        annotation_position="top right" if state.t <= 0.7 * T else "top left",
    )
    standard_layout(fig, title, "exit step", "samples", barmode="stack", bargap=0.1)
    # No legend: the colours are the grid's (green right, vermillion wrong), and a legend
    # wraps into a scroll box in half a projector's width.
    fig.update_layout(
        xaxis={"range": [0.5, T + 0.5]},
        yaxis={"range": [0, 1.12 * top]},
        showlegend=False,
    )
    _big(fig)
    data = pd.DataFrame({"step": x, "right": ok, "wrong": bad, "total": ok + bad})
    return Chart("timeline_histogram", title, fig.build(), data, notes={"t": state.t})


def label_corner(confidence: np.ndarray, threshold: float, band: float = 0.14) -> str:
    """Where the "C = ..." label of the threshold line overlaps the curve least: the corner
    (top/bottom, left/right of the line) whose strip (the first or last third of the steps,
    ``band`` above or below C) holds the fewest confidence points of the whole run, so the
    label never moves while t advances."""
    c = np.asarray(confidence, dtype=float)
    third = max(1, len(c) // 3)
    spans = {"left": c[:third], "right": c[-third:]}
    best, where = None, "top left"
    for vertical in ("top", "bottom"):
        lo = threshold if vertical == "top" else threshold - band
        hi = lo + band
        room = 1.02 - threshold if vertical == "top" else threshold
        for side, part in spans.items():
            hits = int(((part >= lo) & (part <= hi)).sum()) + (len(c) if room < band else 0)
            if best is None or hits < best:
                best, where = hits, f"{vertical} {side}"
    return where


def timeline_confidence(
    confidence: Sequence[float],
    threshold: float,
    t: int,
    exit_step: int,
    title: str = "Confidence",
) -> Chart:
    """One sample's confidence c_1..c_t against C, the current step marked; the x axis spans
    the whole run so the line grows to the right. Once t reaches the exit step, a dotted line
    marks where the sample stopped."""
    c = np.asarray(confidence, dtype=float)
    T = len(c)
    t = int(min(max(t, 1), T))
    steps = time_steps(T)[:t]
    shown = c[:t]
    fig = FigureBuilder(
        go.Scatter(
            x=steps,
            y=shown,
            name="confidence",
            mode="lines+markers",
            line={"color": COLORS["policy"], "width": 4},
            marker={"size": 7},
            hovertemplate="step %{x}<br>confidence %{y:.4f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[t],
            y=[shown[-1]],
            name="now",
            mode="markers",
            marker={"color": COLORS["current"], "size": 18, "symbol": "circle"},
            hovertemplate="step %{x}<br>confidence %{y:.4f}<extra></extra>",
            cliponaxis=False,  # whole at t = T_max and at confidence 1
        )
    )
    fig.add_hline(
        y=threshold,
        line={"color": COLORS["current"], "dash": "dash", "width": 3},
        annotation_text=f"C = {threshold:.4g}",
        annotation_position=label_corner(c, threshold),
    )
    if exit_step <= t:
        fig.add_vline(
            x=exit_step,
            line={"color": COLORS["baseline"], "dash": "dot", "width": 3},
            annotation_text=f"stops at step {exit_step}",
            annotation_position="bottom right",
        )
    standard_layout(fig, title, "time step t", "confidence")
    # No legend: the marker and the dashed line say what they are, and half a projector's
    # width has no room for one.
    fig.update_layout(xaxis={"range": [0.5, T + 0.5]}, yaxis={"range": [0, 1.02]}, showlegend=False)
    _big(fig)
    data = pd.DataFrame({"step": steps, "confidence": shown, "threshold": threshold})
    return Chart("timeline_confidence", title, fig.build(), data, notes={"t": t})
