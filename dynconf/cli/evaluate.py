"""The evaluation commands: evaluate, oracle, sweep, select (numpy only).

`evaluate --policy NAME` runs any registered exit policy. Its parameters come from
--threshold and --param KEY=VALUE; when they do not fix the rule completely the policy is
fitted first on the calibration split (or --fit-split), and what it fitted is printed.
Each ``cmd_*`` returns (JSON dict, human text); dynconf/cli/__init__.py prints one of them.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from dynconf.cli.metrics import (
    add_decoder_args,
    decode_arg,
    distinct_labels,
    finite_float,
    load,
    parse_thresholds,
    policy_names,
    threshold_grid,
    unit_float,
)
from dynconf.core.formatting import pct
from dynconf.core.pareto import band_text, near_text
from dynconf.errors import DynconfError

FILE_MAX_THRESHOLDS = 2_000_000  # a sweep holds a few numbers per threshold (~50 MB here)
FILE_MAX_BYTES = 64 * 2**20


def read_thresholds_file(path: str) -> np.ndarray:
    """--thresholds-file: numbers in [0, 1] separated by commas, spaces or newlines (a list
    too long for a command line). A regular file of at most 64 MiB."""
    import os
    import re
    import stat

    try:
        info = os.stat(path)
    except OSError as exc:
        raise DynconfError(f"--thresholds-file {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise DynconfError(f"--thresholds-file {path}: not a regular file")
    if info.st_size == 0:
        raise DynconfError(f"--thresholds-file {path}: the file is empty")
    if info.st_size > FILE_MAX_BYTES:
        raise DynconfError(f"--thresholds-file {path}: larger than {FILE_MAX_BYTES >> 20} MiB")
    from dynconf.core.safeopen import read_regular_bytes

    def error(message: str) -> DynconfError:  # (a file swapped in since the stat above)
        return DynconfError(f"--thresholds-file {message}")

    text = read_regular_bytes(path, "thresholds file", FILE_MAX_BYTES, error)
    parts = [p for p in re.split(r"[,\s]+", text.decode("utf-8", "replace")) if p]
    if len(parts) > FILE_MAX_THRESHOLDS:
        raise DynconfError(f"--thresholds-file {path}: more than {FILE_MAX_THRESHOLDS:,} values")
    try:
        values = np.array(parts, dtype=np.float64)
    except ValueError:
        bad = next(p for p in parts if not _is_float(p))
        raise DynconfError(f"--thresholds-file {path}: {bad[:40]!r} is not a number") from None
    if not values.size or np.isnan(values).any() or ((values < 0) | (values > 1)).any():
        bad = values[np.isnan(values) | (values < 0) | (values > 1)]
        shown = "no numbers" if not values.size else f"{bad[0]:g} is outside [0, 1]"
        raise DynconfError(f"--thresholds-file {path}: {shown} (a confidence threshold)")
    return values


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def thresholds_arg(args):
    """The sweep's thresholds: --thresholds-file, else --thresholds (None: the default)."""
    if getattr(args, "thresholds_file", None):
        if args.thresholds is not None:
            raise DynconfError("give --thresholds or --thresholds-file, not both")
        return read_thresholds_file(args.thresholds_file)
    return parse_thresholds(args.thresholds)


def parse_value(key: str, text: str):
    """A --param value: an int, a float, a comma list of numbers (a tuple), "none", or text
    (e.g. correction=simes, mode=exact)."""
    text = text.strip()
    if text.lower() == "none":
        return None
    if "," in text:
        return tuple(parse_value(key, part) for part in text.split(",") if part.strip())
    try:
        value = int(text) if text.lstrip("-").isdigit() else float(text)
    except ValueError:
        if not text or not text.replace("_", "").isalnum():
            raise DynconfError(f"--param {key}={text!r}: not a number, list or name") from None
        return text
    if isinstance(value, float) and not math.isfinite(value):
        raise DynconfError(f"--param {key}={text}: must be a finite number")
    return value


def make_policy(args):
    """The exit policy named by --policy, with --threshold and every --param KEY=VALUE."""
    from dynconf.core.policies import get_policy

    cls = get_policy(args.policy)
    names = cls.param_names()
    params = {}
    if args.threshold is not None:
        if "threshold" not in names:
            raise DynconfError(
                f"policy '{cls.name}' has no threshold C; its parameters: {', '.join(names)}"
            )
        params["threshold"] = args.threshold
    for item in args.param or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in names or key == "threshold":
            allowed = ", ".join(k for k in names if k != "threshold") or "none"
            raise DynconfError(
                f"--param {item!r}: policy '{cls.name}' takes KEY=VALUE with KEY in: {allowed}"
            )
        params[key] = parse_value(key, value)
    return cls(**params)


def describe_policy(policy) -> str:
    """ "C=0.9" for the threshold rule, "patience threshold=0.9, k=3" for the others."""
    if policy.name == "threshold":
        return f"C={policy.threshold_value:g}"
    return f"{policy.name} {policy.describe()}"


def _decoded_for(run, split: str, args, policy):
    """The split as the policy reads it: its decoder, with the full outputs where the run
    holds them (per-class probabilities, exact raw gaps)."""
    from dynconf.core.policies import attach_outputs

    dec = decode_arg(run, split, args, policy.decoder)
    return attach_outputs(dec, run.split(split).outputs)


def fit_for_evaluate(run, args, policy) -> str | None:
    """Fit ``policy`` unless its parameters fix it; returns the split fitted on (or None)."""
    from dynconf.core.selection import calibration_split

    if policy.ready():
        return None
    fit_split = args.fit_split or calibration_split(run, args.split)
    if fit_split is None:
        raise DynconfError(
            f"policy '{policy.name}' needs fitting and run {run.name} has no calibration split "
            f"besides '{args.split}': give its parameters or --fit-split"
        )
    if fit_split == args.split:
        raise DynconfError("the fit split and the evaluated split must differ")
    policy.fit(_decoded_for(run, fit_split, args, policy), args.tolerance)
    return fit_split


def cmd_evaluate(args) -> tuple[dict, str]:
    from dynconf.core import metrics

    run = load(args)
    policy = make_policy(args)
    fitted_on = fit_for_evaluate(run, args, policy)
    dec = _decoded_for(run, args.split, args, policy)
    res = policy.evaluate(dec)
    out = {
        "run": str(run.path),
        "split": args.split,
        "decoder": dec.decoder,
        "kappa": dec.kappa,
        **res.to_dict(),
        "fitted_on": fitted_on,
        "tolerance": float(args.tolerance) if fitted_on else None,
        "baseline_curve": metrics.baseline_curve(dec).tolist(),
    }
    iso = "" if res.iso_accuracy_steps is None else f", baseline needs {res.iso_accuracy_steps}"
    text = (
        f"{run.name}/{args.split}, {dec.label}, {describe_policy(policy)}: accuracy "
        f"{pct(res.accuracy)} at {res.mean_latency:.3f} mean steps "
        f"(baseline {pct(res.baseline_accuracy)} at {run.T_max}{iso}; "
        f"latency -{pct(res.latency_reduction, 1)})"
    )
    if res.spike_saving is not None:
        text += f"; spikes -{pct(res.spike_saving, 1)}"
    if res.synops_saving is not None:  # synaptic operations, where the run recorded them
        spent, full = res.synops_per_sample_at_exit, res.synops_per_sample_full
        text += f"; synops -{pct(res.synops_saving, 1)} ({spent:.4g} per sample, full {full:.4g})"
    if fitted_on is not None:
        text = (
            f"fitted on '{fitted_on}' (tolerance {args.tolerance:g}): {policy.describe()}\n"
            + text
        )
    return out, text


def cmd_oracle(args) -> tuple[dict, str]:
    from dynconf.core import metrics

    run = load(args)
    # Oracles use correctness only (argmax S_t), the same under every decoder; "mean" is
    # the one decoder that every storage can provide.
    dec = decode_arg(run, args.split, argparse.Namespace(decoder="mean", kappa=None))
    variants = {}
    for variant in metrics.ORACLE_VARIANTS:
        for never in metrics.NEVER_CORRECT:
            variants[f"{variant}/{never}"] = metrics.oracle(dec, variant, never, args.cap).to_dict()
    main = variants["first_correct/cap"]
    out = {
        "run": str(run.path),
        "split": args.split,
        "cap": main["cap"],
        "accuracy": main["accuracy"],
        "mean_latency": main["mean_latency"],
        "baseline_accuracy": float(metrics.baseline_curve(dec)[main["cap"] - 1]),
        "variants": variants,
    }
    lines = [f"{run.name}/{args.split}, oracles within {main['cap']} steps:"]
    for name, v in variants.items():
        lines.append(f"  {name}: {pct(v['accuracy'])} at {v['mean_latency']:.3f} mean steps")
    lines.append(f"  baseline at {main['cap']}: {pct(out['baseline_accuracy'])}")
    return out, "\n".join(lines)


def cmd_sweep(args) -> tuple[dict, str]:
    from dynconf.core import metrics

    run = load(args)
    dec = decode_arg(run, args.split, args)
    grid = threshold_grid(dec, thresholds_arg(args))
    sw = metrics.sweep(dec, grid, args.acc_slack, args.lat_slack)
    front = np.flatnonzero(sw.on_front)
    points = [
        {
            "threshold": float(sw.thresholds[i]),
            "accuracy": float(sw.accuracy[i]),
            "mean_latency": float(sw.mean_latency[i]),
        }
        for i in front
    ]
    out = {
        "run": str(run.path),
        "split": args.split,
        "decoder": dec.decoder,
        "kappa": dec.kappa,
        **sw.to_dict(),
        "front_points": points,
    }
    n = len(sw.thresholds)
    lines = [
        f"{run.name}/{args.split}, {dec.label}: {n:,} threshold{'' if n == 1 else 's'}, "
        f"{len(front):,} on the Pareto front, {near_text(sw)}"
    ]
    # The text lists the front (every k-th point of a long one) unless --all asks for every
    # threshold; the JSON always carries all of them.
    rows = np.arange(len(sw.thresholds)) if args.all else front[:: max(1, len(front) // 10)]
    if args.all:
        lines.append("every threshold (* = on the front):")
    elif len(rows) < len(front):
        lines.append(f"front only, every {len(front) // 10}th point (--all lists every threshold):")
    else:
        lines.append("front only (--all lists every threshold):")
    labels = distinct_labels(sw.thresholds[rows])
    for label, i in zip(labels, rows, strict=True):
        mark = " *" if args.all and sw.on_front[i] else ""
        lines.append(f"  C={label}: {pct(sw.accuracy[i])} at {sw.mean_latency[i]:.3f} steps{mark}")
    return out, "\n".join(lines)


def cmd_select(args) -> tuple[dict, str]:
    from dynconf.core import metrics

    run = load(args)
    cal = decode_arg(run, args.calibration_split, args)
    test = decode_arg(run, args.eval_split, args)
    grid = parse_thresholds(args.thresholds)
    sel = metrics.select_threshold(
        cal,
        test,
        tolerance=args.tolerance,
        thresholds=None if grid is None else threshold_grid(cal, grid),
        acc_slack=args.acc_slack,
        lat_slack=args.lat_slack,
    )
    out = {
        "run": str(run.path),
        "calibration_split": args.calibration_split,
        "eval_split": args.eval_split,
        **sel.to_dict(),
    }
    c, t = sel.calibration, sel.test
    text = (
        f"{run.name}, {cal.label}: C={sel.threshold:.6g} chosen on '{args.calibration_split}' "
        f"({pct(c.accuracy)} at {c.mean_latency:.3f} steps, target {pct(sel.target_accuracy)})\n"
        f"  on '{args.eval_split}': {pct(t.accuracy)} at {t.mean_latency:.3f} steps "
        f"(baseline {pct(t.baseline_accuracy)} at {run.T_max}, "
        f"latency -{pct(t.latency_reduction, 1)})\n"
        f"  near-front band: C in {band_text(sel.sweep, sel.band, run.T_max, digits=6)}"
    )
    return out, text



def add_commands(sub) -> None:
    """evaluate, oracle, sweep, select; ``sub(name, help)`` makes one subparser."""
    p = sub("evaluate", "Dynamic Confidence (or another exit policy) on one split")
    p.add_argument("run_dir")
    p.add_argument("--split", default="test")
    p.add_argument(
        "--threshold",
        type=unit_float,
        default=None,
        help="exit when confidence > C (0..1); without it the policy is fitted",
    )
    p.add_argument(
        "--policy", default="threshold", choices=policy_names(), help="default: threshold"
    )
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="a parameter of the policy, e.g. --policy patience --param k=3 (repeatable); "
        "a parameter left out is fitted",
    )
    p.add_argument(
        "--fit-split",
        default=None,
        help="split to fit on when a parameter is left out (default: calibration/train)",
    )
    p.add_argument(
        "--tolerance",
        type=finite_float,
        default=0.0,
        help="accuracy the fit may give up vs the T_max baseline on the fit split (fraction)",
    )
    add_decoder_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub("oracle", "oracle exits (first correct, stays correct)")
    p.add_argument("run_dir")
    p.add_argument("--split", default="test")
    p.add_argument("--cap", type=int, default=None, help="largest step (default: T_max)")
    p.set_defaults(func=cmd_oracle)

    p = sub("sweep", "many thresholds and their Pareto front")
    p.add_argument("run_dir")
    p.add_argument("--split", default="test")
    p.add_argument("--thresholds", default=None, help="a count (default 1000) or a comma list")
    p.add_argument(
        "--thresholds-file",
        default=None,
        metavar="PATH",
        help="read the thresholds from a file (separated by commas, spaces or newlines)",
    )
    p.add_argument(
        "--all", action="store_true", help="list every threshold, not only the front (text)"
    )
    p.add_argument("--acc-slack", type=finite_float, default=0.005, help="'near the front' slack")
    p.add_argument(
        "--lat-slack", type=finite_float, default=0.0, help="'near the front' slack (steps)"
    )
    add_decoder_args(p)
    p.set_defaults(func=cmd_sweep)

    p = sub("select", "choose a threshold on one split, report it on another")
    p.add_argument("run_dir")
    p.add_argument("--calibration-split", default="calibration")
    p.add_argument("--eval-split", default="test")
    p.add_argument(
        "--tolerance", type=finite_float, default=0.0, help="accuracy below baseline allowed"
    )
    p.add_argument("--thresholds", default=None, help="a count (default 1000) or a comma list")
    p.add_argument("--acc-slack", type=finite_float, default=0.005)
    p.add_argument("--lat-slack", type=finite_float, default=0.0)
    add_decoder_args(p)
    p.set_defaults(func=cmd_select)
