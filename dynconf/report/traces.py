"""Traces that several charts draw, built in one place so they look and hover the same.

The fixed-T baseline, the Pareto front of a threshold sweep, the capped policy curve and
the "current point" star each appear in two to four charts (the explorer's plane, the oracle
figure, threshold selection, the compare page); each chart picks the names and colours, the
drawing itself lives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from dynconf.report.style import COLORS, percent, plotly_text, time_steps

PLANE_HOVER = "latency %{x:.2f}<br>accuracy %{y:.2f} %"


def _extra(name: str) -> str:
    """The hover box's side label, escaped (it may be a run name)."""
    return f"<extra>{plotly_text(name)}</extra>"


def baseline_trace(
    accuracy: Sequence[float],
    name: str = "baseline (fixed T)",
    color: str = COLORS["baseline"],
    steps: Sequence[int] | None = None,
    markers: bool = True,
    dash: str | None = None,
    legendgroup: str | None = None,
    hover_name: str = "baseline",
) -> go.Scatter:
    """Accuracy at fixed T against T (x = 1..T unless ``steps`` says which T)."""
    acc = np.asarray(accuracy, dtype=float)
    x = time_steps(len(acc)) if steps is None else np.asarray(steps)
    # Thin with small markers: the capped policy curve runs on top of it at small caps and
    # must stay visible there.
    line: dict[str, Any] = {"color": color, "width": 1.5}
    if dash:
        line["dash"] = dash
    return go.Scatter(
        x=x,
        y=percent(acc),
        name=name,
        legendgroup=legendgroup,
        mode="lines+markers" if markers else "lines",
        line=line,
        marker={"size": 4} if markers else None,
        hovertemplate=f"T = %{{x}}<br>accuracy %{{y:.2f}} %{_extra(hover_name)}",
    )


def front_points(sweep: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean latency, accuracy, threshold) of the sweep's Pareto front, fast to slow."""
    lat, acc = np.asarray(sweep.mean_latency), np.asarray(sweep.accuracy)
    thr, front = np.asarray(sweep.thresholds), np.asarray(sweep.on_front, dtype=bool)
    order = np.argsort(lat[front], kind="stable")
    return lat[front][order], acc[front][order], thr[front][order]


def front_trace(
    sweep: Any,
    name: str = "Pareto front",
    color: str = COLORS["front"],
    legendgroup: str | None = None,
    hover_name: str = "front",
    dash: str = "solid",
    symbol: str | None = None,
) -> go.Scatter:
    """The sweep's Pareto front drawn as a line from fast to slow: a front holds hundreds of
    points, as markers they would bury the curves under it. ``symbol`` marks a few points
    (``marker.maxdisplayed``) so that overlaid fronts differ in more than colour."""
    lat, acc, thr = front_points(sweep)
    return go.Scatter(
        x=lat,
        y=percent(acc),
        customdata=thr,
        name=name,
        legendgroup=legendgroup,
        mode="lines+markers" if symbol else "lines",
        line={"color": color, "width": 2.5, "dash": dash},
        marker={"symbol": symbol, "size": 7, "maxdisplayed": 8} if symbol else None,
        hovertemplate=f"threshold %{{customdata:.4f}}<br>{PLANE_HOVER}{_extra(hover_name)}",
    )


def capped_trace(curve: Any, name: str) -> go.Scatter:
    """The threshold policy with a cap on the exit step, over caps 1..T (a Curve)."""
    caps = time_steps(len(curve.latency))
    return go.Scatter(
        x=np.asarray(curve.latency),
        y=percent(curve.accuracy),
        customdata=caps,
        name=name,
        mode="lines",
        line={"color": COLORS["policy"], "width": 2.5, "dash": "dash"},
        hovertemplate=f"cap %{{customdata}}<br>{PLANE_HOVER}<extra>policy</extra>",
    )


def oracle_trace(curve: Any, name: str) -> go.Scatter:
    """An oracle's upper-bound curve over caps 1..T (a Curve), solid red."""
    return go.Scatter(
        x=np.asarray(curve.latency),
        y=percent(curve.accuracy),
        customdata=time_steps(len(curve.latency)),
        name=name,
        mode="lines",
        line={"color": COLORS["oracle"], "width": 2},
        hovertemplate=f"cap %{{customdata}}<br>{PLANE_HOVER}<extra>oracle</extra>",
    )


def star(
    x: float,
    y_percent: float,
    name: str,
    hovertemplate: str,
    color: str = COLORS["current"],
    symbol: str = "star",
) -> go.Scatter:
    """One highlighted point: the current (or chosen) threshold."""
    return go.Scatter(
        x=[x],
        y=[y_percent],
        name=name,
        mode="markers",
        marker={
            "color": color,
            "size": 15,
            "symbol": symbol,
            "line": {"color": "black", "width": 1},
        },
        hovertemplate=hovertemplate,
    )


def current_point(
    result: Any, name: str, color: str = COLORS["current"], symbol: str = "star"
) -> go.Scatter:
    """A PolicyResult on the accuracy-latency plane."""
    return star(
        result.mean_latency,
        100.0 * result.accuracy,
        name,
        f"threshold {result.threshold:.4f}<br>{PLANE_HOVER}<extra>{name}</extra>",
        color=color,
        symbol=symbol,
    )
