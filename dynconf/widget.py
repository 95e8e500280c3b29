"""The threshold explorer as a notebook widget (anywidget: JupyterLab, Notebook 7, VS Code,
Colab), running the same core and view as the app and the HTML report.

    w = dynconf.explore("cached_runs/cifar10_resnet20", split="test")
    w                      # the slider, the metrics and the four charts
    w.threshold = 0.6      # moves the slider; moving the slider sets w.threshold (on release)
    w.result               # dynconf.core.metrics.evaluate at w.threshold (a PolicyResult)

On the slider's grid (C = g / 200) the browser computes every exit itself; for any other C
set from Python the widget sends the library's exits with it, so what it shows is always
the library's result.
"""

from __future__ import annotations

import base64
import json
from functools import cache
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.records import GRID_STEPS, grid_index
from dynconf.errors import DynconfError


@cache
def _esm() -> str:
    from dynconf.report import explorer

    return "\n".join(
        [
            "const DynconfPlotlyBefore = window.Plotly;",
            explorer.plotly_js(),
            "const Plotly = window.Plotly;",
            "window.Plotly = DynconfPlotlyBefore;",
            explorer.view_js(),
            f"const DYNCONF_VIEW_HTML = {json.dumps(explorer.read('view.html'))};",
            explorer.read("widget.js"),
        ]
    )


@cache
def _css() -> str:
    from dynconf.report import explorer

    return explorer.read("view.css")


class Explorer(anywidget.AnyWidget):
    """The explorer of one run, split, decoder and kappa (build it with dynconf.explore)."""

    threshold = traitlets.Float(0.5).tag(sync=True)
    payload = traitlets.Bytes(b"").tag(sync=True)
    pid = traitlets.Unicode("").tag(sync=True)
    steps = traitlets.Int(GRID_STEPS).tag(sync=True)
    override = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    picked = traitlets.Int(None, allow_none=True).tag(sync=True)

    def __init__(self, run: Any, split: str, decoder: str, kappa: float | None, threshold: float):
        from dynconf.report import explorer

        self._esm, self._css = _esm(), _css()
        self.run, self.split, self.decoder, self.kappa = run, split, decoder, kappa
        self.data = run.split(split)
        self.decoded = decode(self.data, decoder=decoder, kappa=kappa)
        self._neurons = run.meta.get("neurons")
        self.result = self._evaluate(threshold)
        dec = self.decoded
        views = {
            "baseline": metrics.baseline_curve(dec),
            "sweep": metrics.sweep(dec),
            "capped": metrics.capped_curve(dec, threshold),
            "oracle": metrics.oracle_curve(dec, variant="first_correct", never_correct="cap"),
        }
        pid, blob = explorer.build_payload(
            dec, self.data, self._neurons, views, self.result, list(run.classes)
        )
        super().__init__(
            payload=blob, pid=pid, threshold=threshold, override=self._override(threshold)
        )

    def _evaluate(self, c: float) -> Any:
        return metrics.evaluate(self.decoded, c, spikes=self.data.spikes, neurons=self._neurons)

    def _override(self, c: float) -> dict | None:
        """The library's exits at an off-grid C, as the view reads them (None on the grid)."""
        if grid_index(c) is not None:
            return None
        res = self.result if self.result.threshold == c else self._evaluate(c)

        def b64(a: np.ndarray) -> str:
            return base64.b64encode(a.astype("<u2").tobytes()).decode("ascii")

        return {
            "c": c,
            "steps": b64(res.exit_steps),
            "answers": b64(res.predictions),
            "spent": res.spikes_per_image_at_exit,
        }

    @traitlets.validate("threshold")
    def _check_threshold(self, proposal: Any) -> float:
        c = float(proposal["value"])
        if not 0.0 <= c <= 1.0:
            raise traitlets.TraitError(f"threshold must lie in [0, 1], got {c}")
        return c

    @traitlets.observe("threshold")
    def _threshold_changed(self, change: Any) -> None:
        # Set by the slider on release or from Python: the library's result at that C.
        self.result = self._evaluate(change["new"])
        self.override = self._override(change["new"])


def explore(
    run: Any,
    split: str | None = None,
    decoder: str = "paper",
    kappa: float | None = None,
    threshold: float | None = None,
) -> Explorer:
    """The explorer widget of ``run`` (a folder, a run's name or a loaded run) on ``split``
    (default: the run's evaluation split), at ``threshold`` (default: chosen on the
    calibration split, else 0.9)."""
    from dynconf import load
    from dynconf.core.selection import calibration_split, default_split

    if isinstance(run, str | Path):
        run = load(run)  # a run folder, or the name of a run dynconf knows
    run = getattr(run, "stored", run)  # a dynconf.load() Run wraps the stored run
    split = split or default_split(run)
    if split not in run.split_names:
        raise DynconfError(f"run {run.name} has no split {split!r}")
    if threshold is None:
        cal = calibration_split(run, split)
        if cal is None:
            threshold = 0.9
        else:
            cal_dec = decode(run.split(cal), decoder=decoder, kappa=kappa)
            dec = decode(run.split(split), decoder=decoder, kappa=kappa)
            threshold = float(metrics.select_threshold(cal_dec, dec).threshold)
    return Explorer(run, split, decoder, kappa, float(threshold))
