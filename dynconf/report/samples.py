"""Charts of one sample: its confidence against the threshold, its class probabilities, its image.

The probabilities come from ``dynconf.core.decoders.class_probabilities`` (what the chosen
decoder reads); these builders only draw them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dynconf.report.style import (
    COLORS,
    DASHES,
    SERIES,
    Chart,
    FigureBuilder,
    frame,
    plotly_text,
    standard_layout,
    time_steps,
)


def sample_confidence(
    confidence: Sequence[float],
    threshold: float,
    exit_step: int,
    correct: Sequence[bool] | None = None,
    title: str = "Confidence over time",
) -> Chart:
    """One sample's confidence c_t against the threshold, with its exit step marked."""
    c = np.asarray(confidence, dtype=float)
    steps = time_steps(len(c))
    fig = FigureBuilder()
    fig.add_trace(
        go.Scatter(
            x=steps,
            y=c,
            name="confidence",
            mode="lines+markers",
            line={"color": COLORS["policy"], "width": 2},
            hovertemplate="step %{x}<br>confidence %{y:.4f}<extra></extra>",
        )
    )
    data = frame("confidence", step=steps, confidence=c)
    if correct is not None:
        ok = np.asarray(correct, dtype=bool)
        data["correct"] = ok
        # Mark each step's correctness on the line so a late change of mind shows.
        fig.add_trace(
            go.Scatter(
                x=steps[~ok],
                y=c[~ok],
                name="prediction wrong at t",
                mode="markers",
                marker={"color": COLORS["wrong"], "size": 9, "symbol": "x"},
                hoverinfo="skip",
            )
        )
    fig.add_hline(
        y=threshold,
        line={"color": COLORS["current"], "dash": "dash"},
        annotation_text=f"threshold {threshold:.4g}",
        annotation_position="bottom right",
    )
    fig.add_vline(
        x=exit_step,
        line={"color": COLORS["baseline"], "dash": "dot"},
        annotation_text=f"exit at step {exit_step}",
        annotation_position="top left",
    )
    standard_layout(fig, title, "time step t", "confidence c_t")
    fig.update_layout(yaxis={"range": [0, 1.02]})
    return Chart("sample_confidence", title, fig.build(), data)


def sample_probabilities(
    probabilities: np.ndarray,
    classes: Sequence[str],
    label: int,
    top: int = 5,
    title: str = "Class probabilities over time",
) -> Chart:
    """p_t[k] over time for the ``top`` classes that ever score highest (label always in)."""
    p = np.asarray(probabilities, dtype=float)
    T, K = p.shape
    steps = time_steps(T)
    ranked = list(np.argsort(-p.max(axis=0), kind="stable"))
    keep = [int(label)] + [int(k) for k in ranked if int(k) != int(label)][: max(top - 1, 0)]
    fig = FigureBuilder()
    frames = []
    for i, k in enumerate(keep):
        name = f"{classes[k]} (label)" if k == label else str(classes[k])
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=p[:, k],
                name=name,
                mode="lines",
                line={
                    "color": SERIES[i % len(SERIES)],
                    "width": 3 if k == label else 1.8,
                    "dash": DASHES[i % len(DASHES)],
                },
                hovertemplate=plotly_text(classes[k])
                + "<br>step %{x}<br>p %{y:.4f}<extra></extra>",
            )
        )
        frames.append(frame(str(classes[k]), step=steps, probability=p[:, k], class_index=[k] * T))
    standard_layout(fig, title, "time step t", "probability")
    fig.update_layout(yaxis={"range": [0, 1.02]})
    return Chart("sample_probabilities", title, fig.build(), pd.concat(frames, ignore_index=True))


def sample_image(image: np.ndarray, caption: str, title: str = "Input image") -> Chart:
    """The input image (H x W grey or H x W x 3 uint8), drawn without smoothing."""
    img = np.asarray(image)
    if img.ndim == 2:
        fig = FigureBuilder(go.Heatmap(z=img[::-1], colorscale="gray_r", showscale=False))
        fig.update_layout(yaxis={"scaleanchor": "x"})
    else:
        fig = FigureBuilder(go.Image(z=img))
    standard_layout(fig, f"{title}: {caption}", "", "")
    fig.fit = False  # no axes: a layout of its own
    fig.update_layout(
        xaxis={"visible": False},
        yaxis={"visible": False},
        height=320,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    flat = img.reshape(img.shape[0], -1)
    return Chart("sample_image", title, fig.build(), pd.DataFrame(flat))
