"""Charts on the accuracy-latency plane: the explorer plane, the oracle bound, the compare overlay,
and the exit policies' chosen points and fronts.

x is the mean latency in time steps, y the accuracy in percent; the fixed-T baseline is the
reference in all three (a fixed T costs T steps), so a point above and left of it is a gain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dynconf.core.decoders import kappa_label
from dynconf.report.style import (
    COLORS,
    DASHES,
    OKABE_ITO,
    PLANE_AXES,
    SERIES,
    Chart,
    FigureBuilder,
    c_text,
    frame,
    percent,
    plotly_text,
    standard_layout,
    time_steps,
)
from dynconf.report.traces import (
    PLANE_HOVER,
    baseline_trace,
    capped_trace,
    current_point,
    front_points,
    front_trace,
    oracle_trace,
    star,
)

# One colour and marker shape per policy, in registry order: the series colours without the
# baseline's black and the oracle's vermillion, which the policy charts draw as well.
POLICY_COLORS = [c for c in SERIES if c not in (COLORS["baseline"], COLORS["oracle"])]
POLICY_SYMBOLS = ("star", "diamond", "square", "triangle-up", "circle", "x", "cross", "pentagon")


def _curve_frame(series: str, curve: Any) -> pd.DataFrame:
    caps = time_steps(len(curve.latency))
    return frame(series, mean_latency=curve.latency, accuracy=curve.accuracy, cap=caps)


def _current_frame(current: Any) -> pd.DataFrame:
    return frame(
        "current",
        mean_latency=[current.mean_latency],
        accuracy=[current.accuracy],
        threshold=[current.threshold],
    )


def accuracy_latency(
    baseline: Sequence[float],
    current: Any,
    capped: Any | None = None,
    oracle: Any | None = None,
    sweep: Any | None = None,
    title: str = "Accuracy vs mean latency",
) -> Chart:
    """The accuracy-latency plane of the threshold explorer.

    ``baseline`` is the fixed-T accuracy for t = 1..T (``metrics.baseline_curve``);
    ``current`` a PolicyResult; ``capped`` and ``oracle`` Curves over caps 1..T; ``sweep`` a
    Sweep whose ``on_front`` points are drawn as the Pareto front.
    """
    base = np.asarray(baseline, dtype=float)
    steps = time_steps(len(base))
    fig = FigureBuilder(baseline_trace(base))
    frames = [frame("baseline", mean_latency=steps, accuracy=base, step=steps)]
    if sweep is not None:
        fig.add_trace(front_trace(sweep, name="Pareto front (threshold sweep)"))
        frames.append(
            frame(
                "sweep",
                mean_latency=np.asarray(sweep.mean_latency),
                accuracy=np.asarray(sweep.accuracy),
                threshold=np.asarray(sweep.thresholds),
                on_front=np.asarray(sweep.on_front, dtype=bool),
            )
        )
    if capped is not None:
        fig.add_trace(capped_trace(capped, f"policy, capped (C = {c_text(current.threshold)})"))
        frames.append(_curve_frame("policy_capped", capped))
    if oracle is not None:
        fig.add_trace(oracle_trace(oracle, "oracle (upper bound)"))
        frames.append(_curve_frame("oracle", oracle))
    fig.add_trace(current_point(current, "current threshold"))
    frames.append(_current_frame(current))
    standard_layout(fig, title, *PLANE_AXES, legend_below=True)
    return Chart("accuracy_latency", title, fig.build(), pd.concat(frames, ignore_index=True))


def oracle_bound(
    baseline: Sequence[float],
    oracles: Mapping[str, Any],
    policy: Any | None = None,
    current: Any | None = None,
    title: str = "Upper bound of dynamic exit (paper Fig. 1)",
) -> Chart:
    """The paper's Figure 1: fixed-T baseline (black) against oracle curves (red family).

    ``oracles`` maps a label to a Curve over caps 1..T; the first is drawn solid red, the
    others dashed in other colours so that several variants can be compared.
    """
    base = np.asarray(baseline, dtype=float)
    steps = time_steps(len(base))
    fig = FigureBuilder(baseline_trace(base))
    frames = [frame("baseline", mean_latency=steps, accuracy=base, cap=steps)]
    other = [OKABE_ITO["reddish_purple"], OKABE_ITO["orange"], OKABE_ITO["sky_blue"]]
    for i, (label, curve) in enumerate(oracles.items()):
        color = COLORS["oracle"] if i == 0 else other[(i - 1) % len(other)]
        fig.add_trace(
            go.Scatter(
                x=np.asarray(curve.latency),
                y=percent(curve.accuracy),
                customdata=time_steps(len(curve.latency)),
                name=label,
                mode="lines+markers",
                line={"color": color, "width": 2, "dash": DASHES[i % len(DASHES)]},
                marker={"size": 4},
                hovertemplate="cap %{customdata}<br>mean steps %{x:.2f}"
                f"<br>accuracy %{{y:.2f}} %<extra>{plotly_text(label)}</extra>",
            )
        )
        frames.append(_curve_frame(label, curve))
    if policy is not None:
        fig.add_trace(capped_trace(policy, "Dynamic Confidence (capped)"))
        frames.append(_curve_frame("policy_capped", policy))
    if current is not None:
        fig.add_trace(current_point(current, f"current (C = {c_text(current.threshold)})"))
        frames.append(_current_frame(current))
    standard_layout(fig, title, "mean time steps", "accuracy (%)", legend_below=True)
    return Chart("oracle_bound", title, fig.build(), pd.concat(frames, ignore_index=True))


# Marker shapes of the compare overlay: with colour and dash they tell 10+ entries apart.
COMPARE_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "triangle-down",
                   "pentagon", "star", "hexagon")  # fmt: skip


def compare_label(run: str, split: str, decoder: str, kappa: float | None, T_max: int) -> str:
    """An entry's name on the compare chart: run, split, decoder and, for the decoders that
    take one, its kappa ("cifar10/test · paper (kappa = T_max = 64)")."""
    kap = kappa_label(decoder, kappa, T_max)
    return f"{run}/{split} · {decoder}" + (f" ({kap})" if kap else "")


def compare_style(i: int) -> dict[str, str]:
    """Colour, dash and marker of entry ``i``: the colour cycles fastest, the dash after every
    colour has been used, the marker with every entry, so no two of the first 40 match."""
    colors = [c for c in SERIES if c != COLORS["baseline"]]
    return {
        "color": colors[i % len(colors)],
        "dash": DASHES[(i // len(colors)) % len(DASHES)],
        "symbol": COMPARE_SYMBOLS[i % len(COMPARE_SYMBOLS)],
    }


def compare(entries: Sequence[Any], title: str = "Runs and decoders compared") -> Chart:
    """Overlay of Pareto fronts, one style (colour + dash + marker) per entry, against the
    fixed-T baselines (black, one per distinct baseline: the decoders of one run share it).

    ``entries`` are ``dynconf.core.compare.CompareEntry`` (label, baseline, sweep); a label
    made by :func:`compare_label` names the decoder's kappa.
    """
    fig = FigureBuilder()
    frames = []
    baselines: list[tuple[np.ndarray, list[str]]] = []
    for e in entries:
        base = np.asarray(e.baseline, dtype=float)
        for arr, labels in baselines:
            if arr.shape == base.shape and np.array_equal(arr, base):
                labels.append(e.label)
                break
        else:
            baselines.append((base, [e.label]))
    for j, (base, labels) in enumerate(baselines):
        run = labels[0].split(" · ")[0]
        fig.add_trace(
            baseline_trace(
                base,
                name=f"{run}: baseline (fixed T)" if len(baselines) > 1 else "baseline (fixed T)",
                markers=False,
                dash=DASHES[j % len(DASHES)],
                hover_name=f"{run} baseline",
            )
        )
        frames.append(frame(f"{run} baseline", mean_latency=time_steps(len(base)), accuracy=base))
    for i, e in enumerate(entries):
        style = compare_style(i)
        fig.add_trace(
            front_trace(
                e.sweep,
                name=str(e.label),
                color=style["color"],
                dash=style["dash"],
                symbol=style["symbol"],
                hover_name=e.label,
            )
        )
        lat, acc, thr = front_points(e.sweep)
        frames.append(frame(f"{e.label} front", mean_latency=lat, accuracy=acc, threshold=thr))
    standard_layout(fig, title, *PLANE_AXES, legend_below=True)
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return Chart("compare", title, fig.build(), data)


def _add_policy(fig: FigureBuilder, i: int, item: Any) -> list[pd.DataFrame]:
    """One policy on the fronts chart: its front (a line) and its chosen point (a marker in
    the same colour, the policy's one legend entry); returns their table rows."""
    color, name = POLICY_COLORS[i % len(POLICY_COLORS)], str(item.name)
    lat, acc, params = item.front()
    fig.add_trace(
        go.Scatter(
            x=lat,
            y=percent(acc),
            text=[plotly_text(p) for p in params],
            name=f"{name}: front",
            legendgroup=name,
            showlegend=False,  # one legend entry per policy: its chosen point's marker
            mode="lines",
            line={"color": color, "width": 2},
            hovertemplate=f"%{{text}}<br>{PLANE_HOVER}<extra>{plotly_text(name)}</extra>",
        )
    )
    chosen = item.fit.test
    fig.add_trace(
        star(
            chosen.mean_latency,
            100.0 * chosen.accuracy,
            name,
            f"{plotly_text(item.fit.description)}<br>{PLANE_HOVER}"
            f"<extra>{plotly_text(name)} (chosen)</extra>",
            color=color,
            symbol=POLICY_SYMBOLS[i % len(POLICY_SYMBOLS)],
        )
    )
    fig.traces[-1].legendgroup = name
    n = len(lat)
    return [
        frame(f"{name} front", policy=[name] * n, kind=["front"] * n, mean_latency=lat,
              accuracy=acc, params=list(params)),
        frame(f"{name} chosen", policy=[name], kind=["chosen"],
              mean_latency=[chosen.mean_latency], accuracy=[chosen.accuracy],
              params=[item.fit.description]),
    ]  # fmt: skip


def _markers_on_top(fig: FigureBuilder, first: int) -> None:
    """Draw every front line first and the chosen markers over them, the first policy's
    (the threshold rule's star) last, so a marker at the same point as another's (patience
    often chooses the threshold rule's very point) stays visible; the legend keeps the
    policies' order."""
    added = fig.traces[first:]
    lines = [t for t in added if t.mode == "lines"]
    markers = [t for t in added if t.mode != "lines"]
    for rank, marker in enumerate(markers):
        marker.legendrank = 1000 + rank
    fig.traces[first:] = [*lines, *reversed(markers)]


def policy_fronts(
    baseline: Sequence[float],
    fronts: Sequence[Any],
    oracle: Any | None = None,
    title: str = "Exit policies: fronts on the evaluation split",
) -> Chart:
    """Every policy's Pareto front over its calibration candidates on the evaluation split
    (one line each) and the point chosen on calibration (a marker in the same colour),
    against the fixed-T baseline and the oracle curve.

    ``fronts``: ``dynconf.core.policies.comparison.PolicyFront`` (``name``, ``front()``, and
    ``fit`` with its ``test`` PolicyResult and ``description``). The table holds each drawn
    point: series, policy, kind ("front" or "chosen"), mean_latency, accuracy, params.
    """
    base = np.asarray(baseline, dtype=float)
    fig = FigureBuilder(baseline_trace(base))
    frames = [frame("baseline", mean_latency=time_steps(len(base)), accuracy=base)]
    if oracle is not None:
        fig.add_trace(oracle_trace(oracle, "oracle, stays correct"))
        frames.append(_curve_frame("oracle", oracle))
    first = len(fig.traces)
    for i, item in enumerate(fronts):
        frames.extend(_add_policy(fig, i, item))
    _markers_on_top(fig, first)
    # Two key entries say what line and marker mean, instead of two entries per policy.
    grey = "#777777"
    fig.add_trace(
        go.Scatter(x=[None], y=[None], mode="lines", line={"color": grey, "width": 2},
                   name="line: its front on this split", hoverinfo="skip")
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=[None], y=[None], mode="markers", name="marker: chosen on calibration",
                   marker={"color": grey, "size": 10, "symbol": "circle"}, hoverinfo="skip")
    )  # fmt: skip
    standard_layout(fig, title, *PLANE_AXES, legend_below=True)
    return Chart("policy_fronts", title, fig.build(), pd.concat(frames, ignore_index=True))
