"""Shared pieces of the metric commands (import, info; evaluate, oracle, sweep, select).

The commands live one module per group: cli/runs.py (import, info) and cli/evaluate.py
(evaluate, oracle, sweep, select); ``add_metric_commands`` adds both groups to the parser.
What they share is here: finding a run, decoding a split, and the argument types. Each
``cmd_*`` returns (JSON dict, human text); dynconf/cli/__init__.py prints one of them.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from dynconf.core.roots import find_run
from dynconf.errors import DynconfError


def run_path(value: str) -> Path:
    """A run directory; a bare name is looked up in the runs folders (dynconf.core.roots)."""
    return find_run(value)


def load(args):
    from dynconf.core.store import load_run

    return load_run(run_path(args.run_dir))


def decode_arg(run, split: str, args, decoder: str | None = None):
    """Split ``split`` of ``run`` decoded with --decoder/--kappa (or ``decoder``), its costs
    (spikes, synops, the run's neuron count) with it."""
    from dynconf.core.decoders import decode_split

    if split not in run.split_names:
        raise DynconfError(f"run {run.name} has no split {split!r} ({', '.join(run.split_names)})")
    return decode_split(run, split, decoder or args.decoder, args.kappa)


# A sweep costs memory per threshold (several arrays of N); past this it is not a sweep but
# an allocation that the kernel ends by killing the process.
MAX_THRESHOLDS = 100_000


def parse_thresholds(value: str | None):
    """None -> default grid; "200" -> a grid of about 200; "0.5,0.9" -> exactly those.
    At most MAX_THRESHOLDS either way."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        if len(text) > 12 or int(text) > MAX_THRESHOLDS:
            raise DynconfError(
                f"--thresholds {text}: at most {MAX_THRESHOLDS:,} thresholds per sweep"
            )
        n = int(text)
        if n < 2:
            raise DynconfError("--thresholds N needs N >= 2 (write 1.0 for one threshold)")
        return n
    if text.count(",") >= MAX_THRESHOLDS:
        raise DynconfError(f"--thresholds: at most {MAX_THRESHOLDS:,} thresholds per sweep")
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise DynconfError(f"--thresholds: {value!r} is not a count or a comma list") from None
    if not values or any(np.isnan(values)):
        raise DynconfError("--thresholds: give a count or a comma-separated list of numbers")
    bad = [x for x in values if not 0.0 <= x <= 1.0]
    if bad:
        raise DynconfError(f"--thresholds: {bad[0]:g} is outside [0, 1] (a confidence threshold)")
    return np.asarray(values)


def finite_float(text: str) -> float:
    """argparse type: a float that is not NaN or infinite (JSON has neither, and no threshold,
    kappa or slack means anything there); the accepted range is otherwise unchanged."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: NaN and infinity are not allowed")
    return value


def unit_float(text: str) -> float:
    """argparse type of a confidence threshold C: a finite number in [0, 1]. Every decoder's
    confidence lies in [0, 1], so a C outside it is a typo (C = -2 would exit every sample at
    step 1 and report "latency -0.0 %"), not a setting."""
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is outside [0, 1] (a confidence threshold)")
    return value


def threshold_grid(dec, spec):
    from dynconf.core import metrics

    if spec is None or isinstance(spec, int):
        return metrics.default_thresholds(dec, 1000 if spec is None else spec)
    return spec


def policy_names() -> tuple[str, ...]:
    from dynconf.core.policies import POLICIES

    return tuple(POLICIES)


def add_decoder_args(p) -> None:
    from dynconf.core.decoders import decoder_names

    p.add_argument("--decoder", default="paper", choices=decoder_names(), help="default: paper")
    p.add_argument(
        "--kappa", type=finite_float, default=None, help="decoder scale (default: T_max)"
    )


def distinct_labels(values, digits: int = 6) -> list[str]:
    """Thresholds as short text that tells neighbours apart: 0.99999999 next to 1.0 is
    written with as many significant digits as it takes, not "1" twice; others keep
    ``digits``."""
    values = [float(v) for v in values]

    def label(i: int) -> str:
        near = [values[j] for j in (i - 1, i + 1) if 0 <= j < len(values)]
        for d in range(digits, 18):
            text = f"{values[i]:.{d}g}"
            if all(f"{x:.{d}g}" != text for x in near if x != values[i]):
                return text
        return repr(values[i])

    return [label(i) for i in range(len(values))]
