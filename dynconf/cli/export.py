"""Static export: figures as PNG/SVG/PDF (kaleido), their data as CSV, a LaTeX table.

The `export` command: argparse over dynconf.report.export, which does the work (and which
the app's figure pack uses too). kaleido is imported only when images are asked for: the
browser then starts on a thread of its own while the run is analysed, and every figure's images
render as soon as it is built, while the next figures are computed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dynconf.cli import html_export
from dynconf.cli.metrics import finite_float, run_path, unit_float
from dynconf.core.decoders import decoder_names
from dynconf.core.formatting import pct
from dynconf.core.selection import calibration_split, default_split
from dynconf.core.store import load_run
from dynconf.errors import DynconfError
from dynconf.report import export, registry, render
from dynconf.report.presets import DEFAULT_PRESET, PRESETS, preset_names
from dynconf.report.viewdata import make_view


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="run directory (e.g. cached_runs/digits)")
    parser.add_argument("--out", default=None, help="folder to write the figures into")
    parser.add_argument("--split", default=None, help="split to evaluate (default: test)")
    parser.add_argument(
        "--threshold",
        type=unit_float,
        default=None,
        help="confidence threshold C (default: chosen on the calibration split, else 0.9)",
    )
    parser.add_argument(
        "--decoder",
        default="paper",
        choices=decoder_names(),
        help="confidence decoder (default: paper)",
    )
    parser.add_argument(
        "--kappa", type=finite_float, default=None, help="decoder scale (default: T_max)"
    )
    parser.add_argument(
        "--calibration",
        default=None,
        help="split to choose the threshold on (default: calibration/train split if present)",
    )
    parser.add_argument(
        "--tolerance",
        type=finite_float,
        default=0.0,
        help="accuracy the chosen threshold may give up vs the baseline, as a fraction",
    )
    parser.add_argument(
        "--formats", default=",".join(export.FORMATS), help="comma-separated: png,svg,pdf"
    )
    parser.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        choices=preset_names(),
        help="figure size and type: "
        + "; ".join(f"{n} ({PRESETS[n].description}, {PRESETS[n].width_in:g} in)" for n in PRESETS)
        + f" (default: {DEFAULT_PRESET})",
    )
    parser.add_argument(
        "--samples",
        type=id_list,
        default=(),
        help="sample ids (comma-separated) to draw as the Samples page does: confidence, "
        "class probabilities, input image (when the dataset is there) and the picker",
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        default=(),
        metavar="RUN",
        help="other runs (directories or names) to draw on the Compare page's plane with this "
        "one, each on its default split with this decoder and kappa",
    )
    parser.add_argument(
        "--steps",
        type=id_list,
        default=(),
        help="classroom steps t (comma-separated) to draw the Classroom grid, the watched "
        "sample's confidence and the answers so far at",
    )
    parser.add_argument(
        "--policy",
        default=None,
        help="the policy whose exits the Policies figures draw (default: the first fitted)",
    )
    html_export.add_arguments(parser)


def id_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated whole numbers >= 0 ("3,17,250")."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of ids") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers >= 0")
    return values


def run_command(args: argparse.Namespace) -> dict[str, Any]:
    if args.out is None and getattr(args, "html", None) is None:
        raise DynconfError("give --out FOLDER (figures), --html FILE (the report), or both")
    formats = export.parse_formats(args.formats)
    run = load_run(run_path(args.run_dir))
    # Chromium starts while the run is decoded and analysed. It is stopped here, started or
    # not, before the process exits: a browser still starting when an error ends the
    # command would outlive its temporary profile.
    starting = render.start_renderer() if args.out is not None else None
    try:
        split = args.split or default_split(run)
        calibration = args.calibration or calibration_split(run, split)
        result: dict[str, Any] = {}
        if args.out is not None:
            result.update(_figures(args, run, split, calibration, formats))
        if getattr(args, "html", None) is not None:
            result.update(html_export.run(args, run, split, calibration))
        return result
    finally:
        if starting is not None:
            starting.join(timeout=120)
            render.close_renderer()


def _figures(args, run, split: str, calibration: str | None, formats) -> dict[str, Any]:
    """Every figure of every page (the ones asked for by --samples, --compare, --steps
    included) with its CSV, metrics.tex and metrics.json, into --out."""
    view = make_view(run, split, args.decoder, args.kappa)
    others = []
    for name in args.compare:
        other = load_run(run_path(name))
        others.append(make_view(other, default_split(other), args.decoder, args.kappa))
    bad = [t for t in args.steps if not 1 <= t <= run.T_max]
    if bad:
        raise DynconfError(f"--steps: {bad[0]} is not a step of this run (1..{run.T_max})")
    for sample_id in args.samples:  # refused before any figure is built or rendered
        registry.sample_position(view, sample_id)
    images = export.ImageBatch(formats, args.preset)  # each figure renders once it is built
    charts, result, context = export.collect_figures(
        view,
        threshold=args.threshold,
        calibration=calibration,
        tolerance=args.tolerance,
        samples=tuple(args.samples),
        compare=others,
        steps=tuple(args.steps),
        policy=args.policy,
        on_chart=images.add,
    )
    files = export.pack_files(
        run, charts, result, context, formats, preset=args.preset, images=images
    )
    written = export.write_files(args.out, files)
    return {
        "out": str(Path(args.out)),
        "files": sorted(str(path) for path in written),
        "charts": [c.key for c in charts],
        "preset": args.preset,
        **context,
        "metrics": result.to_dict(per_sample=False),
    }


def format_text(result: dict[str, Any]) -> str:
    """The summary as the app shows it: C to four digits, kappa named ("kappa = T_max =
    64"), percentages and steps rounded, costs where the run holds them."""
    if "metrics" not in result:  # the report alone
        return "\n".join(f"{k}: {v}" for k, v in result.items())
    m = result["metrics"]
    kappa = result.get("kappa_label") or "no kappa"
    lines = [
        f"wrote {len(result['files'])} files for {len(result['charts'])} figures to "
        f"{result['out']} (preset {result['preset']})",
        f"run {result['run']}, split {result['split']}, decoder {result['decoder']}, {kappa}",
        f"C = {result['threshold']:.4f}"
        + (
            f" (chosen on {result['calibration']}, tolerance {100 * result['tolerance']:g} pp)"
            if result.get("calibration")
            else ""
        ),
        f"accuracy {pct(m['accuracy'])} (at T_max {pct(m['baseline_accuracy'])}), mean "
        f"latency {m['mean_latency']:.2f} steps ({pct(m['latency_reduction'], 1)} fewer)",
    ]
    if m.get("spike_saving") is not None:
        lines.append(f"spikes saved {pct(m['spike_saving'], 1)}")
    if m.get("synops_saving") is not None:
        lines.append(f"synaptic operations saved {pct(m['synops_saving'], 1)}")
    if "html" in result:
        lines.append(f"report {result['html']} ({result['html_bytes']:,} bytes)")
    return "\n".join(lines)
