"""Static export: figures as PNG/SVG/PDF (kaleido), their data as CSV, a LaTeX table.

One function, :func:`collect_charts`, decides which figures describe a run at a threshold;
the ``export`` command (dynconf/cli/export.py) writes them to a folder and the app's
"figure pack" zips the very same set, so a figure in a paper can be regenerated headless
from the run directory alone.

kaleido 1.x drives a Chromium that must already be installed (Debian's ``chromium``); it is
imported lazily and started once per process as a persistent server, because the first
image costs seconds (browser start) and every later one a fraction of a second. Its Chrome
download helpers are never called.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from dynconf.core import metrics
from dynconf.core.atomic import write_bytes_atomic
from dynconf.core.decoders import decode
from dynconf.core.policies.comparison import compare_policies, policy_fronts, split_decoder
from dynconf.errors import DynconfError
from dynconf.report import figures
from dynconf.report.latex import run_table
from dynconf.report.layout import fit, scale_traces
from dynconf.report.presets import DEFAULT_PRESET, Preset, get_preset
from dynconf.report.style import Chart

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

# kaleido's sync server takes one request at a time and answers through one queue, so
# concurrent callers (Streamlit runs download callables on worker threads) must take turns.
_KALEIDO_LOCK = threading.Lock()
_kaleido_started = False


def _kaleido():
    global _kaleido_started
    try:
        import kaleido
    except ImportError as exc:  # pragma: no cover - kaleido is a runtime dependency
        raise DynconfError("static export needs the kaleido package (pip install kaleido)") from exc
    if not _kaleido_started:
        kaleido.start_sync_server(mathjax=False, silence_warnings=True)
        _kaleido_started = True
    return kaleido


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


def figure_bytes(fig: Any, fmt: str, preset: str | Preset = DEFAULT_PRESET) -> bytes:
    """Render a Plotly figure to PNG, SVG or PDF bytes as ``preset`` prints it (a PDF page is
    the preset's width in inches; a PNG has the preset's dpi)."""
    if fmt not in FORMATS:
        raise DynconfError(f"unknown image format {fmt!r}; choose from {', '.join(FORMATS)}")
    p = get_preset(preset)
    out_fig = export_figure(fig, p)
    opts = {
        "format": fmt,
        "width": out_fig.layout.width,
        "height": out_fig.layout.height,
        "scale": p.png_scale if fmt == "png" else 1,
    }
    with _KALEIDO_LOCK:
        kaleido = _kaleido()
        try:
            from kaleido.errors import ChromeNotFoundError
        except ImportError:  # pragma: no cover - older kaleido 1.x layouts
            ChromeNotFoundError = RuntimeError  # noqa: N806
        try:
            out = kaleido.calc_fig_sync(out_fig.to_dict(), opts=opts)
        except ChromeNotFoundError as exc:
            raise DynconfError(
                "static export needs Chromium (Debian: apt-get install chromium)"
            ) from exc
    if isinstance(out, BaseException):  # the sync server hands exceptions back as values
        raise DynconfError(f"image export failed: {out}")
    return bytes(out)


def evaluate_view(
    run: Any,
    split: str,
    threshold: float,
    decoder: str = "paper",
    kappa: float | None = None,
) -> tuple[Any, Any]:
    """(Decoded, PolicyResult) of one run, split, decoder and threshold: what the figure
    pack reports and the app's LaTeX button writes (one computation for both)."""
    if split not in run.split_names:
        raise DynconfError(
            f"run {run.name} has no split {split!r} (it has {', '.join(run.split_names)})"
        )
    sp = run.split(split)
    dec = decode(sp, decoder=decoder, kappa=kappa)
    neurons = run.meta.get("neurons")
    return dec, metrics.evaluate(dec, threshold=threshold, spikes=sp.spikes, neurons=neurons)


def table_tex(
    run: Any,
    split: str,
    threshold: float,
    decoder: str = "paper",
    kappa: float | None = None,
) -> str:
    """The pack's metrics.tex for one view, as the app's "LaTeX table" button writes it."""
    _, res = evaluate_view(run, split, threshold, decoder, kappa)
    context = {"split": split, "decoder": decoder, "kappa": kappa, "threshold": threshold}
    return run_table(run, res, context)


def collect_charts(
    run: Any,
    split: str,
    threshold: float | None = None,
    decoder: str = "paper",
    kappa: float | None = None,
    calibration: str | None = None,
    tolerance: float = 0.0,
) -> tuple[list[Chart], Any, dict[str, Any]]:
    """Compute and draw the standard figure set of one run at one threshold.

    ``threshold`` None means: the one chosen on ``calibration`` (method.md section 4), or
    0.9 when the run has no calibration split. With ``calibration``, the set also holds the
    threshold selection and every exit policy fitted there (``policy_fronts``: each one's
    front on ``split`` and its chosen point). Returns (charts, PolicyResult, context).
    """
    if split not in run.split_names:
        raise DynconfError(
            f"run {run.name} has no split {split!r} (it has {', '.join(run.split_names)})"
        )
    sp = run.split(split)
    selection = None
    if calibration is not None:
        if calibration not in run.split_names:
            raise DynconfError(f"run {run.name} has no calibration split {calibration!r}")
        dec = decode(sp, decoder=decoder, kappa=kappa)
        cal_dec = decode(run.split(calibration), decoder=decoder, kappa=kappa)
        selection = metrics.select_threshold(cal_dec, dec, tolerance=tolerance)
    if threshold is None:
        threshold = selection.threshold if selection is not None else FALLBACK_THRESHOLD
    dec, res = evaluate_view(run, split, threshold, decoder, kappa)
    base = metrics.baseline_curve(dec)
    sweep = metrics.sweep(dec)
    capped = metrics.capped_curve(dec, threshold)
    oracle = metrics.oracle_curve(dec, variant="first_correct", never_correct="cap")
    stays = metrics.oracle_curve(dec, variant="stays_correct", never_correct="cap")
    # Titles name what a chart shows, never the run (an internal id): the caption of
    # metrics.tex says which run, split, decoder and threshold. They are the app pages'
    # titles, so a chart downloaded in the app is this very figure.
    charts = [
        figures.accuracy_latency(base, res, capped=capped, oracle=oracle, sweep=sweep),
        figures.exit_histogram(res, run.T_max),
        figures.exit_scatter(res, sp.labels, sp.ids, run.classes),
        figures.threshold_response(sweep, res),
        figures.oracle_bound(
            base,
            {
                "oracle, first correct (never-correct run to cap)": oracle,
                "oracle, first correct (never-correct stop at step 1)": metrics.oracle_curve(
                    dec, variant="first_correct", never_correct="step1"
                ),
                "oracle, stays correct": stays,
            },
            policy=capped,
            current=res,
        ),
    ]
    if selection is not None:
        charts.append(
            figures.pareto_selection(
                selection, baseline_accuracy=selection.calibration.baseline_accuracy
            )
        )
    if calibration is not None:
        charts.append(
            _policy_chart(run, calibration, split, decoder, kappa, tolerance, base, stays)
        )
    by_t = figures.accuracy_by_T(run.meta, split)
    if by_t is not None:
        charts.append(by_t)
    context = {
        "run": run.name,
        "split": split,
        "decoder": decoder,
        "kappa": kappa,
        "threshold": threshold,
        "calibration": calibration,
        "tolerance": tolerance,
    }
    return charts, res, context


def _policy_chart(run, calibration, split, decoder, kappa, tolerance, baseline, oracle) -> Chart:
    """Every registered policy fitted on ``calibration`` (as the Policies page and
    ``dynconf policies`` fit them), its front on ``split`` and its chosen point."""
    cal_fn, test_fn = split_decoder(run.split(calibration)), split_decoder(run.split(split))
    sp = run.split(split)
    comparison = compare_policies(
        cal_fn,
        test_fn,
        tolerance,
        test_spikes=sp.spikes,
        neurons=run.meta.get("neurons"),
        decoder=decoder,
        kappa=kappa,
    )
    fronts = policy_fronts(comparison, cal_fn, test_fn)
    return figures.policy_fronts(baseline, fronts, oracle=oracle)


def pack_files(
    run: Any,
    charts: Sequence[Chart],
    result: Any,
    context: dict[str, Any],
    formats: Iterable[str] = FORMATS,
    preset: str | Preset = DEFAULT_PRESET,
) -> dict[str, bytes]:
    """File name -> contents for every chart (images + CSV), the LaTeX table and metrics."""
    p = get_preset(preset)
    files: dict[str, bytes] = {}
    for chart in charts:
        for fmt in formats:
            files[f"{chart.key}.{fmt}"] = figure_bytes(chart.figure, fmt, p)
        files[f"{chart.key}.csv"] = chart.csv()
    files["metrics.tex"] = run_table(run, result, context).encode()
    summary = {
        "context": {**context, "preset": p.name},
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
