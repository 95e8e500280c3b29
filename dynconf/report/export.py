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

from dynconf.core import metrics
from dynconf.core.atomic import write_bytes_atomic
from dynconf.core.decoders import decode
from dynconf.core.policies.comparison import compare_policies, policy_fronts, split_decoder
from dynconf.errors import DynconfError
from dynconf.report import figures
from dynconf.report.latex import decoder_text, run_table
from dynconf.report.style import EXPORT_HEIGHT, EXPORT_WIDTH, Chart

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


def figure_bytes(fig: Any, fmt: str, width: int = EXPORT_WIDTH, height: int | None = None) -> bytes:
    """Render a Plotly figure to PNG, SVG or PDF bytes."""
    if fmt not in FORMATS:
        raise DynconfError(f"unknown image format {fmt!r}; choose from {', '.join(FORMATS)}")
    height = height or fig.layout.height or EXPORT_HEIGHT
    # PNG at twice the size reads sharply on slides; vector formats do not need it.
    opts = {"format": fmt, "width": width, "height": height, "scale": 2 if fmt == "png" else 1}
    with _KALEIDO_LOCK:
        kaleido = _kaleido()
        try:
            from kaleido.errors import ChromeNotFoundError
        except ImportError:  # pragma: no cover - older kaleido 1.x layouts
            ChromeNotFoundError = RuntimeError  # noqa: N806
        try:
            out = kaleido.calc_fig_sync(fig.to_dict(), opts=opts)
        except ChromeNotFoundError as exc:
            raise DynconfError(
                "static export needs Chromium (Debian: apt-get install chromium)"
            ) from exc
    if isinstance(out, BaseException):  # the sync server hands exceptions back as values
        raise DynconfError(f"image export failed: {out}")
    return bytes(out)


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
    dec = decode(sp, decoder=decoder, kappa=kappa)
    selection = None
    if calibration is not None:
        if calibration not in run.split_names:
            raise DynconfError(f"run {run.name} has no calibration split {calibration!r}")
        cal_dec = decode(run.split(calibration), decoder=decoder, kappa=kappa)
        selection = metrics.select_threshold(cal_dec, dec, tolerance=tolerance)
    if threshold is None:
        threshold = selection.threshold if selection is not None else FALLBACK_THRESHOLD
    neurons = run.meta.get("neurons")
    res = metrics.evaluate(dec, threshold=threshold, spikes=sp.spikes, neurons=neurons)
    base = metrics.baseline_curve(dec)
    sweep = metrics.sweep(dec)
    capped = metrics.capped_curve(dec, threshold)
    oracle = metrics.oracle_curve(dec, variant="first_correct", never_correct="cap")
    stays = metrics.oracle_curve(dec, variant="stays_correct", never_correct="cap")
    where = f"{run.name}, {split}, {decoder_text(decoder, kappa, run.T_max)}"
    charts = [
        figures.accuracy_latency(
            base,
            res,
            capped=capped,
            oracle=oracle,
            sweep=sweep,
            title=f"Accuracy vs mean latency ({where})",
        ),
        figures.exit_histogram(res, run.T_max, title=f"Exit steps at C = {threshold:.4g}"),
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
            title=f"Upper bound of dynamic exit ({run.name}, {split})",
        ),
    ]
    if selection is not None:
        charts.append(
            figures.pareto_selection(
                selection,
                baseline_accuracy=selection.calibration.baseline_accuracy,
                title=f"Threshold selection on {calibration} (tolerance {100 * tolerance:.2g} pp)",
            )
        )
    if calibration is not None:
        charts.append(
            _policy_chart(run, calibration, split, decoder, kappa, tolerance, base, stays, where)
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


def _policy_chart(
    run, calibration, split, decoder, kappa, tolerance, baseline, oracle, where
) -> Chart:
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
    return figures.policy_fronts(
        baseline,
        fronts,
        oracle=oracle,
        title=f"Exit policy fronts ({where})",
    )


def pack_files(
    run: Any,
    charts: Sequence[Chart],
    result: Any,
    context: dict[str, Any],
    formats: Iterable[str] = FORMATS,
) -> dict[str, bytes]:
    """File name -> contents for every chart (images + CSV), the LaTeX table and metrics."""
    files: dict[str, bytes] = {}
    for chart in charts:
        for fmt in formats:
            files[f"{chart.key}.{fmt}"] = figure_bytes(chart.figure, fmt)
        files[f"{chart.key}.csv"] = chart.csv()
    files["metrics.tex"] = run_table(run, result, context).encode()
    summary = {"context": context, "metrics": result.to_dict(per_sample=False)}
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
