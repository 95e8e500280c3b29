"""Command line: `python -m dynconf CMD ... [--json]`.

Metric commands (import, info, evaluate, oracle, sweep, select) run on cached runs with numpy
only. train / simulate / export live in their own modules, imported only when that command
runs (so `--help` and the metric commands never import torch or kaleido); each module provides
add_arguments(parser) and run_command(args) -> dict.

Output contract: with --json exactly one JSON object on stdout; without it a short summary.
Errors: one line on stderr, exit status 2 for bad input (any DynconfError, bad arguments),
1 for anything unexpected (set DYNCONF_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from dynconf import __version__
from dynconf.errors import DynconfError

LAZY_COMMANDS = {
    "train": ("dynconf.engine.train", "train a QCFS ANN (needs torch)"),
    "simulate": (
        "dynconf.engine.simulate",
        "simulate a checkpoint as an SNN into a run (needs torch)",
    ),
    "export": ("dynconf.report.export", "export figures, CSV and a LaTeX table of a run"),
    "ann": (
        "dynconf.engine.levels",
        "ANN accuracy at more QCFS levels, an SNN stand-in (needs torch)",
    ),
}
RUNS_ROOT = Path("cached_runs")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit status 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


# --------------------------------------------------------------------------- helpers


def _run_path(value: str) -> Path:
    """A run directory; a bare name falls back to cached_runs/<name>."""
    path = Path(value)
    if not path.exists() and len(path.parts) == 1 and (RUNS_ROOT / value).exists():
        return RUNS_ROOT / value
    return path


def _load(args):
    from dynconf.core.store import load_run

    return load_run(_run_path(args.run_dir))


def _decode(run, split: str, args):
    from dynconf.core.decoders import decode

    return decode(run.split(split), decoder=args.decoder, kappa=args.kappa)


def _thresholds(value: str | None):
    """None -> default grid; "200" -> a grid of about 200; "0.5,0.9" -> exactly those."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        n = int(text)
        if n < 2:
            raise DynconfError("--thresholds N needs N >= 2 (write 1.0 for one threshold)")
        return n
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise DynconfError(f"--thresholds: {value!r} is not a count or a comma list") from None
    if not values or any(np.isnan(values)):
        raise DynconfError("--thresholds: give a count or a comma-separated list of numbers")
    return np.asarray(values)


def _grid(dec, spec):
    from dynconf.core import metrics

    if spec is None or isinstance(spec, int):
        return metrics.default_thresholds(dec, 1000 if spec is None else spec)
    return spec


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _add_decoder_args(p) -> None:
    from dynconf.core.decoders import DECODERS

    p.add_argument("--decoder", default="paper", choices=DECODERS, help="default: paper")
    p.add_argument("--kappa", type=float, default=None, help="decoder scale (default: T_max)")


# --------------------------------------------------------------------------- commands


def cmd_import(args) -> tuple[dict, str]:
    from dynconf.core.store import disk_bytes, import_outputs, make_created

    start = time.perf_counter()
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    kappas = [float(x) for x in args.kappas.split(",")] if args.kappas else None
    run = import_outputs(
        args.outputs,
        args.out,
        split=args.split,
        cumulative=args.cumulative,
        labels_path=args.labels,
        dataset=args.dataset,
        model=args.model,
        classes=classes,
        storage=args.storage,
        topk=args.topk,
        topk_kappas=kappas,
        dtype=args.dtype,
        neurons=args.neurons,
        created=make_created(command=shlex.join(["python", "-m", "dynconf", *args.argv])),
        overwrite=args.overwrite,
    )
    sp = run.split(args.split)
    out = {
        "run": str(run.path),
        "split": args.split,
        "N": sp.N,
        "T_max": run.T_max,
        "K": run.K,
        "storage": run.storage,
        "splits": dict(run.meta["splits"]),
        "bytes": disk_bytes(run)[args.split],
        "seconds": round(time.perf_counter() - start, 3),
    }
    text = (
        f"imported {sp.N} samples as split '{args.split}' of {run.path} "
        f"(T_max={run.T_max}, K={run.K}, storage {run.storage}, {out['bytes']:,} bytes)"
    )
    return out, text


def _final_prediction(outputs) -> np.ndarray:
    """argmax S_T, summing step by step in float64 like the decoders (same ties), in slices
    so that an ImageNet-sized memory map is never loaded whole."""
    T, N, K = outputs.shape
    final = np.empty(N, np.int64)
    block = max(1, (1 << 22) // K)
    for lo in range(0, N, block):
        S = np.zeros((min(N, lo + block) - lo, K))
        for t in range(T):
            S += outputs[t, lo : lo + block]
        final[lo : lo + block] = S.argmax(axis=1)
    return final


def cmd_info(args) -> tuple[dict, str]:
    from dynconf.core.store import disk_bytes

    run = _load(args)
    sizes = disk_bytes(run)
    splits = {}
    for name, sp in run.splits.items():
        if sp.outputs is not None:
            final = _final_prediction(sp.outputs)
        else:
            final = np.asarray(sp.topk_indices[-1, :, 0])
        splits[name] = {
            "N": sp.N,
            "bytes": sizes[name],
            "spikes": sp.spikes is not None,
            "ids": sp.ids is not None,
            "baseline_accuracy": float((final == np.asarray(sp.labels)).mean()),
        }
    out = {"run": str(run.path), "name": run.name, "meta": run.meta, "splits": splits}
    lines = [
        f"{run.name}: {run.meta['dataset']} / {run.meta['model']}, T_max={run.T_max}, "
        f"K={run.K}, storage {run.storage}"
    ]
    for name, s in splits.items():
        lines.append(
            f"  {name}: N={s['N']}, accuracy at T_max {_pct(s['baseline_accuracy'])}, "
            f"{s['bytes']:,} bytes{', spikes' if s['spikes'] else ''}"
        )
    return out, "\n".join(lines)


def cmd_evaluate(args) -> tuple[dict, str]:
    from dynconf.core import metrics

    run = _load(args)
    dec = _decode(run, args.split, args)
    sp = run.split(args.split)
    res = metrics.evaluate(dec, args.threshold, spikes=sp.spikes, neurons=run.meta.get("neurons"))
    out = {
        "run": str(run.path),
        "split": args.split,
        "decoder": dec.decoder,
        "kappa": dec.kappa,
        **res.to_dict(),
        "baseline_curve": metrics.baseline_curve(dec).tolist(),
    }
    iso = "" if res.iso_accuracy_steps is None else f", baseline needs {res.iso_accuracy_steps}"
    text = (
        f"{run.name}/{args.split}, {dec.label}, C={args.threshold:g}: accuracy "
        f"{_pct(res.accuracy)} at {res.mean_latency:.3f} mean steps "
        f"(baseline {_pct(res.baseline_accuracy)} at {run.T_max}{iso}; "
        f"latency -{100 * res.latency_reduction:.1f} %)"
    )
    if res.spike_saving is not None:
        text += f"; spikes -{100 * res.spike_saving:.1f} %"
    return out, text


def cmd_oracle(args) -> tuple[dict, str]:
    from dynconf.core import metrics

    run = _load(args)
    # Oracles use correctness only (argmax S_t), the same under every decoder; "mean" is
    # the one decoder that every storage can provide.
    dec = _decode(run, args.split, argparse.Namespace(decoder="mean", kappa=None))
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
        lines.append(f"  {name}: {_pct(v['accuracy'])} at {v['mean_latency']:.3f} mean steps")
    lines.append(f"  baseline at {main['cap']}: {_pct(out['baseline_accuracy'])}")
    return out, "\n".join(lines)


def cmd_sweep(args) -> tuple[dict, str]:
    from dynconf.core import metrics

    run = _load(args)
    dec = _decode(run, args.split, args)
    sw = metrics.sweep(
        dec, _grid(dec, _thresholds(args.thresholds)), args.acc_slack, args.lat_slack
    )
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
    lines = [
        f"{run.name}/{args.split}, {dec.label}: {len(sw.thresholds)} thresholds, "
        f"{len(front)} on the Pareto front, {int(sw.near_front.sum())} near it"
    ]
    for p in points[:: max(1, len(points) // 10)]:
        lines.append(
            f"  C={p['threshold']:.6g}: {_pct(p['accuracy'])} at {p['mean_latency']:.3f} steps"
        )
    return out, "\n".join(lines)


def cmd_select(args) -> tuple[dict, str]:
    from dynconf.core import metrics

    run = _load(args)
    cal = _decode(run, args.calibration_split, args)
    test = _decode(run, args.eval_split, args)
    grid = _thresholds(args.thresholds)
    sel = metrics.select_threshold(
        cal,
        test,
        tolerance=args.tolerance,
        thresholds=None if grid is None else _grid(cal, grid),
        acc_slack=args.acc_slack,
        lat_slack=args.lat_slack,
        test_spikes=run.split(args.eval_split).spikes,
        neurons=run.meta.get("neurons"),
        cal_spikes=run.split(args.calibration_split).spikes,
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
        f"({_pct(c.accuracy)} at {c.mean_latency:.3f} steps, target {_pct(sel.target_accuracy)})\n"
        f"  on '{args.eval_split}': {_pct(t.accuracy)} at {t.mean_latency:.3f} steps "
        f"(baseline {_pct(t.baseline_accuracy)} at {run.T_max}, "
        f"latency -{100 * t.latency_reduction:.1f} %)\n"
        f"  near-front band: C in [{sel.band[0]:.6g}, {sel.band[1]:.6g}]"
    )
    return out, text


# --------------------------------------------------------------------------- parser


def build_parser(lazy_command: str | None = None) -> argparse.ArgumentParser:
    """The full parser. Only `lazy_command` (if any) has its module imported."""
    parser = _Parser(
        prog="python -m dynconf",
        description="Dynamic Confidence for spiking neural networks: runs, metrics, oracles.",
    )
    parser.add_argument("--version", action="version", version=f"dynconf {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def sub(name: str, help_text: str):
        p = subs.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        return p

    p = sub("import", "import an outputs file (.npz/.npy/.pt) as a split of a run")
    p.add_argument("outputs", help=".npz with outputs [T,N,K], labels [N] (spikes, ids optional)")
    p.add_argument("--out", required=True, help="run directory (created, or a split is added)")
    p.add_argument("--split", default="test")
    p.add_argument("--cumulative", action="store_true", help="outputs are accumulated S_t")
    p.add_argument("--labels", default=None, help="labels .npy (for a bare .npy outputs file)")
    p.add_argument("--dataset", default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--classes", default=None, help="comma-separated class names")
    p.add_argument("--storage", choices=("full", "topk"), default="full")
    p.add_argument("--topk", type=int, default=5, help="k for --storage topk")
    p.add_argument("--kappas", default=None, help="kappas kept by topk (default: T_max)")
    p.add_argument("--dtype", choices=("float16", "float32", "float64"), default=None)
    p.add_argument("--neurons", type=int, default=None, help="hidden neuron count")
    p.add_argument("--overwrite", action="store_true", help="replace an existing split")
    p.set_defaults(func=cmd_import)

    p = sub("info", "describe a run")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_info)

    p = sub("evaluate", "Dynamic Confidence at one threshold")
    p.add_argument("run_dir")
    p.add_argument("--split", default="test")
    p.add_argument("--threshold", type=float, required=True, help="exit when confidence > C")
    _add_decoder_args(p)
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
    p.add_argument("--acc-slack", type=float, default=0.005, help="'near the front' slack")
    p.add_argument("--lat-slack", type=float, default=0.0, help="'near the front' slack (steps)")
    _add_decoder_args(p)
    p.set_defaults(func=cmd_sweep)

    p = sub("select", "choose a threshold on one split, report it on another")
    p.add_argument("run_dir")
    p.add_argument("--calibration-split", default="calibration")
    p.add_argument("--eval-split", default="test")
    p.add_argument("--tolerance", type=float, default=0.0, help="accuracy below baseline allowed")
    p.add_argument("--thresholds", default=None, help="a count (default 1000) or a comma list")
    p.add_argument("--acc-slack", type=float, default=0.005)
    p.add_argument("--lat-slack", type=float, default=0.0)
    _add_decoder_args(p)
    p.set_defaults(func=cmd_select)

    for name, (module_name, help_text) in LAZY_COMMANDS.items():
        if name != lazy_command:
            sub(name, f"{help_text} [run `{name} --help` for options]")
            continue
        module = _import_command_module(name, module_name)
        p = sub(name, (module.__doc__ or help_text).strip().splitlines()[0])
        module.add_arguments(p)
        p.set_defaults(func=module.run_command, lazy=True)
    return parser


def _import_command_module(command: str, module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise DynconfError(
                f"command '{command}' is not available in this checkout ({module_name} missing)"
            ) from None
        raise DynconfError(
            f"command '{command}' needs the package '{exc.name}', which is not installed"
        ) from None


def _find_command(argv: list[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def _summary(result: dict) -> str:
    """Human text for a lazy command's dict result."""
    return "\n".join(f"{k}: {v}" for k, v in result.items() if not isinstance(v, (list, dict)))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        command = _find_command(argv)
        parser = build_parser(command if command in LAZY_COMMANDS else None)
        args = parser.parse_args(argv)
        args.argv = argv  # for the "created" record of commands that write runs
        if getattr(args, "lazy", False):
            result = args.func(args)
            text = _summary(result)
        else:
            result, text = args.func(args)
        if args.json:
            print(json.dumps(result, allow_nan=False))
        else:
            print(text)
        return 0
    except DynconfError as exc:
        sys.stderr.write(f"error: {_one_line(exc)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:
        if os.environ.get("DYNCONF_DEBUG"):
            raise
        sys.stderr.write(
            f"internal error: {type(exc).__name__}: {_one_line(exc)} "
            "(set DYNCONF_DEBUG=1 for the traceback)\n"
        )
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
