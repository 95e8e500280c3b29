"""The notebook API: one run, its numbers and its figures, from one import.

``dynconf.load`` opens a run by path or by name (looked up in the runs folders,
dynconf.core.roots) and returns a :class:`Run`. Every number it gives comes from the one view
(dynconf.core.view.View) that the app's pages and ``dynconf export`` use, so a notebook, the
command line and the dashboard agree to the last digit.

Example::

    import dynconf

    run = dynconf.load("digits")
    run                                  # digits: digits, ... T_max 8, splits ...
    run.evaluate(threshold=0.5)          # accuracy, mean latency, spikes saved
    run.sweep().head()                   # a DataFrame: threshold, accuracy, mean_latency, ...
    run.select()                         # C chosen on calibration, reported on test
    run.policies()                       # every exit policy, fitted on calibration
    run.figure("accuracy_latency")       # the explorer's Plotly figure

pandas and plotly are imported only by the methods that return them.
"""

from __future__ import annotations

import html
from collections import OrderedDict
from pathlib import Path
from typing import Any

from dynconf.api_results import Evaluation, Selected, policies_frame
from dynconf.core.view import View
from dynconf.errors import DynconfError

MAX_VIEWS = 16  # views a Run keeps (each holds its decoded split)
FALLBACK_THRESHOLD = 0.9  # the threshold of a run without a calibration split to choose it on


def load(path_or_name: str | Path) -> Run:
    """Open a run directory, or a run by name from the runs folders.

    Example::

        run = dynconf.load("cached_runs/digits")   # a path
        run = dynconf.load("noisy_digits")         # a name (DYNCONF_RUNS, ./runs, ./cached_runs,
                                                   # the bundled demo runs, then DYNCONF_WORK)
    """
    from dynconf.core.roots import find_run
    from dynconf.core.store import load_run

    return Run(load_run(find_run(path_or_name)))


def _frame(data: Any, **kwargs: Any):
    import pandas as pd

    return pd.DataFrame(data, **kwargs)


class Run:
    """A loaded run with the notebook's verbs (module doc). ``run.stored`` is the loaded
    run directory itself (dynconf.core.format.Run: meta and split arrays).

    Example::

        run = dynconf.load("digits")
        run.evaluate(split="test", threshold=0.5).accuracy
    """

    def __init__(self, stored: Any) -> None:
        self.stored = stored
        self._views: OrderedDict[tuple, View] = OrderedDict()

    # -- what it is

    name = property(lambda self: self.stored.name, doc="The run's folder name.")
    path = property(lambda self: self.stored.path, doc="The run's folder.")
    meta = property(lambda self: self.stored.meta, doc="meta.json as a dict.")
    T_max = property(lambda self: self.stored.T_max, doc="Simulated steps per sample.")
    classes = property(lambda self: self.stored.classes, doc="Class names.")
    splits = property(lambda self: self.stored.split_names, doc="Split names.")

    def costs(self) -> tuple[str, ...]:
        """The costs the run holds on every split: "spikes", "synops" (and "neurons")."""
        held = []
        for role in ("spikes", "synops"):
            splits = self.stored.splits.values()
            if splits and all(getattr(sp, role) is not None for sp in splits):
                held.append(role)
        if self.meta.get("neurons") is not None:
            held.append("neurons")
        return tuple(held)

    def __repr__(self) -> str:
        meta = self.meta
        sizes = ", ".join(f"{n} {sp.N:,}" for n, sp in self.stored.splits.items())
        costs = ", ".join(self.costs()) or "none"
        return (
            f"<dynconf run {self.name}: {meta.get('dataset', '?')}, {meta.get('model', '?')}, "
            f"T_max {self.T_max}, splits: {sizes}; storage {self.stored.storage}, "
            f"costs: {costs}>"
        )

    def _repr_html_(self) -> str:
        return f"<code>{html.escape(repr(self))}</code>"

    # -- views

    def view(self, split: str = "test", decoder: str = "paper", kappa: float | None = None) -> View:
        """The view of one split, decoder and kappa (dynconf.core.view.View), kept for reuse.

        Example::

            v = run.view("test", "paper", kappa=4)
            v.baseline[-1], v.evaluate(0.5).mean_latency
        """
        from dynconf.core.decoders import check_kappa

        key = (split, decoder, check_kappa(decoder, kappa, self.T_max))
        if key in self._views:
            self._views.move_to_end(key)
            return self._views[key]
        # The kept view serves every spelling of its kappa, so it follows from the key alone.
        view = View.shared(
            self.stored, split, decoder, kappa, siblings=self._sibling(decoder, kappa)
        )
        self._views[key] = view
        while len(self._views) > MAX_VIEWS:
            self._views.popitem(last=False)
        return view

    def _sibling(self, decoder: str, kappa: float | None):
        return lambda split: self.view(split, decoder, kappa)

    def calibration_split(self, split: str = "test") -> str | None:
        """The split a threshold is chosen on when reporting on ``split`` (None if none)."""
        from dynconf.core.selection import calibration_split

        return calibration_split(self.stored, split)

    def _calibration(self, calibration: str | None, split: str) -> str:
        cal = calibration or self.calibration_split(split)
        if cal is None:
            raise DynconfError(f"run {self.name} has no calibration split besides '{split}'")
        return cal

    # -- numbers

    def evaluate(
        self,
        split: str = "test",
        threshold: float = 0.5,
        decoder: str = "paper",
        kappa: float | None = None,
        policy: Any = None,
    ) -> Evaluation:
        """Dynamic Confidence at C = ``threshold`` on ``split`` (or a fitted/parameterised
        exit policy given as ``policy``), as ``dynconf evaluate`` reports it.

        Example::

            res = run.evaluate(threshold=0.5)
            res.accuracy, res.mean_latency, res.exit_steps[:5], res.spike_saving
        """
        view = self.view(split, decoder, kappa)
        if policy is None:
            result = view.evaluate(threshold)
        else:
            data = view.data
            result = policy.evaluate(
                view.decoded, spikes=data.spikes, neurons=view.neurons, synops=data.synops
            )
        return Evaluation(result, f"{self.name}/{split}", view.decoded.label)

    def sweep(self, split: str = "test", decoder: str = "paper", kappa: float | None = None):
        """The threshold rule at every threshold of the slider grid, as a pandas DataFrame
        (threshold, accuracy, mean_latency, n_correct, on_front, near_front).

        Example::

            df = run.sweep()
            df[df.on_front].sort_values("mean_latency")
        """
        sw = self.view(split, decoder, kappa).sweep
        return _frame(
            {
                "threshold": sw.thresholds,
                "accuracy": sw.accuracy,
                "mean_latency": sw.mean_latency,
                "n_correct": sw.n_correct,
                "on_front": sw.on_front,
                "near_front": sw.near_front,
            }
        )

    def baseline(self, split: str = "test", decoder: str = "paper", kappa: float | None = None):
        """Accuracy at every fixed T = 1..T_max, as a pandas Series indexed by T.

        Example::

            run.baseline().iloc[-1]    # accuracy when every sample runs all T_max steps
        """
        import pandas as pd

        base = self.view(split, decoder, kappa).baseline
        return pd.Series(base, index=pd.RangeIndex(1, len(base) + 1, name="T"), name="accuracy")

    def select(
        self,
        calibration: str | None = None,
        test: str = "test",
        tolerance: float = 0.0,
        decoder: str = "paper",
        kappa: float | None = None,
    ) -> Selected:
        """Choose C on ``calibration`` (the fastest within ``tolerance`` of its T_max
        accuracy) and report it on ``test``, as ``dynconf select`` does.

        Example::

            sel = run.select(calibration="calibration", test="test")
            sel.threshold, sel.test.accuracy, sel.to_frame()
        """
        cal = self._calibration(calibration, test)
        view = self.view(test, decoder, kappa)
        return Selected(view.selection(cal, tolerance), cal, test, view.decoded.label)

    def policy_comparison(
        self,
        calibration: str | None = None,
        test: str = "test",
        tolerance: float = 0.0,
        decoder: str = "paper",
        kappa: float | str | None = None,
        names: tuple[str, ...] | None = None,
    ) -> Any:
        """Every exit policy fitted on ``calibration`` and reported on ``test`` (the
        PolicyComparison ``dynconf policies --json`` prints; ``kappa="auto"`` chooses it).

        Example::

            cmp = run.policy_comparison()
            [(fit.name, fit.test.mean_latency) for fit in cmp.fits]
        """
        cal = self._calibration(calibration, test)
        auto = isinstance(kappa, str) and kappa == "auto"
        view = self.view(test, decoder, None if auto else kappa)
        return view.policy_comparison(cal, tolerance, auto, names)

    def policies(
        self,
        calibration: str | None = None,
        test: str = "test",
        tolerance: float = 0.0,
        decoder: str = "paper",
        kappa: float | str | None = None,
        names: tuple[str, ...] | None = None,
    ):
        """``policy_comparison`` as a pandas DataFrame, one row per policy and one for the
        stays-correct oracle (the table ``dynconf policies`` prints).

        Example::

            run.policies(calibration="calibration", test="test")[["accuracy", "mean_latency"]]
        """
        cmp = self.policy_comparison(calibration, test, tolerance, decoder, kappa, names)
        return policies_frame(cmp)

    def oracle(self, split: str = "test", cap: int | None = None):
        """The oracle exits of ``split`` (every variant; ``dynconf oracle``), as a DataFrame
        indexed by "variant/never-correct rule".

        Example::

            run.oracle().loc["first_correct/cap", "mean_latency"]
        """
        from dynconf.core.oracle import NEVER_CORRECT, ORACLE_VARIANTS

        # Oracles read correctness only (argmax S_t), the same under every decoder; "mean"
        # is the one decoder every storage can provide.
        view = self.view(split, "mean")
        rows = {}
        for variant in ORACLE_VARIANTS:
            for never in NEVER_CORRECT:
                d = view.oracle(variant, never, cap).to_dict()
                rows[f"{variant}/{never}"] = {
                    "accuracy": d["accuracy"],
                    "mean_latency": d["mean_latency"],
                    "cap": d["cap"],
                }
        return _frame(rows).T.astype({"accuracy": float, "mean_latency": float, "cap": int})

    def default_threshold(
        self, split: str = "test", decoder: str = "paper", kappa: float | None = None
    ) -> float:
        """The C the app starts at: chosen on the calibration split, else 0.9."""
        cal = self.calibration_split(split)
        if cal is None:
            return FALLBACK_THRESHOLD
        return float(self.view(split, decoder, kappa).selection(cal).threshold)

    # -- figures

    def chart(
        self,
        name: str,
        split: str = "test",
        decoder: str = "paper",
        kappa: float | None = None,
        **params: Any,
    ) -> Any:
        """Figure ``name`` with the numbers it draws (a Chart: ``.figure``, ``.csv()``).
        A missing threshold is the app's starting one, a missing calibration split the
        run's; ``views=[run_a, run_b]`` (runs or views) for "compare".

        Example::

            run.chart("exit_histogram", threshold=0.5).csv()
        """
        from dynconf.report.figures import FIGURES, build_figure

        view = self.view(split, decoder, kappa)
        spec = FIGURES.get(name)
        if spec is not None:
            if "threshold" in spec.params and params.get("threshold") is None:
                params["threshold"] = self.default_threshold(split, decoder, kappa)
            if "calibration" in spec.params and params.get("calibration") is None:
                params["calibration"] = self._calibration(None, split)
        if params.get("views") is not None:
            params["views"] = [
                v.view(split, decoder, kappa) if isinstance(v, Run) else v for v in params["views"]
            ]
        chart = build_figure(name, view, **params)
        if chart is None:
            raise DynconfError(f"run {self.name} cannot draw {name!r} (its data is not held)")
        return chart

    def figure(self, name: str, **params: Any) -> Any:
        """The Plotly figure ``name`` as the app draws it (names: ``dynconf.figure_names()``;
        parameters as for :meth:`chart`).

        Example::

            run.figure("accuracy_latency", threshold=0.5).show()
            run.figure("sample_confidence", sample_id=3, threshold=0.5)
        """
        return self.chart(name, **params).figure


def figure_names() -> tuple[str, ...]:
    """Every figure name ``Run.figure`` draws, in page order.

    Example::

        dynconf.figure_names()[:3]   # ('accuracy_latency', 'exit_histogram', ...)
    """
    from dynconf.report.figures import figure_names as names

    return names()


__all__ = ["Evaluation", "Run", "Selected", "figure_names", "load", "policies_frame"]
