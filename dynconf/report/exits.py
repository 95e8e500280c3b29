"""Charts of when samples exit: the exit-step histogram and one point per sample.

Both read a PolicyResult's per-sample exit steps and correctness; the scatter is also the
Samples page's picker (a click on a point chooses that sample).
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
    plotly_text,
    standard_layout,
    time_steps,
)


def exit_histogram(result: Any, T: int, title: str = "Exit steps") -> Chart:
    """How many samples exit at each step, correct and wrong stacked."""
    steps = np.asarray(result.exit_steps, dtype=int)
    correct = np.asarray(result.correct, dtype=bool)
    n_ok = np.bincount(steps[correct], minlength=T + 1)[1 : T + 1]
    n_bad = np.bincount(steps[~correct], minlength=T + 1)[1 : T + 1]
    x = time_steps(T)
    fig = FigureBuilder()
    for counts, name in ((n_ok, "correct"), (n_bad, "wrong")):
        fig.add_trace(
            go.Bar(
                x=x,
                y=counts,
                name=name,
                marker={"color": COLORS[name]},
                hovertemplate=f"step %{{x}}<br>%{{y}} {name}<extra></extra>",
            )
        )
    fig.add_vline(
        x=result.mean_latency,
        line={"color": COLORS["current"], "dash": "dash"},
        annotation_text=f"mean {result.mean_latency:.2f}",
        # On the side with room: past the middle the label goes left of the line.
        annotation_position="top left" if result.mean_latency > 0.6 * T else "top right",
    )
    standard_layout(fig, title, "exit step", "samples", barmode="stack", bargap=0.1)
    fig.update_layout(legend={"traceorder": "normal"})  # correct first, as stacked
    data = pd.DataFrame({"step": x, "correct": n_ok, "wrong": n_bad, "total": n_ok + n_bad})
    return Chart("exit_histogram", title, fig.build(), data)


def exit_scatter(
    result: Any,
    labels: Sequence[int],
    ids: Sequence[int] | None,
    classes: Sequence[str],
    title: str = "Exit step of every sample",
) -> Chart:
    """One WebGL point per sample: x the sample id, y its exit step.

    A small fixed vertical jitter spreads points that share a step so the density shows;
    the hover gives the exact step. ``customdata`` is numeric (position in the split, id,
    exit step) so it travels as a compact binary array -- a column of class-name strings
    made every slider move ~10x slower to serialise at 10k samples; the names go in
    ``text``. The app turns a click into a sample choice through column 0.
    """
    steps = np.asarray(result.exit_steps, dtype=np.int64)
    correct = np.asarray(result.correct, dtype=bool)
    pred = np.asarray(result.predictions, dtype=int)
    labels = np.asarray(labels, dtype=int)
    n = len(steps)
    ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    names = np.asarray([str(c) for c in classes], dtype=str)
    shown = np.asarray([plotly_text(c) for c in names], dtype=str)  # for the hover's markup
    hover = np.char.add(
        np.char.add("answer ", shown[pred]), np.char.add("<br>label ", shown[labels])
    )
    jitter = np.random.default_rng(0).uniform(-0.3, 0.3, n)
    fig = FigureBuilder()
    for ok, name, symbol in ((True, "correct", "circle"), (False, "wrong", "x")):
        m = correct == ok
        pos = np.flatnonzero(m)
        fig.add_trace(
            go.Scattergl(
                x=ids[m],
                y=(steps[m] + jitter[m]).astype(np.float32),
                mode="markers",
                name=f"{name} ({m.sum()})",
                marker={"color": COLORS[name], "size": 5, "symbol": symbol, "opacity": 0.7},
                customdata=np.stack([pos, ids[m], steps[m]], axis=1),
                text=hover[m].tolist(),
                hovertemplate="id %{customdata[1]}<br>exit step %{customdata[2]}<br>%{text}"
                "<extra></extra>",
            )
        )
    top = int(steps.max()) if n else 1
    # No dragmode: Streamlit then selects on click.
    standard_layout(fig, title, "sample id", "exit step")
    # Integer steps on the axis although points are jittered around them.
    fig.update_layout(yaxis={"range": [0.5, top + 0.5], "tick0": 1, "dtick": max(1, -(-top // 10))})
    data = pd.DataFrame(
        {
            "position": np.arange(n),
            "id": ids,
            "exit_step": steps,
            "answer": names[pred],
            "label": names[labels],
            "correct": correct,
        }
    )
    return Chart("exit_scatter", title, fig.build(), data)
