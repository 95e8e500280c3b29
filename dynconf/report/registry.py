"""The figure registry: every figure the app draws, by name, built from a view.

A view is one run + split + decoder + kappa with its memoized results (see
dynconf/report/viewdata.py). Each figure has one builder taking the view and the page's own
parameters (threshold, sample id, calibration split, step, the views to compare); the pages,
the app's figure pack, ``dynconf export`` and the notebook's ``run.figure(name, ...)`` all
draw through :func:`build_figure`, so a figure is the same wherever it comes from.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import plotly.graph_objects as go

from dynconf.errors import DynconfError
from dynconf.report import viewdata
from dynconf.report.classes import class_accuracy, class_latency, confusion_matrix
from dynconf.report.exits import exit_histogram, exit_scatter
from dynconf.report.overview import accuracy_by_T
from dynconf.report.plane import (
    accuracy_latency,
    compare,
    compare_label,
    oracle_bound,
    policy_fronts,
)
from dynconf.report.samples import sample_confidence, sample_image, sample_probabilities
from dynconf.report.style import Chart
from dynconf.report.thresholds import pareto_selection, threshold_response
from dynconf.report.timeline import timeline_confidence, timeline_grid, timeline_histogram


@dataclass(frozen=True)
class FigureSpec:
    """One registered figure: its page, builder, the parameters it takes (``required`` ones
    must be given) and what it shows."""

    name: str
    page: str
    builder: Callable[..., Chart]
    params: tuple[str, ...]
    required: tuple[str, ...]
    summary: str


FIGURES: dict[str, FigureSpec] = {}


def register(name: str, page: str, summary: str, required: tuple[str, ...] = ()):
    """Register ``builder(view, **params)`` as figure ``name`` (a decorator)."""

    def add(builder: Callable[..., Chart]) -> Callable[..., Chart]:
        sig = inspect.signature(builder)
        params = tuple(p for p in sig.parameters if p != "view")
        FIGURES[name] = FigureSpec(name, page, builder, params, required, summary)
        return builder

    return add


def figure_names(page: str | None = None) -> tuple[str, ...]:
    """Registered figure names, in page order (only ``page``'s when given)."""
    return tuple(n for n, s in FIGURES.items() if page is None or s.page == page)


def build_figure(name: str, view: Any, **params: Any) -> Chart | None:
    """Figure ``name`` of ``view`` (see :data:`FIGURES` for each one's parameters). None
    when the view cannot have it (an input image without its dataset, per-class
    probabilities of a top-k run, accuracy by T without any record of it)."""
    spec = FIGURES.get(name)
    if spec is None:
        raise DynconfError(f"unknown figure {name!r}; choose from {', '.join(FIGURES)}")
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        raise DynconfError(
            f"figure {name!r} takes no {', '.join(unknown)} (it takes {', '.join(spec.params)})"
        )
    missing = [p for p in spec.required if params.get(p) is None]
    if missing:
        raise DynconfError(f"figure {name!r} needs {', '.join(missing)}")
    return spec.builder(view, **params)


# ---------------------------------------------------------------- explorer and home


@register("accuracy_latency", "explorer", "the accuracy-latency plane at C", ("threshold",))
def _plane(view, threshold=None) -> Chart:
    res = viewdata.evaluate(view, threshold)
    return accuracy_latency(
        viewdata.baseline(view),
        res,
        capped=viewdata.capped(view, threshold),
        oracle=viewdata.oracle_curve(view),
        sweep=viewdata.sweep(view),
    )


@register("exit_histogram", "explorer", "exit steps at C", ("threshold",))
def _histogram(view, threshold=None) -> Chart:
    return exit_histogram(viewdata.evaluate(view, threshold), view.run.T_max)


@register("threshold_response", "explorer", "accuracy and latency against C", ("threshold",))
def _response(view, threshold=None) -> Chart:
    return threshold_response(viewdata.sweep(view), viewdata.evaluate(view, threshold))


@register("exit_scatter", "explorer", "every sample's exit step at C", ("threshold",))
def _scatter(view, threshold=None) -> Chart:
    sp = viewdata.data(view)
    res = viewdata.evaluate(view, threshold)
    return exit_scatter(res, sp.labels, sp.ids, view.run.classes)


@register("accuracy_by_T", "home", "accuracy at every fixed T, against the ANN")
def _by_t(view) -> Chart | None:
    split = viewdata.split_name(view)
    base = viewdata.baseline(view)
    summary: dict[str, Any] = {
        "snn_accuracy_by_T": {split: {str(t + 1): float(a) for t, a in enumerate(base)}}
    }
    ann = view.run.meta.get("ann_accuracy")
    ann = ann.get(split) if isinstance(ann, dict) else ann  # per split or global
    if isinstance(ann, int | float) and not isinstance(ann, bool) and np.isfinite(ann):
        summary["ann_accuracy"] = float(ann)
    return accuracy_by_T(summary, split)


@register("oracle_bound", "oracle", "the oracle's bound against the policy", ("threshold",))
def _oracle(view, threshold=None, variant="first_correct", never="cap", show_all=True) -> Chart:
    def label(v: str, n: str) -> str:
        return f"oracle: {ORACLE_VARIANTS[v]}, never-correct {n}"

    curves = {label(variant, never): viewdata.oracle_curve(view, variant, never)}
    if show_all:
        for v in ORACLE_VARIANTS:
            for n in ORACLE_NEVER:
                if (v, n) != (variant, never):
                    curves[label(v, n)] = viewdata.oracle_curve(view, v, n)
    return oracle_bound(
        viewdata.baseline(view),
        curves,
        policy=viewdata.capped(view, threshold),
        current=viewdata.evaluate(view, threshold),
    )


ORACLE_VARIANTS = {"first_correct": "first correct", "stays_correct": "stays correct"}
ORACLE_NEVER = ("cap", "step1")


# ---------------------------------------------------------------- selection and policies


@register("pareto_selection", "selection", "C chosen on calibration", ("calibration",))
def _selection(view, calibration=None, tolerance=0.0, selection=None) -> Chart:
    sel = selection or viewdata.selection(view, calibration, tolerance)
    return pareto_selection(sel, baseline_accuracy=sel.calibration.baseline_accuracy)


@register("selection_band", "selection", "the robust band of C", ("calibration",))
def _band(view, calibration=None, tolerance=0.0, selection=None) -> Chart:
    sel = selection or viewdata.selection(view, calibration, tolerance)
    chart = threshold_response(
        sel.sweep,
        sel.calibration,
        band=sel.band,
        title=f"Accuracy and latency vs threshold on {calibration}",
    )
    return replace(chart, key="selection_band")


@register("policy_fronts", "policies", "every exit policy's front", ("calibration",))
def _fronts(view, calibration=None, tolerance=0.0, auto_kappa=False, fronts=None) -> Chart:
    if fronts is None:
        _, fronts = viewdata.policies(view, calibration, tolerance, auto_kappa)
    return policy_fronts(
        viewdata.baseline(view),
        fronts,
        oracle=viewdata.oracle_curve(view, "stays_correct", "cap"),
        title=f"Exit policy fronts on {viewdata.split_name(view)}, chosen on {calibration}",
    )


def _policy_fit(view, calibration, tolerance, auto_kappa, policy, comparison):
    if comparison is None:
        comparison, _ = viewdata.policies(view, calibration, tolerance, auto_kappa)
    by_name = {fit.name: fit for fit in comparison.fits}
    if policy is None:
        return next(iter(by_name.values()))
    if policy not in by_name:
        raise DynconfError(f"policy {policy!r} was not fitted; fitted: {', '.join(by_name)}")
    return by_name[policy]


@register("policy_exit_histogram", "policies", "one policy's exit steps", ("calibration",))
def _policy_histogram(
    view, calibration=None, tolerance=0.0, auto_kappa=False, policy=None, comparison=None
) -> Chart:
    fit = _policy_fit(view, calibration, tolerance, auto_kappa, policy, comparison)
    where = f"{fit.name} ({fit.description})" if fit.description else fit.name
    title = f"Exit steps of {where} on {viewdata.split_name(view)}"
    chart = exit_histogram(fit.test, view.run.T_max, title=title)
    return replace(chart, key=f"policy_{fit.name}_exit_histogram")


@register("policy_exit_scatter", "policies", "one policy's exit of every sample", ("calibration",))
def _policy_scatter(
    view, calibration=None, tolerance=0.0, auto_kappa=False, policy=None, comparison=None
) -> Chart:
    fit = _policy_fit(view, calibration, tolerance, auto_kappa, policy, comparison)
    sp = viewdata.data(view)
    title = f"Exit step of every {viewdata.split_name(view)} sample under {fit.name}"
    chart = exit_scatter(fit.test, sp.labels, sp.ids, view.run.classes, title=title)
    return replace(chart, key=f"policy_{fit.name}_exit_scatter")


# ---------------------------------------------------------------- classes

MAX_CLASSES_DRAWN = 40  # classes drawn in the charts; the page's table always has every class


def drawn_classes(table: Any) -> np.ndarray:
    """The classes the charts draw: all, or the MAX_CLASSES_DRAWN answered worst."""
    K = len(table.n)
    if K <= MAX_CLASSES_DRAWN:
        return np.arange(K)
    present = np.asarray(table.n) > 0
    worst = np.where(present, table.accuracy, np.inf)
    return np.sort(np.argsort(worst, kind="stable")[:MAX_CLASSES_DRAWN])


def _class_subset(view, threshold):
    table = viewdata.classes(view, threshold)
    drawn = drawn_classes(table)
    names = [str(view.run.classes[k]) for k in drawn]
    return table.take(drawn), names


@register("class_accuracy", "classes", "accuracy by true label", ("threshold",))
def _class_accuracy(view, threshold=None) -> Chart:
    sub, names = _class_subset(view, threshold)
    return class_accuracy(sub, names, view.run.T_max)


@register("class_latency", "classes", "mean exit step by true label", ("threshold",))
def _class_latency(view, threshold=None) -> Chart:
    sub, names = _class_subset(view, threshold)
    return class_latency(sub, names, view.run.T_max)


@register("confusion_at_exit", "classes", "answers at exit by true label", ("threshold",))
def _confusion(view, threshold=None) -> Chart | None:
    from dynconf.core.classes import confusion_at_exit

    K = len(view.run.classes)
    if K > MAX_CLASSES_DRAWN:
        return None  # the page lists the most frequent confusions instead
    res = viewdata.evaluate(view, threshold)
    counts = confusion_at_exit(view.decoded.labels, res.predictions, K)
    return confusion_matrix(counts, [str(c) for c in view.run.classes])


# ---------------------------------------------------------------- samples


def sample_position(view: Any, sample_id: int) -> int:
    """The split position of ``sample_id`` (the split's ``ids`` entry; positions when the
    split has no ids); a DynconfError naming the split when no sample has it."""
    sp = viewdata.data(view)
    ids = np.arange(view.decoded.N) if sp.ids is None else np.asarray(sp.ids)
    where = np.flatnonzero(ids == int(sample_id))
    if not len(where):
        raise DynconfError(f"no sample has id {sample_id} in '{viewdata.split_name(view)}'")
    return int(where[0])


def _sample(view, sample_id, threshold):
    pos = sample_position(view, sample_id)
    res = viewdata.evaluate(view, threshold) if threshold is not None else None
    return pos, res


@register("sample_confidence", "samples", "one sample's confidence", ("sample_id", "threshold"))
def _sample_confidence(view, sample_id=None, threshold=None) -> Chart:
    pos, res = _sample(view, sample_id, threshold)
    dec = view.decoded
    chart = sample_confidence(
        dec.confidence[:, pos],
        threshold,
        int(res.exit_steps[pos]),
        correct=dec.correct[:, pos],
        title=f"Confidence over time ({view.decoder}), sample id {int(sample_id)}",
    )
    return replace(chart, key=f"sample_{int(sample_id)}_confidence")


@register("sample_probabilities", "samples", "one sample's class probabilities", ("sample_id",))
def _sample_probabilities(view, sample_id=None) -> Chart | None:
    from dynconf.core.decoders import class_probabilities

    sp = viewdata.data(view)
    if sp.outputs is None:
        return None  # a top-k run keeps no per-step outputs
    pos = sample_position(view, sample_id)
    probs = class_probabilities(np.asarray(sp.outputs[:, pos, :]), view.decoder, view.decoded.kappa)
    chart = sample_probabilities(probs, view.run.classes, int(sp.labels[pos]))
    return replace(chart, key=f"sample_{int(sample_id)}_probabilities")


def _image_of(view, sample_id, image):
    if image is not None:
        return image
    from dynconf import inputs

    root = inputs.default_data_root()
    split = viewdata.split_name(view)
    sp = viewdata.data(view)
    sid = None if sp.ids is None else int(sample_id)
    found, _ = inputs.sample_image(view.run.meta, split, sid, None if root is None else str(root))
    return found


@register("sample_image", "samples", "one sample's input image", ("sample_id",))
def _sample_image(view, sample_id=None, image=None, caption=None, title=None) -> Chart | None:
    image = _image_of(view, sample_id, image)
    if image is None:
        return None  # no dataset to read it from
    if caption is None:
        label = int(viewdata.data(view).labels[sample_position(view, sample_id)])
        caption = f"id {int(sample_id)} ({view.run.classes[label]})"
    chart = sample_image(image, caption, **({} if title is None else {"title": title}))
    return replace(chart, key=f"sample_{int(sample_id)}_image")


@register("sample_picker", "samples", "every sample's exit, one ringed", ("sample_id", "threshold"))
def _sample_picker(view, sample_id=None, threshold=None) -> Chart:
    pos, res = _sample(view, sample_id, threshold)
    sp = viewdata.data(view)
    sid, step = int(sample_id), int(res.exit_steps[pos])
    chart = exit_scatter(res, sp.labels, sp.ids, view.run.classes, title="Pick a sample")
    # Mark the current sample (a ring over its point), so the picker shows where you are.
    chart.figure.add_trace(
        go.Scatter(
            x=[sid],
            y=[step],
            mode="markers",
            name=f"this sample (id {sid})",
            marker={"size": 16, "symbol": "circle-open", "color": "black", "line": {"width": 2.5}},
            customdata=[[pos, sid, step]],
            hovertemplate="this sample: id %{customdata[1]}<br>exit step %{customdata[2]}"
            "<extra></extra>",
        )
    )
    return replace(chart, key=f"sample_{sid}_picker")


@register("home_confidence", "home", "a typical sample's confidence", ("threshold",))
def _home_confidence(view, threshold=None) -> Chart:
    from dynconf.core.timeline import example_sample

    dec = view.decoded
    pos = example_sample(dec, threshold)
    res = viewdata.evaluate(view, threshold)
    chart = sample_confidence(
        dec.confidence[:, pos], threshold, int(res.exit_steps[pos]), correct=dec.correct[:, pos],
        title=f"Confidence of sample {pos} over time",
    )  # fmt: skip
    return replace(chart, key="home_sample_confidence")


# ---------------------------------------------------------------- compare and classroom


@register("compare", "compare", "runs, decoders and kappas on one plane")
def _compare(view, views=None) -> Chart:
    from dynconf.core.compare import CompareEntry

    entries = []
    for v in views or [view]:
        label = compare_label(v.run.name, viewdata.split_name(v), v.decoder, v.kappa, v.run.T_max)
        entries.append(CompareEntry(label, viewdata.baseline(v), viewdata.sweep(v)))
    return compare(entries)


def _watched(view, threshold, watched):
    if watched is not None:
        return int(watched)
    from dynconf.core.timeline import example_sample

    return example_sample(view.decoded, threshold)


@register("timeline_grid", "classroom", "every sample's state at step t", ("threshold", "step"))
def _grid(view, threshold=None, step=None, watched=None) -> Chart:
    now = viewdata.timeline(view, threshold, step)
    pos = _watched(view, threshold, watched)
    chart = timeline_grid(now, viewdata.data(view).ids, watched=pos)
    return replace(chart, key=f"classroom_t{int(step)}_grid")


def _sample_id(view, pos: int) -> int:
    """The sample's id (the number its image and every page show), else its position."""
    ids = viewdata.data(view).ids
    return int(pos) if ids is None else int(ids[int(pos)])


@register("timeline_confidence", "classroom", "the watched sample up to t", ("threshold", "step"))
def _climb(view, threshold=None, step=None, watched=None) -> Chart:
    now = viewdata.timeline(view, threshold, step)
    pos = _watched(view, threshold, watched)
    chart = timeline_confidence(
        view.decoded.confidence[:, pos], threshold, int(step), int(now.exit_steps[pos]),
        title=f"Sample id {_sample_id(view, pos)}: confidence",
    )  # fmt: skip
    return replace(chart, key=f"classroom_t{int(step)}_confidence")


@register("timeline_histogram", "classroom", "answers given up to step t", ("threshold", "step"))
def _answers(view, threshold=None, step=None) -> Chart:
    chart = timeline_histogram(viewdata.timeline(view, threshold, step))
    return replace(chart, key=f"classroom_t{int(step)}_histogram")
