"""The run overview chart: SNN accuracy at fixed simulation lengths T, against the ANN's.

Read from the run's meta.json (what the simulation recorded), not from the outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from dynconf.core.formatting import pct
from dynconf.report.style import COLORS, Chart, FigureBuilder, frame, standard_layout
from dynconf.report.traces import baseline_trace


def accuracy_by_T(
    meta: Mapping[str, Any],
    split: str | None = None,
    title: str = "Accuracy by simulation length",
) -> Chart | None:
    """SNN accuracy at fixed T as recorded in the run's meta, against the ANN's accuracy.

    Accepts both a flat ``{"1": acc, ...}`` / number and per-split ``{split: ...}`` values.
    Returns None when the meta holds neither.
    """
    by_t = meta.get("snn_accuracy_by_T") or {}
    if by_t and all(isinstance(v, Mapping) for v in by_t.values()):  # per split
        by_t = by_t.get(split) or by_t.get("test") or {}
    ann = meta.get("ann_accuracy")
    if isinstance(ann, Mapping):
        ann = ann.get(split, ann.get("test"))
    if not by_t and ann is None:
        return None
    items = sorted((int(k), float(v)) for k, v in by_t.items())
    ts = np.asarray([t for t, _ in items], dtype=int)
    accs = np.asarray([a for _, a in items], dtype=float)
    if split:
        title = f"{title} ({split})"
    fig = FigureBuilder()
    frames = []
    if len(ts):
        fig.add_trace(baseline_trace(accs, name="SNN", steps=ts, hover_name="SNN"))
        frames.append(frame("snn", T=ts, accuracy=accs))
    if ann is not None:
        fig.add_hline(
            y=100.0 * float(ann),
            line={"color": COLORS["policy"], "dash": "dash"},
            annotation_text=f"ANN {pct(float(ann))}",
            annotation_position="bottom right",
        )
        frames.append(frame("ann", T=[np.nan], accuracy=[float(ann)]))
    standard_layout(fig, title, "time steps T", "accuracy (%)")
    return Chart("accuracy_by_T", title, fig.build(), pd.concat(frames, ignore_index=True))
