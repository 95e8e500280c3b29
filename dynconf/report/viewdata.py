"""What a figure reads from a view: one run + split + decoder + kappa, its memoized results.

A view (``dynconf.core.view.View``, which the app caches and ``dynconf export`` builds) keeps
the decoded split and everything computed from it, so that a page and the export draw from
the same numbers and nothing is computed twice. The functions here ask the view first and
compute from its decoded split only what a view does not hold, so a figure builder never
needs to know which of the two it got.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dynconf.core import metrics


def _ask(view: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """The view's own ``name`` (a method, or a value it holds), else None."""
    attr = getattr(view, name, None)
    if attr is None:
        return None
    return attr(*args, **kwargs) if callable(attr) else attr


def split_name(view: Any) -> str:
    for name in ("split_name", "split"):
        value = getattr(view, name, None)
        if isinstance(value, str):
            return value
    raise TypeError("a view names its split (split_name or split)")


def data(view: Any) -> Any:
    """The stored split (labels, ids, outputs, spikes, synops)."""
    held = getattr(view, "data", None)
    return held if held is not None else view.run.split(split_name(view))


def baseline(view: Any) -> np.ndarray:
    return np.asarray(_ask(view, "baseline"))


def sweep(view: Any) -> Any:
    return _ask(view, "sweep")


def evaluate(view: Any, threshold: float) -> Any:
    return view.evaluate(float(threshold))


def capped(view: Any, threshold: float) -> Any:
    held = _ask(view, "capped", float(threshold))
    return held if held is not None else metrics.capped_curve(view.decoded, float(threshold))


def oracle_curve(view: Any, variant: str = "first_correct", never: str = "cap") -> Any:
    held = _ask(view, "oracle_curve", variant, never)
    if held is None:
        held = metrics.oracle_curve(view.decoded, variant=variant, never_correct=never)
    return held


def oracle(view: Any, variant: str = "first_correct", never: str = "cap") -> Any:
    return view.oracle(variant, never)


def sibling(view: Any, split: str) -> Any:
    """The view of another split of the same run, decoder and kappa (the calibration split):
    the view's own when it can give one (the app's cache), else a new view of its kind."""
    held = _ask(view, "sibling", split)
    return held if held is not None else type(view)(view.run, split, view.decoder, view.kappa)


def selection(view: Any, calibration: str, tolerance: float = 0.0) -> Any:
    """The threshold chosen on ``calibration`` and reported on this view's split."""
    held = getattr(view, "selection", None)
    if callable(held):
        return held(calibration, tolerance)
    cal = sibling(view, calibration)
    return metrics.select_threshold(cal.decoded, view.decoded, tolerance=tolerance)


def policies(
    view: Any, calibration: str, tolerance: float = 0.0, auto_kappa: bool = False
) -> tuple[Any, Any]:
    """(comparison, fronts): every registered policy fitted on ``calibration`` and swept on
    this view's split, as the Policies page and ``dynconf policies`` fit them."""
    held = getattr(view, "policies", None)
    if callable(held):
        return held(calibration, tolerance, auto_kappa=auto_kappa)
    from dynconf.core.policies.comparison import compare_policies, policy_fronts, split_decoder

    sp, cal_sp = data(view), view.run.split(calibration)
    cal_fn, test_fn = split_decoder(cal_sp), split_decoder(sp)
    comparison = compare_policies(
        cal_fn,
        test_fn,
        tolerance,
        test_spikes=sp.spikes,
        neurons=view.run.meta.get("neurons"),
        decoder=view.decoder,
        kappa="auto" if auto_kappa else view.kappa,
    )
    return comparison, policy_fronts(comparison, cal_fn, test_fn)


def classes(view: Any, threshold: float) -> Any:
    """Accuracy, latency and exits per true label at C (dynconf.core.classes)."""
    held = getattr(view, "classes", None)
    if callable(held):
        return held(float(threshold))
    from dynconf.core.classes import class_metrics

    return class_metrics(view.decoded, evaluate(view, threshold), len(view.run.classes))


def timeline(view: Any, threshold: float, step: int) -> Any:
    """Where the threshold rule stands after ``step`` (dynconf.core.timeline)."""
    held = getattr(view, "timeline", None)
    if callable(held):
        return held(float(threshold), int(step))
    from dynconf.core.timeline import timeline_state

    return timeline_state(view.decoded, float(threshold), int(step))


def make_view(run: Any, split: str, decoder: str = "paper", kappa: float | None = None) -> Any:
    """The library's view of one run + split + decoder + kappa (dynconf.core.view.View)."""
    from dynconf.core.view import View

    return View(run, split, decoder, kappa)
