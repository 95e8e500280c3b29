"""Every Plotly figure of dynconf, shared by the Streamlit app and ``dynconf export``.

Each builder takes numbers already computed by ``dynconf.core.metrics`` (it computes nothing of
its own beyond counting and reshaping) and returns a :class:`Chart`: the figure plus the
exact numbers it draws as a tidy table, so that a CSV download always matches its picture
and the app and the command-line export can never drift apart.

Colours are the Okabe-Ito palette (safe for the common colour-vision deficiencies); where
two series must be told apart in a scatter, marker symbols differ as well as colours.
No Streamlit import here: the CLI uses this module headless.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

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

# Size used for static export; the app lets the figure stretch to the column width.
EXPORT_WIDTH = 760
EXPORT_HEIGHT = 480


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


# Charts with many series (the accuracy-latency planes) carry their legend under the x axis,
# where it can never hide data; the others a one-row legend between title and plot.
LEGEND_BELOW = {"orientation": "h", "x": 0, "xanchor": "left", "y": -0.2, "yanchor": "top"}
LEGEND_TOP = {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "xanchor": "left"}


# A small template of our own instead of "plotly_white": assigning a named template makes
# Plotly deep-copy and validate the whole template, which cost ~30 ms per figure and most of a
# slider move's server time.
TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": "Arial, Helvetica, sans-serif", "size": 13, "color": "#2a3f5f"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "xaxis": {"gridcolor": "#EBF0F8", "linecolor": "#EBF0F8", "zeroline": False},
        "yaxis": {"gridcolor": "#EBF0F8", "linecolor": "#EBF0F8", "zeroline": False},
        "hoverlabel": {"align": "left"},
    }
)


def _merge(into: dict, new: Mapping) -> dict:
    for k, v in new.items():
        if isinstance(v, Mapping) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = dict(v) if isinstance(v, Mapping) else v
    return into


class _Builder:
    """Collects traces, shapes and layout as plain data; validates once in :meth:`build`.

    Plotly validates every ``update_layout``/``add_vline`` call separately (~30 ms each);
    building the figure in one go keeps a slider move's redraw cheap.
    """

    def __init__(self, *traces: Any) -> None:
        self.traces: list[Any] = list(traces)
        self.layout: dict[str, Any] = {"template": TEMPLATE, "shapes": [], "annotations": []}

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
        return go.Figure(data=self.traces, layout=self.layout)


def _layout(
    fig: _Builder,
    title: str,
    xaxis: str,
    yaxis: str,
    legend_below: bool = False,
    **extra: Any,
) -> _Builder:
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left", "y": 0.98, "yanchor": "top"},
        xaxis={"title": {"text": xaxis}},
        yaxis={"title": {"text": yaxis}},
        legend=LEGEND_BELOW if legend_below else LEGEND_TOP,
        margin={
            "l": 60,
            "r": 20,
            "t": 50 if legend_below else 85,
            "b": 130 if legend_below else 55,
        },
        height=EXPORT_HEIGHT + (60 if legend_below else 0),
        hovermode="closest",
        **extra,
    )
    return fig


def _frame(series: str, **columns: Any) -> pd.DataFrame:
    cols = {k: np.asarray(v) for k, v in columns.items()}
    n = len(next(iter(cols.values())))
    return pd.DataFrame({"series": [series] * n, **cols})


def _steps(T: int) -> np.ndarray:
    return np.arange(1, T + 1)


def _pct(a: Any) -> np.ndarray:
    return 100.0 * np.asarray(a, dtype=float)


# --------------------------------------------------------------------------- accuracy vs latency


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
    fig = _Builder()
    frames = []
    base = np.asarray(baseline, dtype=float)
    steps = _steps(len(base))
    fig.add_trace(
        go.Scatter(
            x=steps,
            y=_pct(base),
            name="baseline (fixed T)",
            mode="lines+markers",
            line={"color": COLORS["baseline"], "width": 2},
            marker={"size": 5},
            hovertemplate="T = %{x}<br>accuracy %{y:.2f} %<extra>baseline</extra>",
        )
    )
    frames.append(_frame("baseline", mean_latency=steps, accuracy=base, step=steps))
    if sweep is not None:
        lat, acc = np.asarray(sweep.mean_latency), np.asarray(sweep.accuracy)
        thr, front = np.asarray(sweep.thresholds), np.asarray(sweep.on_front, dtype=bool)
        order = np.argsort(lat[front], kind="stable")
        fig.add_trace(
            go.Scatter(
                x=lat[front][order],
                y=_pct(acc[front][order]),
                customdata=thr[front][order],
                name="Pareto front (threshold sweep)",
                mode="lines+markers",
                line={"color": COLORS["front"], "width": 1.5},
                marker={"size": 5, "symbol": "diamond"},
                hovertemplate="threshold %{customdata:.4f}<br>latency %{x:.2f}"
                "<br>accuracy %{y:.2f} %<extra>front</extra>",
            )
        )
        frames.append(
            _frame("sweep", mean_latency=lat, accuracy=acc, threshold=thr, on_front=front)
        )
    if capped is not None:
        fig.add_trace(
            go.Scatter(
                x=np.asarray(capped.latency),
                y=_pct(capped.accuracy),
                customdata=steps[: len(capped.latency)],
                name=f"policy, capped (C = {current.threshold:.4g})",
                mode="lines",
                line={"color": COLORS["policy"], "width": 2, "dash": "dash"},
                hovertemplate="cap %{customdata}<br>latency %{x:.2f}"
                "<br>accuracy %{y:.2f} %<extra>policy</extra>",
            )
        )
        frames.append(
            _frame(
                "policy_capped",
                mean_latency=capped.latency,
                accuracy=capped.accuracy,
                cap=steps[: len(capped.latency)],
            )
        )
    if oracle is not None:
        fig.add_trace(
            go.Scatter(
                x=np.asarray(oracle.latency),
                y=_pct(oracle.accuracy),
                customdata=steps[: len(oracle.latency)],
                name="oracle (upper bound)",
                mode="lines",
                line={"color": COLORS["oracle"], "width": 2},
                hovertemplate="cap %{customdata}<br>latency %{x:.2f}"
                "<br>accuracy %{y:.2f} %<extra>oracle</extra>",
            )
        )
        frames.append(
            _frame(
                "oracle",
                mean_latency=oracle.latency,
                accuracy=oracle.accuracy,
                cap=steps[: len(oracle.latency)],
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[current.mean_latency],
            y=[100.0 * current.accuracy],
            name="current threshold",
            mode="markers",
            marker={
                "color": COLORS["current"],
                "size": 15,
                "symbol": "star",
                "line": {"color": "black", "width": 1},
            },
            hovertemplate=f"threshold {current.threshold:.4f}<br>latency %{{x:.2f}}"
            "<br>accuracy %{y:.2f} %<extra>current</extra>",
        )
    )
    frames.append(
        _frame(
            "current",
            mean_latency=[current.mean_latency],
            accuracy=[current.accuracy],
            threshold=[current.threshold],
        )
    )
    _layout(fig, title, "mean latency (time steps)", "accuracy (%)", legend_below=True)
    return Chart("accuracy_latency", title, fig.build(), pd.concat(frames, ignore_index=True))


# --------------------------------------------------------------------------- exit steps


def exit_histogram(result: Any, T: int, title: str = "Exit steps") -> Chart:
    """How many samples exit at each step, correct and wrong stacked."""
    steps = np.asarray(result.exit_steps, dtype=int)
    correct = np.asarray(result.correct, dtype=bool)
    n_ok = np.bincount(steps[correct], minlength=T + 1)[1 : T + 1]
    n_bad = np.bincount(steps[~correct], minlength=T + 1)[1 : T + 1]
    x = _steps(T)
    fig = _Builder()
    fig.add_trace(
        go.Bar(
            x=x,
            y=n_ok,
            name="correct",
            marker={"color": COLORS["correct"]},
            hovertemplate="step %{x}<br>%{y} correct<extra></extra>",
        )
    )
    fig.add_trace(
        go.Bar(
            x=x,
            y=n_bad,
            name="wrong",
            marker={"color": COLORS["wrong"]},
            hovertemplate="step %{x}<br>%{y} wrong<extra></extra>",
        )
    )
    fig.add_vline(
        x=result.mean_latency,
        line={"color": COLORS["current"], "dash": "dash"},
        annotation_text=f"mean {result.mean_latency:.2f}",
        annotation_position="top right",
    )
    _layout(fig, title, "exit step", "samples", barmode="stack", bargap=0.1)
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
    hover = np.char.add(
        np.char.add("answer ", names[pred]), np.char.add("<br>label ", names[labels])
    )
    jitter = np.random.default_rng(0).uniform(-0.3, 0.3, n)
    fig = _Builder()
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
    _layout(fig, title, "sample id", "exit step")  # no dragmode: Streamlit then selects on click
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


# --------------------------------------------------------------------------- threshold response


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
    fig = _Builder()
    fig.add_trace(
        go.Scatter(
            x=thr,
            y=_pct(acc),
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
        go.Scatter(
            x=[current.threshold],
            y=[100.0 * current.accuracy],
            name="current",
            mode="markers",
            marker={"color": COLORS["current"], "size": 13, "symbol": "star"},
            hovertemplate="threshold %{x:.4f}<br>accuracy %{y:.2f} %<extra>current</extra>",
        )
    )
    fig.add_vline(x=current.threshold, line={"color": COLORS["current"], "dash": "dot"})
    if band is not None:
        fig.add_vrect(band[0], band[1], COLORS["band"], text="robust band")
    _layout(
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
            _frame("sweep", threshold=thr, accuracy=acc, mean_latency=lat),
            _frame(
                "current",
                threshold=[current.threshold],
                accuracy=[current.accuracy],
                mean_latency=[current.mean_latency],
            ),
        ],
        ignore_index=True,
    )
    return Chart("threshold_response", title, fig.build(), data)


# --------------------------------------------------------------------------- oracle


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
    steps = _steps(len(base))
    fig = _Builder()
    fig.add_trace(
        go.Scatter(
            x=steps,
            y=_pct(base),
            name="baseline (fixed T)",
            mode="lines+markers",
            line={"color": COLORS["baseline"], "width": 2},
            marker={"size": 5},
            hovertemplate="T = %{x}<br>accuracy %{y:.2f} %<extra>baseline</extra>",
        )
    )
    frames = [_frame("baseline", mean_latency=steps, accuracy=base, cap=steps)]
    other = [OKABE_ITO["reddish_purple"], OKABE_ITO["orange"], OKABE_ITO["sky_blue"]]
    for i, (label, curve) in enumerate(oracles.items()):
        color = COLORS["oracle"] if i == 0 else other[(i - 1) % len(other)]
        caps = steps[: len(curve.latency)]
        fig.add_trace(
            go.Scatter(
                x=np.asarray(curve.latency),
                y=_pct(curve.accuracy),
                customdata=caps,
                name=label,
                mode="lines+markers",
                line={"color": color, "width": 2, "dash": DASHES[i % len(DASHES)]},
                marker={"size": 4},
                hovertemplate="cap %{customdata}<br>mean steps %{x:.2f}"
                f"<br>accuracy %{{y:.2f}} %<extra>{label}</extra>",
            )
        )
        frames.append(_frame(label, mean_latency=curve.latency, accuracy=curve.accuracy, cap=caps))
    if policy is not None:
        caps = steps[: len(policy.latency)]
        fig.add_trace(
            go.Scatter(
                x=np.asarray(policy.latency),
                y=_pct(policy.accuracy),
                customdata=caps,
                name="Dynamic Confidence (capped)",
                mode="lines",
                line={"color": COLORS["policy"], "width": 2, "dash": "dash"},
                hovertemplate="cap %{customdata}<br>latency %{x:.2f}"
                "<br>accuracy %{y:.2f} %<extra>policy</extra>",
            )
        )
        frames.append(
            _frame("policy_capped", mean_latency=policy.latency, accuracy=policy.accuracy, cap=caps)
        )
    if current is not None:
        fig.add_trace(
            go.Scatter(
                x=[current.mean_latency],
                y=[100.0 * current.accuracy],
                name=f"current (C = {current.threshold:.4g})",
                mode="markers",
                marker={"color": COLORS["current"], "size": 14, "symbol": "star"},
                hovertemplate="latency %{x:.2f}<br>accuracy %{y:.2f} %<extra>current</extra>",
            )
        )
        frames.append(
            _frame(
                "current",
                mean_latency=[current.mean_latency],
                accuracy=[current.accuracy],
                threshold=[current.threshold],
            )
        )
    _layout(fig, title, "mean time steps", "accuracy (%)", legend_below=True)
    return Chart("oracle_bound", title, fig.build(), pd.concat(frames, ignore_index=True))


# --------------------------------------------------------------------------- threshold selection


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
    fig = _Builder()
    fig.add_trace(
        go.Scatter(
            x=lat,
            y=_pct(acc),
            customdata=thr,
            name="sweep (calibration)",
            mode="markers",
            marker={"color": COLORS["sweep"], "size": 6, "opacity": 0.6},
            hovertemplate="threshold %{customdata:.4f}<br>latency %{x:.2f}"
            "<br>accuracy %{y:.2f} %<extra>sweep</extra>",
        )
    )
    order = np.argsort(lat[front], kind="stable")
    fig.add_trace(
        go.Scatter(
            x=lat[front][order],
            y=_pct(acc[front][order]),
            customdata=thr[front][order],
            name="Pareto front",
            mode="lines+markers",
            line={"color": COLORS["front"], "width": 2},
            marker={"size": 6, "symbol": "diamond"},
            hovertemplate="threshold %{customdata:.4f}<br>latency %{x:.2f}"
            "<br>accuracy %{y:.2f} %<extra>front</extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=lat[in_band],
            y=_pct(acc[in_band]),
            customdata=thr[in_band],
            name=f"robust band C in [{lo:.4g}, {hi:.4g}]",
            mode="markers",
            marker={
                "color": "rgba(0,0,0,0)",
                "size": 9,
                "line": {"color": OKABE_ITO["black"], "width": 1},
            },
            hovertemplate="threshold %{customdata:.4f}<extra>band</extra>",
        )
    )
    cal, test = selection.calibration, selection.test
    for res, name, color, symbol in (
        (cal, "chosen (calibration)", COLORS["current"], "star"),
        (test, "chosen, on test", COLORS["test"], "star-diamond"),
    ):
        fig.add_trace(
            go.Scatter(
                x=[res.mean_latency],
                y=[100.0 * res.accuracy],
                name=f"{name}: C = {selection.threshold:.4g}",
                mode="markers",
                marker={
                    "color": color,
                    "size": 16,
                    "symbol": symbol,
                    "line": {"color": "black", "width": 1},
                },
                hovertemplate="latency %{x:.2f}<br>accuracy %{y:.2f} %<extra></extra>",
            )
        )
    if baseline_accuracy is not None:
        fig.add_hline(
            y=100.0 * baseline_accuracy,
            line={"color": COLORS["baseline"], "dash": "dot"},
            annotation_text="baseline at T_max (calibration)",
            annotation_position="bottom right",
        )
    _layout(fig, title, "mean latency (time steps)", "accuracy (%)", legend_below=True)
    data = pd.concat(
        [
            _frame(
                "sweep",
                threshold=thr,
                mean_latency=lat,
                accuracy=acc,
                on_front=front,
                in_band=in_band,
            ),
            _frame(
                "chosen_calibration",
                threshold=[selection.threshold],
                mean_latency=[cal.mean_latency],
                accuracy=[cal.accuracy],
            ),
            _frame(
                "chosen_test",
                threshold=[selection.threshold],
                mean_latency=[test.mean_latency],
                accuracy=[test.accuracy],
            ),
        ],
        ignore_index=True,
    )
    return Chart("pareto_selection", title, fig.build(), data)


# --------------------------------------------------------------------------- run overview


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
    fig = _Builder()
    frames = []
    if len(ts):
        fig.add_trace(
            go.Scatter(
                x=ts,
                y=_pct(accs),
                name="SNN",
                mode="lines+markers",
                line={"color": COLORS["baseline"], "width": 2},
                hovertemplate="T = %{x}<br>accuracy %{y:.2f} %<extra>SNN</extra>",
            )
        )
        frames.append(_frame("snn", T=ts, accuracy=accs))
    if ann is not None:
        fig.add_hline(
            y=100.0 * float(ann),
            line={"color": COLORS["policy"], "dash": "dash"},
            annotation_text=f"ANN {100 * float(ann):.2f} %",
            annotation_position="bottom right",
        )
        frames.append(_frame("ann", T=[np.nan], accuracy=[float(ann)]))
    _layout(fig, title, "time steps T", "accuracy (%)")
    return Chart("accuracy_by_T", title, fig.build(), pd.concat(frames, ignore_index=True))


# --------------------------------------------------------------------------- one sample


def class_probabilities(outputs: np.ndarray, decoder: str, kappa: float | None) -> np.ndarray:
    """p_t over classes for one sample's per-step outputs [T, K]: what ``decoder`` reads.

    paper/entropy/margin: softmax(S_t / kappa); mean: softmax(S_t / t); step: softmax(z_t).
    Its row maximum is the paper/mean/step confidence exactly (tested).
    """
    z = np.asarray(outputs, dtype=np.float64)
    T = z.shape[0]
    if decoder == "step":
        x = z
    elif decoder == "mean":
        x = np.cumsum(z, axis=0) / np.arange(1, T + 1, dtype=np.float64)[:, None]
    else:
        x = np.cumsum(z, axis=0) / float(kappa if kappa is not None else T)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sample_confidence(
    confidence: Sequence[float],
    threshold: float,
    exit_step: int,
    correct: Sequence[bool] | None = None,
    title: str = "Confidence over time",
) -> Chart:
    """One sample's confidence c_t against the threshold, with its exit step marked."""
    c = np.asarray(confidence, dtype=float)
    steps = _steps(len(c))
    fig = _Builder()
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
    frame = _frame("confidence", step=steps, confidence=c)
    if correct is not None:
        ok = np.asarray(correct, dtype=bool)
        frame["correct"] = ok
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
    _layout(fig, title, "time step t", "confidence c_t")
    fig.update_layout(yaxis={"range": [0, 1.02]})
    return Chart("sample_confidence", title, fig.build(), frame)


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
    steps = _steps(T)
    ranked = list(np.argsort(-p.max(axis=0), kind="stable"))
    keep = [int(label)] + [int(k) for k in ranked if int(k) != int(label)][: max(top - 1, 0)]
    fig = _Builder()
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
                hovertemplate=f"{classes[k]}<br>step %{{x}}<br>p %{{y:.4f}}<extra></extra>",
            )
        )
        frames.append(_frame(str(classes[k]), step=steps, probability=p[:, k], class_index=[k] * T))
    _layout(fig, title, "time step t", "probability")
    fig.update_layout(yaxis={"range": [0, 1.02]})
    return Chart("sample_probabilities", title, fig.build(), pd.concat(frames, ignore_index=True))


def sample_image(image: np.ndarray, caption: str, title: str = "Input image") -> Chart:
    """The input image (H x W grey or H x W x 3 uint8), drawn without smoothing."""
    img = np.asarray(image)
    if img.ndim == 2:
        fig = _Builder(go.Heatmap(z=img[::-1], colorscale="gray_r", showscale=False))
        fig.update_layout(yaxis={"scaleanchor": "x"})
    else:
        fig = _Builder(go.Image(z=img))
    _layout(fig, f"{title}: {caption}", "", "")
    fig.update_layout(
        xaxis={"visible": False},
        yaxis={"visible": False},
        height=320,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    flat = img.reshape(img.shape[0], -1)
    return Chart("sample_image", title, fig.build(), pd.DataFrame(flat))


# --------------------------------------------------------------------------- comparing runs


@dataclass
class CompareEntry:
    """One (run, split, decoder) on the compare page."""

    label: str
    baseline: np.ndarray  # fixed-T accuracy, t = 1..T
    sweep: Any  # Sweep


def compare(entries: Sequence[CompareEntry], title: str = "Runs and decoders compared") -> Chart:
    """Overlay of Pareto fronts (solid) and fixed-T baselines (dotted), one colour per entry."""
    fig = _Builder()
    frames = []
    for i, e in enumerate(entries):
        color = SERIES[i % len(SERIES)]
        base = np.asarray(e.baseline, dtype=float)
        steps = _steps(len(base))
        lat, acc = np.asarray(e.sweep.mean_latency), np.asarray(e.sweep.accuracy)
        thr, front = np.asarray(e.sweep.thresholds), np.asarray(e.sweep.on_front, dtype=bool)
        order = np.argsort(lat[front], kind="stable")
        fig.add_trace(
            go.Scatter(
                x=lat[front][order],
                y=_pct(acc[front][order]),
                customdata=thr[front][order],
                name=f"{e.label}: Dynamic Confidence",
                legendgroup=e.label,
                mode="lines+markers",
                line={"color": color, "width": 2},
                marker={"size": 4},
                hovertemplate="threshold %{customdata:.4f}<br>latency %{x:.2f}"
                f"<br>accuracy %{{y:.2f}} %<extra>{e.label}</extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=_pct(base),
                name=f"{e.label}: baseline",
                legendgroup=e.label,
                mode="lines",
                line={"color": color, "width": 1.5, "dash": "dot"},
                hovertemplate="T = %{x}<br>accuracy %{y:.2f} %"
                f"<extra>{e.label} baseline</extra>",
            )
        )
        frames.append(
            _frame(
                f"{e.label} front",
                mean_latency=lat[front][order],
                accuracy=acc[front][order],
                threshold=thr[front][order],
            )
        )
        frames.append(_frame(f"{e.label} baseline", mean_latency=steps, accuracy=base))
    _layout(fig, title, "mean latency (time steps)", "accuracy (%)", legend_below=True)
    return Chart(
        "compare",
        title,
        fig.build(),
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(),
    )


def latency_at_accuracy(sweep: Any, target: float) -> float | None:
    """Lowest mean latency among swept thresholds whose accuracy reaches ``target``."""
    acc, lat = np.asarray(sweep.accuracy, dtype=float), np.asarray(sweep.mean_latency)
    ok = acc >= target - 1e-12
    return float(lat[ok].min()) if ok.any() else None


def compare_table(entries: Sequence[CompareEntry], drops: Sequence[float]) -> pd.DataFrame:
    """Mean latency each entry needs to reach its own full-length accuracy minus each drop.

    Targets are relative (baseline accuracy at T_max minus ``drop``, as fractions) so runs
    of different difficulty can share a table. Next to each latency stands the fixed T the
    baseline needs for the same target, so a row reads "Dynamic Confidence needs x steps
    where a fixed T needs y". None: the target is never reached.
    """
    rows = []
    for e in entries:
        base = np.asarray(e.baseline, dtype=float)
        row: dict[str, Any] = {"run / decoder": e.label, "T_max accuracy (%)": 100 * base[-1]}
        for d in drops:
            target = base[-1] - d
            reach = np.flatnonzero(base >= target - 1e-12)
            tag = f"-{100 * d:g} pp"
            row[f"latency @ {tag}"] = latency_at_accuracy(e.sweep, target)
            row[f"fixed T @ {tag}"] = int(reach[0] + 1) if len(reach) else None
        rows.append(row)
    return pd.DataFrame(rows)
