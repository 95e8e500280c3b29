"""Charts of Dynamic Confidence class by class: accuracy and latency per label, confusion at exit.

They draw numbers from ``dynconf.core.classes`` (exact counts); nothing is computed here
beyond turning counts into percentages. Class names that do not fit side by side stand upright
and the layout makes room for the longest (dynconf/report/layout.py): a name is never cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dynconf.report.style import (
    COLORS,
    Chart,
    FigureBuilder,
    percent,
    plotly_text,
    standard_layout,
)


def class_accuracy(
    table: Any, classes: Sequence[str], T_max: int, title: str = "Accuracy by class (true label)"
) -> Chart:
    """Per class: accuracy at the exit step against accuracy at T_max, side by side."""
    names = [str(c) for c in classes]
    shown = [plotly_text(c) for c in names]
    acc, full = np.asarray(table.accuracy), np.asarray(table.accuracy_full)
    fig = FigureBuilder()
    for values, name, color in (
        (acc, "at exit", COLORS["policy"]),
        (full, f"at T_max = {T_max}", COLORS["baseline"]),
    ):
        fig.add_trace(
            go.Bar(
                x=shown,
                y=percent(values),
                name=f"accuracy {name}",
                marker={"color": color},
                customdata=np.asarray(table.n),
                hovertemplate=f"%{{x}}<br>accuracy {name} %{{y:.2f}} %"
                "<br>%{customdata} samples<extra></extra>",
            )
        )
    standard_layout(fig, title, "true label", "accuracy (%)", barmode="group")
    fig.update_layout(xaxis={"type": "category"}, yaxis={"range": [0, 100.5]}, bargap=0.25)
    data = pd.DataFrame(
        {
            "class": names,
            "n": np.asarray(table.n),
            "accuracy_at_exit": acc,
            "accuracy_at_T_max": full,
            "mean_exit_step": np.asarray(table.mean_latency),
            "never_exits": np.asarray(table.never_exits),
        }
    )
    return Chart("class_accuracy", title, fig.build(), data)


def class_latency(
    table: Any,
    classes: Sequence[str],
    T_max: int,
    title: str = "Mean exit step by class (true label)",
) -> Chart:
    """Per class: the mean exit step, and how many of its samples never pass C (they run
    all T_max steps) in the hover."""
    names = [str(c) for c in classes]
    lat = np.asarray(table.mean_latency)
    never = np.asarray(table.never_exits)
    fig = FigureBuilder(
        go.Bar(
            x=[plotly_text(c) for c in names],
            y=lat,
            name="mean exit step",
            marker={"color": COLORS["front"]},
            customdata=np.stack([np.asarray(table.n), never], axis=1),
            hovertemplate="%{x}<br>mean exit step %{y:.2f}<br>%{customdata[0]} samples, "
            "%{customdata[1]} never exit early<extra></extra>",
        )
    )
    standard_layout(fig, title, "true label", "mean exit step")
    fig.update_layout(xaxis={"type": "category"}, yaxis={"range": [0, T_max * 1.02]}, bargap=0.25)
    data = pd.DataFrame(
        {"class": names, "n": np.asarray(table.n), "mean_exit_step": lat, "never_exits": never}
    )
    return Chart("class_latency", title, fig.build(), data)


def confusion_matrix(
    counts: np.ndarray,
    classes: Sequence[str],
    title: str = "Answers at exit: rows true label, columns answer",
) -> Chart:
    """Heatmap of counts[label, answer]; each cell's text is its count, the colour its share
    of the row (so a small class's mistakes show as clearly as a large one's)."""
    counts = np.asarray(counts, dtype=np.int64)
    names = [str(c) for c in classes]
    shown = [plotly_text(c) for c in names]
    rows = counts.sum(axis=1, keepdims=True)
    share = np.where(rows > 0, counts / np.maximum(rows, 1), 0.0)
    fig = FigureBuilder(
        go.Heatmap(
            z=100.0 * share,
            x=shown,
            y=shown,
            text=counts,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=100,
            showscale=False,  # the text gives the counts; a colour bar would need a margin
            hovertemplate="label %{y}<br>answer %{x}<br>%{text} samples (%{z:.1f} % of the "
            "label)<extra></extra>",
        )
    )
    standard_layout(fig, title, "answer at exit", "true label")
    fig.update_layout(
        xaxis={"type": "category", "side": "bottom", "constrain": "domain"},
        yaxis={
            "type": "category",
            "autorange": "reversed",
            "scaleanchor": "x",
            "constrain": "domain",
        },
    )
    K = len(names)
    data = pd.DataFrame(
        {
            "label": np.repeat(names, K),
            "answer": np.tile(names, K),
            "count": counts.reshape(-1),
            "share_of_label": share.reshape(-1),
        }
    )
    return Chart("confusion_at_exit", title, fig.build(), data)
