"""The `policies` command: every exit policy fitted on calibration and compared on a split.

`python -m dynconf policies RUN --calibration-split calibration --eval-split test
[--tolerance 0] [--decoder paper] [--kappa K|auto] [--policy NAME ...] --json` fits each
registered policy on the calibration split with the same rule (the fastest whose accuracy is
at least the T_max baseline minus the tolerance), reports it on the evaluation split with the
latency against the threshold rule and the share of the gap to the stays-correct oracle it
closes (dynconf.core.policies.comparison). Without --json it prints a table. Spikes and
synaptic operations at exit are reported on both splits where the run holds them. Fits are
kept in the analysis cache (dynconf.core.analysis_cache; --no-cache skips it), keyed by the
run's stamp, so a second run of the command only evaluates.
"""

from __future__ import annotations

import argparse
from typing import Any

from dynconf.cli.metrics import run_path
from dynconf.core.analysis_cache import AnalysisCache
from dynconf.core.decoders import decoder_names, kappa_label
from dynconf.core.policies import POLICIES
from dynconf.core.policies.comparison import FitStore, compare_policies, split_decoder
from dynconf.core.selection import calibration_split, default_split
from dynconf.core.store import load_run, run_stamp
from dynconf.errors import DynconfError


def _kappa(value: str):
    if value == "auto":
        return "auto"
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"kappa must be a number or 'auto', got {value!r}"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="run directory (e.g. cached_runs/cifar10_resnet20)")
    parser.add_argument(
        "--calibration-split", default=None, help="split to fit on (default: calibration/train)"
    )
    parser.add_argument("--eval-split", default=None, help="split to report on (default: test)")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.0,
        help="accuracy a policy may give up vs the T_max baseline on calibration, as a fraction",
    )
    parser.add_argument("--decoder", default="paper", choices=decoder_names())
    parser.add_argument(
        "--kappa",
        type=_kappa,
        default=None,
        help="the decoder's kappa (default T_max), or 'auto': chosen on calibration with C",
    )
    parser.add_argument(
        "--policy",
        action="append",
        choices=tuple(POLICIES),
        default=None,
        help="only this policy (repeatable; default: every registered one)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="fit every policy again (ignore cached fits)"
    )


def run_command(args: argparse.Namespace) -> dict[str, Any]:
    run = load_run(run_path(args.run_dir))
    split = args.eval_split or default_split(run)
    cal = args.calibration_split or calibration_split(run, split)
    if cal is None:
        raise DynconfError(f"run {run.name} has no calibration split besides '{split}'")
    if cal == split:
        raise DynconfError("the calibration and evaluation splits must differ")
    neurons = run.meta.get("neurons")
    store = None if args.no_cache else FitStore(AnalysisCache(), (run_stamp(run.path), cal))
    comparison = compare_policies(
        split_decoder(run.split(cal), neurons),
        split_decoder(run.split(split), neurons),
        args.tolerance,
        names=args.policy,
        decoder=args.decoder,
        kappa=args.kappa,
        store=store,
    )
    result = {
        "run": run.name,
        "calibration_split": cal,
        "eval_split": split,
        **comparison.to_dict(),
    }
    return result


def format_text(result: dict) -> str:
    """The comparison as a fixed-width table (the command's output without --json)."""
    rows = [("policy", "parameters", "cal acc %", "test acc %", "latency", "vs thr", "gap")]
    for p in result["policies"]:
        t = p["test"]
        rows.append(
            (
                p["name"],
                p["description"],
                f"{100 * p['calibration']['accuracy']:.2f}",
                f"{100 * t['accuracy']:.2f}",
                f"{t['mean_latency']:.2f}",
                "" if t["latency_vs_threshold"] is None else f"{t['latency_vs_threshold']:.3f}",
                "" if t["gap_closed"] is None else f"{100 * t['gap_closed']:.1f}%",
            )
        )
    o = result["oracle"]
    rows.append(("oracle", "stays correct", "", f"{100 * o['accuracy']:.2f}",
                 f"{o['mean_latency']:.2f}", "", ""))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    T = result["policies"][0]["test"]["T_max"] if result["policies"] else None
    head = (
        f"{result['run']}: fitted on {result['calibration_split']}, reported on "
        f"{result['eval_split']}, decoder {result['decoder']}"
    )
    if T is not None:
        head += f" ({kappa_label(result['decoder'], result['kappa'], T) or 'no kappa'})"
    lines.insert(0, head)
    for name, why in result["skipped"].items():
        lines.append(f"skipped {name}: {why}")
    return "\n".join(lines)
