"""Static export: figures as PNG/SVG/PDF (kaleido), their data as CSV, a LaTeX table.

One function, :func:`collect_figures`, draws every figure of every page for one view (one
run + split + decoder + kappa, with its memoized results) through the figure registry; the
``export`` command (dynconf/cli/export.py) writes them to a folder and the app's "figure
pack" zips the very same set from the app's cached view, so a figure in a paper can be
regenerated headless from the run directory alone.

Images come from one headless Chromium started once per process (dynconf/report/render.py),
rendering on several tabs. An :class:`ImageBatch` hands each figure's images to it as soon
as that figure is built (``collect_figures(on_chart=batch.add)``), so they render while the
next figures are computed; the figures drawn from the fitted exit policies, the costliest
to compute, are built last, and their fronts are read back from the analysis cache when a
previous export swept them (dynconf/report/front_cache.py). The pack lists every figure in
:func:`figure_plan` order whatever order they were built in.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from dynconf.core.atomic import write_bytes_atomic
from dynconf.core.decoders import kappa_label
from dynconf.errors import DynconfError
from dynconf.report import viewdata
from dynconf.report.front_cache import fronts_of
from dynconf.report.latex import run_table
from dynconf.report.layout import fit, scale_traces
from dynconf.report.presets import DEFAULT_PRESET, Preset, get_preset
from dynconf.report.registry import build_figure, figure_names
from dynconf.report.render import render_many, results, submit
from dynconf.report.style import Chart
from dynconf.report.viewdata import make_view

FORMATS = ("png", "svg", "pdf")
MIME = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
    "csv": "text/csv",
    "zip": "application/zip",
    "tex": "application/x-tex",
}
# The threshold of a run without a calibration split to choose one on.
FALLBACK_THRESHOLD = 0.9


def export_figure(fig: Any, preset: str | Preset = DEFAULT_PRESET) -> go.Figure:
    """The figure as ``preset`` prints it: its size, fonts, line weights, margins and legend
    rows (dynconf/report/layout.py), no title for paper presets. The app's download buttons
    and the figure pack (CLI ``export`` and the app's ZIP) both draw through this one
    function, so the same chart gives the same figure everywhere."""
    p = get_preset(preset)
    spec = fig.to_dict()
    traces, lay = spec.setdefault("data", []), spec.setdefault("layout", {})
    for t in traces:  # names wrapped for another width are re-wrapped for this one
        if isinstance(t.get("name"), str):
            t["name"] = t["name"].replace("<br>", " ")
    fit(traces, lay, p, width=p.width_px)
    scale_traces(traces, p.weight)
    return go.Figure(spec)


def image_job(fig: Any, fmt: str, preset: str | Preset = DEFAULT_PRESET) -> tuple[dict, dict]:
    """(figure dict, kaleido options) that render ``fig`` as ``preset`` prints it (a PDF page
    is the preset's width in inches; a PNG has the preset's dpi)."""
    if fmt not in FORMATS:
        raise DynconfError(f"unknown image format {fmt!r}; choose from {', '.join(FORMATS)}")
    p = get_preset(preset)
    out_fig = export_figure(fig, p).to_dict()
    return out_fig, _image_opts(out_fig, fmt, p)


def _image_opts(spec: dict, fmt: str, preset: Preset) -> dict:
    return {
        "format": fmt,
        "width": spec["layout"]["width"],
        "height": spec["layout"]["height"],
        "scale": preset.png_scale if fmt == "png" else 1,
    }


def figure_bytes(fig: Any, fmt: str, preset: str | Preset = DEFAULT_PRESET) -> bytes:
    """Render a Plotly figure to PNG, SVG or PDF bytes as ``preset`` prints it."""
    return render_many([image_job(fig, fmt, preset)])[0]


def evaluate_view(
    run: Any,
    split: str,
    threshold: float,
    decoder: str = "paper",
    kappa: float | None = None,
) -> tuple[Any, Any]:
    """(Decoded, PolicyResult) of one run, split, decoder and threshold, with the split's
    spikes and synaptic operations: what the figure pack reports."""
    view = make_view(run, split, decoder, kappa)
    return view.decoded, view.evaluate(threshold)


def table_tex(
    run: Any,
    split: str,
    threshold: float,
    decoder: str = "paper",
    kappa: float | None = None,
    view: Any = None,
) -> str:
    """The pack's metrics.tex for one view, as the app's "LaTeX table" button writes it
    (from ``view``'s memoized result when given)."""
    view = view if view is not None else make_view(run, split, decoder, kappa)
    context = {"split": split, "decoder": decoder, "kappa": kappa, "threshold": threshold}
    return run_table(run, view.evaluate(threshold), context)


def figure_plan(
    view: Any,
    threshold: float,
    calibration: str | None = None,
    samples: Sequence[int] = (),
    compare: Sequence[Any] = (),
    steps: Sequence[int] = (),
) -> list[tuple[str, dict[str, Any]]]:
    """(figure name, parameters) of every figure the export draws, page by page: explorer,
    home, oracle, selection and policies (with a calibration split), classes, then the
    samples asked for, the compared views and the classroom at the steps asked for."""
    at = {"threshold": threshold}
    plan = [(name, at) for name in figure_names("explorer")]
    plan += [("accuracy_by_T", {}), ("home_confidence", at), ("oracle_bound", at)]
    if calibration is not None:
        cal = {"calibration": calibration}
        plan += [(name, cal) for name in (*figure_names("selection"), *figure_names("policies"))]
    plan += [(name, at) for name in figure_names("classes")]
    for sid in samples:
        plan += [("sample_confidence", {**at, "sample_id": sid}), ("sample_probabilities",
                 {"sample_id": sid}), ("sample_image", {"sample_id": sid}),
                 ("sample_picker", {**at, "sample_id": sid})]  # fmt: skip
    if compare:
        plan.append(("compare", {"views": [view, *compare]}))
    for t in steps:
        plan += [(name, {**at, "step": int(t)}) for name in figure_names("classroom")]
    return plan


# Figures drawn from the fitted exit policies, which cost the most to compute: they are
# built after every other figure, whose images render meanwhile (the pack keeps plan order).
POLICY_FIGURES = {"policy_exit_histogram": 1, "policy_exit_scatter": 1, "policy_fronts": 2}


class _PolicyInputs:
    """The selection, fitted policies and fronts a view's figures are drawn from, each
    computed on first use (a pack without a calibration split never fits a policy)."""

    def __init__(self, view, calibration, tolerance, policy, selection, policies) -> None:
        self.view, self.calibration, self.tolerance = view, calibration, tolerance
        self.policy, self.selection = policy, selection
        self._comparison, self._fronts = policies if policies is not None else (None, None)

    def comparison(self) -> Any:
        if self._comparison is None:
            held = getattr(self.view, "policy_comparison", None)
            if callable(held):  # a View: the fits alone, fronts on their own later
                self._comparison = held(self.calibration, self.tolerance)
            else:
                self._comparison, self._fronts = viewdata.policies(
                    self.view, self.calibration, self.tolerance
                )
        return self._comparison

    def fronts(self) -> Any:
        if self._fronts is None:
            self._fronts = fronts_of(self.view, self.calibration, self.tolerance,
                                     self.comparison())  # fmt: skip
        return self._fronts

    def extra(self, name: str) -> dict[str, Any]:
        """The computed inputs figure ``name`` takes beyond its plan parameters."""
        if self.calibration is None:
            return {}
        if name in figure_names("selection"):
            return {"selection": self.selection, "tolerance": self.tolerance}
        if name == "policy_fronts":
            return {"fronts": self.fronts(), "tolerance": self.tolerance}
        if name in POLICY_FIGURES:
            return {"comparison": self.comparison(), "policy": self.policy,
                    "tolerance": self.tolerance}  # fmt: skip
        return {}


def collect_figures(
    view: Any,
    threshold: float | None = None,
    calibration: str | None = None,
    tolerance: float = 0.0,
    samples: Sequence[int] = (),
    compare: Sequence[Any] = (),
    steps: Sequence[int] = (),
    *,
    policy: str | None = None,
    selection: Any = None,
    policies: tuple[Any, Any] | None = None,
    on_chart: Callable[[Chart], Any] | None = None,
) -> tuple[list[Chart], Any, dict[str, Any]]:
    """Every figure of every page for one view, each built once (dynconf/report/registry.py).

    ``threshold`` None means: the one chosen on ``calibration`` (docs/METHOD.md), or 0.9
    when there is no calibration split. ``selection`` and ``policies`` (comparison, fronts)
    are what a cache already holds for this view (the app's); they are computed here when
    not given. ``on_chart`` is called with each chart as soon as it is built (an
    :class:`ImageBatch` starts rendering it), the policy figures last. Returns (charts in
    :func:`figure_plan` order, the PolicyResult at the threshold, context).
    """
    run, split = view.run, viewdata.split_name(view)
    if calibration is not None and calibration not in run.split_names:
        raise DynconfError(f"run {run.name} has no calibration split {calibration!r}")
    if calibration is not None:
        selection = selection or viewdata.selection(view, calibration, tolerance)
    if threshold is None:
        threshold = selection.threshold if selection is not None else FALLBACK_THRESHOLD
    inputs = _PolicyInputs(view, calibration, tolerance, policy, selection, policies)
    plan = figure_plan(view, threshold, calibration, samples, compare, steps)
    built: dict[int, Chart | None] = {}
    for i in sorted(range(len(plan)), key=lambda i: POLICY_FIGURES.get(plan[i][0], 0)):
        name, params = plan[i]
        built[i] = chart = build_figure(name, view, **params, **inputs.extra(name))
        if chart is not None and on_chart is not None:
            on_chart(chart)
    charts = [chart for _, chart in sorted(built.items()) if chart is not None]
    context = {
        "run": run.name,
        "split": split,
        "decoder": view.decoder,
        "kappa": view.kappa,
        "threshold": threshold,
        "calibration": calibration,
        "tolerance": tolerance,
        "kappa_label": kappa_label(view.decoder, view.kappa, run.T_max),
    }
    return charts, view.evaluate(threshold), context


def collect_charts(
    run: Any,
    split: str,
    threshold: float | None = None,
    decoder: str = "paper",
    kappa: float | None = None,
    calibration: str | None = None,
    tolerance: float = 0.0,
) -> tuple[list[Chart], Any, dict[str, Any]]:
    """:func:`collect_figures` of a new view of ``run``'s ``split``."""
    view = make_view(run, split, decoder, kappa)
    return collect_figures(view, threshold, calibration, tolerance)


class ImageBatch:
    """The images of a pack, handed to the renderer chart by chart as they are built.

    ``add(chart)`` starts rendering every format of ``chart`` on the process's browser
    (dynconf/report/render.py) and returns at once, so the images of the first figures
    render while the later ones are still computed; ``files()`` waits for them all. Pass it
    as ``collect_figures(on_chart=batch.add)`` and ``pack_files(images=batch)``.
    """

    def __init__(self, formats: Iterable[str] = FORMATS, preset: str | Preset = DEFAULT_PRESET):
        self.formats, self.preset = tuple(formats), get_preset(preset)
        for fmt in self.formats:
            if fmt not in FORMATS:
                raise DynconfError(
                    f"unknown image format {fmt!r}; choose from {', '.join(FORMATS)}"
                )
        self._started: dict[int, tuple[Chart, list]] = {}  # id(chart) -> its futures

    def add(self, chart: Chart) -> None:
        if not self.formats or id(chart) in self._started:
            return
        spec = export_figure(chart.figure, self.preset).to_dict()  # one spec for every format
        futures = [submit(spec, _image_opts(spec, fmt, self.preset)) for fmt in self.formats]
        self._started[id(chart)] = (chart, futures)

    def files(self, charts: Sequence[Chart]) -> dict[str, bytes]:
        """File name -> bytes of every image of ``charts`` (rendered now if not added)."""
        for chart in charts:
            self.add(chart)
        names = [f"{chart.key}.{fmt}" for chart in charts for fmt in self.formats]
        futures = [f for chart in charts for f in self._started[id(chart)][1]] if names else []
        return dict(zip(names, results(futures), strict=True))


def pack_files(
    run: Any,
    charts: Sequence[Chart],
    result: Any,
    context: dict[str, Any],
    formats: Iterable[str] = FORMATS,
    preset: str | Preset = DEFAULT_PRESET,
    images: ImageBatch | None = None,
) -> dict[str, bytes]:
    """File name -> contents for every chart (images + CSV), the LaTeX table and metrics.
    ``images``: the batch that already renders them (its formats and preset are used)."""
    p = get_preset(preset)
    if images is None:
        images = ImageBatch(formats, p)
    files = images.files(charts)
    for chart in charts:
        files[f"{chart.key}.csv"] = chart.csv()
    files["metrics.tex"] = run_table(run, result, context).encode()
    summary = {
        "context": {**context, "preset": images.preset.name},
        "metrics": result.to_dict(per_sample=False),
    }
    files["metrics.json"] = (json.dumps(summary, indent=2) + "\n").encode()
    return files


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def write_files(out: Path | str, files: dict[str, bytes]) -> list[Path]:
    """Write a pack into folder ``out`` (created if needed), each file atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return [write_bytes_atomic(out / name, data) for name, data in files.items()]


def parse_formats(text: str) -> tuple[str, ...]:
    """Parse "png,pdf" into ("png", "pdf"); an unknown or empty list is a DynconfError."""
    fmts = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise DynconfError(
            f"--formats: unknown format {', '.join(bad) or '(none)'}; choose from "
            f"{', '.join(FORMATS)}"
        )
    return fmts
