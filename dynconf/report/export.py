"""Static export: figures as PNG/SVG/PDF (kaleido), their data as CSV, a LaTeX table.

One function, :func:`collect_charts`, decides which figures describe a run at a threshold;
the ``export`` command writes them to a folder and the app's "figure pack" zips the very
same set, so a figure in a paper can be regenerated headless from the run directory alone.

kaleido 1.x drives a Chromium that must already be installed (Debian's ``chromium``); it is
imported lazily and started once per process as a persistent server, because the first
image costs seconds (browser start) and every later one a fraction of a second. Its Chrome
download helpers are never called.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import threading
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dynconf.errors import DynconfError
from dynconf.report import figures

FORMATS = ("png", "svg", "pdf")
MIME = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
    "csv": "text/csv",
    "zip": "application/zip",
    "tex": "application/x-tex",
}

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


def figure_bytes(
    fig: Any, fmt: str, width: int = figures.EXPORT_WIDTH, height: int | None = None
) -> bytes:
    """Render a Plotly figure to PNG, SVG or PDF bytes."""
    if fmt not in FORMATS:
        raise DynconfError(f"unknown image format {fmt!r}; choose from {', '.join(FORMATS)}")
    height = height or fig.layout.height or figures.EXPORT_HEIGHT
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


# --------------------------------------------------------------------------- LaTeX


def _tex_escape(text: str) -> str:
    repl = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
    return "".join(repl.get(ch, ch) for ch in str(text))


def _fmt(value: Any, spec: str, dash: str = "--") -> str:
    return dash if value is None else format(value, spec)


def headline(result: Any, T_max: int) -> list[tuple[str, str, str]]:
    """(metric, baseline at T_max, Dynamic Confidence) rows of the headline table."""
    d = result.to_dict() if hasattr(result, "to_dict") else dict(vars(result))
    rows = [
        (
            "Accuracy (%)",
            _fmt(100 * d["baseline_accuracy"], ".2f"),
            _fmt(100 * d["accuracy"], ".2f"),
        ),
        (
            "Accuracy change (pp)",
            "--",
            _fmt(100 * (d["accuracy"] - d["baseline_accuracy"]), "+.2f"),
        ),
        ("Mean latency (steps)", f"{T_max}", _fmt(d["mean_latency"], ".2f")),
        ("Latency reduction vs $T_{max}$ (%)", "--", _fmt(100 * d["latency_reduction"], ".1f")),
        (
            "Fixed $T$ for the same accuracy",
            _fmt(d.get("iso_accuracy_steps"), "d"),
            _fmt(d["mean_latency"], ".2f"),
        ),
        (
            "Latency reduction vs iso-accuracy $T$ (%)",
            "--",
            _fmt(
                None
                if d.get("latency_reduction_vs_iso") is None
                else 100 * d["latency_reduction_vs_iso"],
                ".1f",
            ),
        ),
    ]
    if d.get("spikes_per_neuron_at_exit") is not None:
        rows.append(
            (
                "Spikes per neuron per image",
                _fmt(d.get("spikes_per_neuron_full"), ".3f"),
                _fmt(d["spikes_per_neuron_at_exit"], ".3f"),
            )
        )
    return rows


def latex_table(result: Any, T_max: int, caption: str, label: str = "tab:dynconf") -> str:
    """A booktabs LaTeX table of the headline metrics (needs \\usepackage{booktabs})."""
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{_tex_escape(caption)}}}",
        rf"\label{{{label}}}",
        r"\begin{tabular}{lrr}",
        r"\toprule",
        rf" & Baseline ($T={T_max}$) & Dynamic Confidence ($C={result.threshold:.4g}$) \\",
        r"\midrule",
    ]
    for name, base, dc in headline(result, T_max):
        # Row names carry intentional math ($T_{max}$); only the percent sign needs escaping.
        lines.append(rf"{name.replace('%', chr(92) + '%')} & {base} & {dc} \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the chart set


def default_split(run: Any) -> str:
    return "test" if "test" in run.split_names else run.split_names[0]


def calibration_split(run: Any, split: str) -> str | None:
    """The split thresholds are chosen on: never the evaluated split, never test."""
    for name in ("calibration", "calib", "val", "validation", "train"):
        if name in run.split_names and name != split:
            return name
    return None


def collect_charts(
    run: Any,
    split: str,
    threshold: float | None = None,
    decoder: str = "paper",
    kappa: float | None = None,
    calibration: str | None = None,
    tolerance: float = 0.0,
) -> tuple[list[figures.Chart], Any, dict[str, Any]]:
    """Compute and draw the standard figure set of one run at one threshold.

    ``threshold`` None means: the one chosen on ``calibration`` (method.md section 4), or
    0.9 when the run has no calibration split. Returns (charts, PolicyResult, context).
    """
    from dynconf.core import metrics
    from dynconf.core.decoders import decode

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
        threshold = selection.threshold if selection is not None else 0.9
    neurons = run.meta.get("neurons")
    res = metrics.evaluate(dec, threshold=threshold, spikes=sp.spikes, neurons=neurons)
    base = metrics.baseline_curve(dec)
    sweep = metrics.sweep(dec)
    capped = metrics.capped_curve(dec, threshold)
    oracle = metrics.oracle_curve(dec, variant="first_correct", never_correct="cap")
    where = f"{run.name}, {split}, decoder {decoder}"
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
                "oracle, stays correct": metrics.oracle_curve(
                    dec, variant="stays_correct", never_correct="cap"
                ),
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


def _caption(run: Any, context: dict[str, Any]) -> str:
    kappa = context["kappa"] if context["kappa"] is not None else run.T_max
    kap = f", kappa = {kappa:g}" if context["decoder"] == "paper" else ""
    return (
        f"Dynamic Confidence on {run.name} ({run.meta.get('dataset', '?')}, "
        f"{run.meta.get('model', '?')}), {context['split']} split, decoder {context['decoder']}"
        f"{kap}, threshold C = {context['threshold']:.4g}."
    )


def pack_files(
    run: Any,
    charts: Sequence[figures.Chart],
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
    label = "tab:dynconf-" + "".join(ch if ch.isalnum() else "-" for ch in run.name)
    files["metrics.tex"] = latex_table(result, run.T_max, _caption(run, context), label).encode()
    summary = {"context": context, "metrics": result.to_dict(per_sample=False)}
    files["metrics.json"] = (json.dumps(summary, indent=2) + "\n").encode()
    return files


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def parse_formats(text: str) -> tuple[str, ...]:
    fmts = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise DynconfError(
            f"--formats: unknown format {', '.join(bad) or '(none)'}; choose from "
            f"{', '.join(FORMATS)}"
        )
    return fmts


# --------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="run directory (e.g. cached_runs/digits)")
    parser.add_argument("--out", required=True, help="folder to write the figures into")
    parser.add_argument("--split", default=None, help="split to evaluate (default: test)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="confidence threshold C (default: chosen on the calibration split, else 0.9)",
    )
    parser.add_argument("--decoder", default="paper", help="confidence decoder (default: paper)")
    parser.add_argument("--kappa", type=float, default=None, help="paper decoder's kappa")
    parser.add_argument(
        "--calibration",
        default=None,
        help="split to choose the threshold on (default: calibration/train split if present)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.0,
        help="accuracy the chosen threshold may give up vs the baseline, as a fraction",
    )
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated: png,svg,pdf")


def run_command(args: argparse.Namespace) -> dict[str, Any]:
    from dynconf.core.store import load_run

    formats = parse_formats(args.formats)
    run = load_run(args.run_dir)
    split = args.split or default_split(run)
    calibration = args.calibration or calibration_split(run, split)
    charts, result, context = collect_charts(
        run,
        split,
        threshold=args.threshold,
        decoder=args.decoder,
        kappa=args.kappa,
        calibration=calibration,
        tolerance=args.tolerance,
    )
    files = pack_files(run, charts, result, context, formats)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        path = out / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        written.append(str(path))
    return {
        "out": str(out),
        "files": sorted(written),
        "charts": [c.key for c in charts],
        **context,
        "metrics": result.to_dict(per_sample=False),
    }
