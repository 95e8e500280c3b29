"""Charts over the threshold C: the accuracy/latency response and the calibration selection.

``threshold_response`` reads a sweep along C (two y axes); ``pareto_selection`` shows how a
threshold was chosen on the calibration split (docs/METHOD.md section 4) and what it gave on test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dynconf.report.style import (
    COLORS,
    PLANE_AXES,
    Chart,
    FigureBuilder,
    frame,
    percent,
    standard_layout,
)
from dynconf.report.traces import PLANE_HOVER, current_point, front_trace, star


def threshold_response(
    sweep: Any,
    current: Any,
    title: str = "Accuracy and latency vs threshold",
    band: tuple[float, float] | None = None,
) -> Chart:
    """Accuracy (left axis) and mean latency (right axis) over the sweep's thresholds.

    ``band`` (a selection's robust band) is shaded when given.
    """
    thr = np.asarray(sweep.thresholds, dtype=float)
    acc, lat = np.asarray(sweep.accuracy, dtype=float), np.asarray(sweep.mean_latency)
    fig = FigureBuilder()
    fig.add_trace(
        go.Scatter(
            x=thr,
            y=percent(acc),
            name="accuracy",
            mode="lines",
            line={"color": COLORS["policy"], "width": 2},
            hovertemplate="threshold %{x:.4f}<br>accuracy %{y:.2f} %<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=thr,
            y=lat,
            name="mean latency",
            mode="lines",
            yaxis="y2",
            line={"color": COLORS["front"], "width": 2, "dash": "dash"},
            hovertemplate="threshold %{x:.4f}<br>latency %{y:.2f}<extra></extra>",
        )
    )
    fig.add_trace(
        star(
            current.threshold,
            100.0 * current.accuracy,
            "current",
            "threshold %{x:.4f}<br>accuracy %{y:.2f} %<extra>current</extra>",
        )
    )
    fig.add_vline(x=current.threshold, line={"color": COLORS["current"], "dash": "dot"})
    if band is not None:
        fig.add_vrect(band[0], band[1], COLORS["band"], text="robust band")
    standard_layout(
        fig,
        title,
        "threshold C",
        "accuracy (%)",
        yaxis2={
            "title": "mean latency (steps)",
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "rangemode": "tozero",
            "tickmode": "auto",
        },
    )
    fig.update_layout(margin={"r": 60})
    data = pd.concat(
        [
            frame("sweep", threshold=thr, accuracy=acc, mean_latency=lat),
            frame(
                "current",
                threshold=[current.threshold],
                accuracy=[current.accuracy],
                mean_latency=[current.mean_latency],
            ),
        ],
        ignore_index=True,
    )
    return Chart("threshold_response", title, fig.build(), data)


def _selection_table(selection, thr, lat, acc, front, in_band) -> pd.DataFrame:
    """The selection chart's table: the sweep, and the chosen C on calibration and test."""
    cal, test = selection.calibration, selection.test
    return pd.concat(
        [
            frame("sweep", threshold=thr, mean_latency=lat, accuracy=acc, on_front=front,
                  in_band=in_band),
            frame("chosen_calibration", threshold=[selection.threshold],
                  mean_latency=[cal.mean_latency], accuracy=[cal.accuracy]),
            frame("chosen_test", threshold=[selection.threshold],
                  mean_latency=[test.mean_latency], accuracy=[test.accuracy]),
        ],
        ignore_index=True,
    )  # fmt: skip


def pareto_selection(
    selection: Any, baseline_accuracy: float | None = None, title: str | None = None
) -> Chart:
    """Calibration sweep, its Pareto front, the robust band and the chosen threshold.

    The chosen threshold's test result is drawn too (green), so that the gap between what
    calibration promised and what test delivered is visible.
    """
    sw = selection.sweep
    thr = np.asarray(sw.thresholds, dtype=float)
    acc, lat = np.asarray(sw.accuracy, dtype=float), np.asarray(sw.mean_latency, dtype=float)
    front = np.asarray(sw.on_front, dtype=bool)
    lo, hi = selection.band
    in_band = (thr >= lo) & (thr <= hi)
    title = title or "Threshold selection on the calibration split"
    fig = FigureBuilder()
    # The robust band first, under everything: a wide translucent stroke along the sweep
    # points whose C lies in the band (latency grows with C, so they form one stretch of
    # the curve) -- a range, not hundreds of rings hiding the baseline and its label.
    order = np.argsort(thr, kind="stable")
    band_idx = order[in_band[order]]
    fig.add_trace(
        go.Scatter(
            x=lat[band_idx],
            y=percent(acc[band_idx]),
            customdata=thr[band_idx],
            name=f"robust band C in [{lo:.4g}, {hi:.4g}]",
            mode="lines",
            line={"color": "rgba(240,228,66,0.75)", "width": 12},
            hovertemplate="threshold %{customdata:.4f}<extra>band</extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=lat[order],
            y=percent(acc[order]),
            customdata=thr[order],
            name="sweep (calibration)",
            mode="lines",
            line={"color": COLORS["sweep"], "width": 1.5},
            hovertemplate=f"threshold %{{customdata:.4f}}<br>{PLANE_HOVER}<extra>sweep</extra>",
        )
    )
    fig.add_trace(front_trace(sw))
    cal, test = selection.calibration, selection.test
    fig.add_trace(current_point(cal, f"chosen (calibration): C = {selection.threshold:.4g}"))
    fig.add_trace(
        current_point(
            test,
            f"chosen, on test: C = {selection.threshold:.4g}",
            color=COLORS["test"],
            symbol="star-diamond",
        )
    )
    if baseline_accuracy is not None:
        # A line across the plot named in the legend: a label on the plot would sit on the
        # curves, which approach the baseline from below.
        fig.add_trace(
            go.Scatter(
                x=[float(lat.min()), float(lat.max())],
                y=[100.0 * baseline_accuracy] * 2,
                name="baseline at T_max (calibration)",
                mode="lines",
                line={"color": COLORS["baseline"], "dash": "dot", "width": 1.5},
                hovertemplate="baseline at T_max %{y:.2f} %<extra></extra>",
            )
        )
    standard_layout(fig, title, *PLANE_AXES, legend_below=True)
    data = _selection_table(selection, thr, lat, acc, front, in_band)
    return Chart("pareto_selection", title, fig.build(), data)
