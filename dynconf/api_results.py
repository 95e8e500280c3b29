"""What the notebook API returns: results that read well as text, in HTML and as tables.

:class:`Evaluation` (one policy on one split), :class:`Selected` (a threshold chosen on a
calibration split) and :func:`policies_frame` (a policy comparison as a DataFrame) wrap the
library's own results (dynconf.core.results, selection, policies.comparison) without
changing a number; text shown in HTML is escaped.
"""

from __future__ import annotations

import html
from typing import Any

from dynconf.core.formatting import pct


def _frame(data: Any, **kwargs: Any):
    import pandas as pd

    return pd.DataFrame(data, **kwargs)


def policies_frame(comparison: Any):
    """One row per fitted policy (and the stays-correct oracle) of a PolicyComparison."""
    rows = []
    for fit in comparison.fits:
        t, c = fit.test, fit.calibration
        rows.append(
            {
                "policy": fit.name,
                "description": fit.description,
                "decoder": fit.decoder,
                "kappa": fit.kappa,
                "calibration_accuracy": c.accuracy,
                "calibration_mean_latency": c.mean_latency,
                "accuracy": t.accuracy,
                "mean_latency": t.mean_latency,
                "latency_vs_threshold": fit.latency_vs_threshold,
                "gap_closed": fit.gap_closed,
                "spike_saving": t.spike_saving,
                "synops_saving": t.synops_saving,
            }
        )
    o = comparison.oracle
    rows.append({"policy": "oracle", "description": "stays correct",
                 "accuracy": o.accuracy, "mean_latency": o.mean_latency})  # fmt: skip
    return _frame(rows).set_index("policy")


class Evaluation:
    """One exit policy's result on one split (a PolicyResult with a readable repr): every
    attribute of dynconf.core.results.PolicyResult (``accuracy``, ``mean_latency``,
    ``exit_steps``, ``spike_saving``, ``synops_saving``, ...) and ``to_dict()``.

    Example::

        res = run.evaluate(threshold=0.5)
        print(res)                 # digits/test, paper (...), C = 0.5: accuracy ... at ...
        res.to_dict(per_sample=False)
    """

    def __init__(self, result: Any, where: str, decoder_label: str) -> None:
        self.result, self.where, self.decoder_label = result, where, decoder_label

    def __getattr__(self, name: str) -> Any:
        if name in ("result", "where", "decoder_label"):  # not set yet (copy, unpickle)
            raise AttributeError(name)
        return getattr(self.result, name)

    def to_dict(self, per_sample: bool = True) -> dict:
        return self.result.to_dict(per_sample)

    def rows(self) -> list[tuple[str, str]]:
        """(what, value) pairs as the app rounds them."""
        r = self.result
        rows = [
            ("accuracy", pct(r.accuracy)),
            ("mean latency", f"{r.mean_latency:.2f} steps"),
            ("accuracy at T_max", f"{pct(r.baseline_accuracy)} at {r.T_max} steps"),
            ("latency saved", pct(r.latency_reduction, 1)),
        ]
        if r.spike_saving is not None:
            rows.append(("spikes saved", pct(r.spike_saving, 1)))
        if r.synops_saving is not None:
            rows.append(("synaptic ops saved", pct(r.synops_saving, 1)))
        return rows

    def _what(self) -> str:
        r = self.result
        rule = f"C = {r.threshold:.4g}" if r.threshold is not None else r.policy
        if r.threshold is not None and r.policy != "threshold":
            rule = f"{r.policy}, {rule}"
        return f"{self.where}, {self.decoder_label}, {rule}"

    def __repr__(self) -> str:
        return f"<{self._what()}: " + "; ".join(f"{k} {v}" for k, v in self.rows()) + ">"

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in self.rows()
        )
        return f"<b>{html.escape(self._what())}</b><table>{cells}</table>"


class Selected:
    """A threshold chosen on a calibration split and reported on another (dynconf select):
    ``threshold``, ``band``, ``target_accuracy``, ``calibration`` and ``test`` (Evaluations),
    ``selection`` (dynconf.core.selection.Selection) and ``to_dict()`` (the CLI's JSON).

    Example::

        sel = run.select()
        sel.threshold, sel.test.mean_latency
    """

    def __init__(self, selection: Any, calibration: str, test: str, decoder_label: str) -> None:
        self.selection = selection
        self.calibration_split, self.test_split = calibration, test
        name = decoder_label
        self.calibration = Evaluation(selection.calibration, calibration, name)
        self.test = Evaluation(selection.test, test, name)
        self.threshold = float(selection.threshold)
        self.band = tuple(float(b) for b in selection.band)
        self.target_accuracy = float(selection.target_accuracy)

    def to_dict(self) -> dict:
        return self.selection.to_dict()

    def to_frame(self):
        """Calibration and test side by side (accuracy, mean latency, savings)."""
        rows = {}
        for name, ev in (("calibration", self.calibration), ("test", self.test)):
            d = ev.to_dict(per_sample=False)
            keys = ("accuracy", "mean_latency", "baseline_accuracy", "latency_reduction",
                    "spike_saving", "synops_saving")  # fmt: skip
            rows[name] = {k: d[k] for k in keys}
        return _frame(rows).T

    def __repr__(self) -> str:
        c, t = self.calibration.result, self.test.result
        return (
            f"<C = {self.threshold:.6g} chosen on '{self.calibration_split}' "
            f"({pct(c.accuracy)} at {c.mean_latency:.2f} steps, target "
            f"{pct(self.target_accuracy)}); on '{self.test_split}': {pct(t.accuracy)} at "
            f"{t.mean_latency:.2f} steps; band [{self.band[0]:.4g}, {self.band[1]:.4g}]>"
        )

    def _repr_html_(self) -> str:
        return f"<code>{html.escape(repr(self))}</code>"


__all__ = ["Evaluation", "Selected", "policies_frame"]
