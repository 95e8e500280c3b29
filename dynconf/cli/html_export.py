"""`dynconf export RUN --html FILE`: the interactive report (dynconf.report.html).

The flags here join the `export` command's: ``--html`` writes the self-contained report,
``--decoders`` and ``--kappas`` list what its selector offers (the first of each opens
first; default the command's ``--decoder`` and ``--kappa``), ``--images`` embeds the samples'
thumbnails (read from ``--data-root`` or $DYNCONF_DATA), and ``--exact`` adds thresholds off
the slider's grid whose exits the file carries.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from dynconf.core.decoders import decoder_names
from dynconf.errors import DynconfError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--html", default=None, metavar="FILE", help="write the interactive report to FILE"
    )
    parser.add_argument(
        "--decoders", default=None, help="with --html: comma-separated decoders to offer"
    )
    parser.add_argument(
        "--kappas", default=None, help="with --html: comma-separated kappas ('tmax': T_max)"
    )
    parser.add_argument(
        "--images", action="store_true", help="with --html: embed the samples' thumbnails"
    )
    parser.add_argument(
        "--data-root", default=None, help="with --images: dataset root (default $DYNCONF_DATA)"
    )
    parser.add_argument(
        "--exact",
        default=None,
        help="with --html: comma-separated thresholds off the grid to carry exact exits for",
    )


def _list(text: str | None, what: str, parse) -> list:
    if text is None:
        return []
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise DynconfError(f"--{what} lists nothing")
    try:
        return [parse(s) for s in items]
    except ValueError as exc:
        raise DynconfError(f"--{what}: {exc}") from None


def _decoder(name: str) -> str:
    if name not in decoder_names():
        raise ValueError(f"unknown decoder {name!r} (choose from {', '.join(decoder_names())})")
    return name


def _kappa(text: str) -> float | None:
    if text.lower() in ("tmax", "t_max", "none", "default"):
        return None
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError(f"kappa must be a positive number, got {text!r}")
    return value


def _threshold(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"thresholds lie in [0, 1], got {text!r}")
    return value


def run(args: argparse.Namespace, run_obj: Any, split: str, calibration: str | None) -> dict:
    """Write the report; what the command prints about it."""
    from dynconf.report import html

    decoders = _list(args.decoders, "decoders", _decoder) or [args.decoder]
    kappas = _list(args.kappas, "kappas", _kappa) or [args.kappa]
    text = html.build_report(
        run_obj,
        split,
        decoders,
        kappas,
        threshold=args.threshold,
        calibration=calibration,
        tolerance=args.tolerance,
        images=args.images,
        data_root=args.data_root,
        exact=_list(args.exact, "exact", _threshold),
        command=shlex.join(["dynconf", *sys.argv[1:]]) if sys.argv[1:] else None,
    )
    path = html.write_report(Path(args.html), text)
    return {"html": str(path), "html_bytes": len(text.encode("utf-8"))}
