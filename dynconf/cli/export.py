"""Static export: figures as PNG/SVG/PDF (kaleido), their data as CSV, a LaTeX table.

The `export` command: argparse over dynconf.report.export, which does the work (and which
the app's figure pack uses too). kaleido is imported only when the first image is drawn.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dynconf.cli.metrics import finite_float, run_path, unit_float
from dynconf.core.decoders import decoder_names
from dynconf.core.selection import calibration_split, default_split
from dynconf.core.store import load_run
from dynconf.report import export
from dynconf.report.presets import DEFAULT_PRESET, PRESETS, preset_names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="run directory (e.g. cached_runs/digits)")
    parser.add_argument("--out", required=True, help="folder to write the figures into")
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


def run_command(args: argparse.Namespace) -> dict[str, Any]:
    formats = export.parse_formats(args.formats)
    run = load_run(run_path(args.run_dir))
    split = args.split or default_split(run)
    calibration = args.calibration or calibration_split(run, split)
    charts, result, context = export.collect_charts(
        run,
        split,
        threshold=args.threshold,
        decoder=args.decoder,
        kappa=args.kappa,
        calibration=calibration,
        tolerance=args.tolerance,
    )
    files = export.pack_files(run, charts, result, context, formats, preset=args.preset)
    written = export.write_files(args.out, files)
    return {
        "out": str(Path(args.out)),
        "files": sorted(str(path) for path in written),
        "charts": [c.key for c in charts],
        "preset": args.preset,
        **context,
        "metrics": result.to_dict(per_sample=False),
    }
