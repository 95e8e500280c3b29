"""The metric commands: import, info, evaluate, oracle, sweep, select (numpy only).

Each ``cmd_*`` returns (JSON dict, human text); dynconf/cli/__init__.py prints one of them.
"""

from __future__ import annotations

import argparse
import math
import shlex
import time
from pathlib import Path

import numpy as np

from dynconf.core.formatting import pct
from dynconf.core.store import default_runs_root
from dynconf.errors import DynconfError


def run_path(value: str) -> Path:
    """A run directory; a bare name falls back to the default runs root (cached_runs/)."""
    path = Path(value)
    root = default_runs_root()
    if not path.exists() and len(path.parts) == 1 and (root / value).exists():
        return root / value
    return path


def _load(args):
    from dynconf.core.store import load_run

    return load_run(run_path(args.run_dir))


def _decode(run, split: str, args):
    from dynconf.core.decoders import decode

    return decode(run.split(split), decoder=args.decoder, kappa=args.kappa)


# A sweep costs memory per threshold (several arrays of N); past this it is not a sweep but
# an allocation that the kernel ends by killing the process.
MAX_THRESHOLDS = 100_000


def _thresholds(value: str | None):
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


def _grid(dec, spec):
    from dynconf.core import metrics

    if spec is None or isinstance(spec, int):
        return metrics.default_thresholds(dec, 1000 if spec is None else spec)
    return spec


def _policy_names() -> tuple[str, ...]:
    from dynconf.core.policies import POLICIES

    return tuple(POLICIES)


def _add_decoder_args(p) -> None:
    from dynconf.core.decoders import decoder_names

    p.add_argument("--decoder", default="paper", choices=decoder_names(), help="default: paper")
    p.add_argument(
        "--kappa", type=finite_float, default=None, help="decoder scale (default: T_max)"
    )


# --------------------------------------------------------------------------- commands


def _read_pt(path: Path) -> dict:
    """.pt outputs files need torch, so their reader lives in the engine (imported only then)."""
    try:
        from dynconf.engine.tensor_files import read_tensors
    except ImportError:
        raise DynconfError(f"{path}: reading .pt files needs torch (not installed)") from None
    return read_tensors(path)


def cmd_import(args) -> tuple[dict, str]:
    from dynconf.core.importing import import_outputs
    from dynconf.core.provenance import make_created
    from dynconf.core.store import disk_bytes

    start = time.perf_counter()
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    try:
        kappas = [finite_float(x) for x in args.kappas.split(",")] if args.kappas else None
    except argparse.ArgumentTypeError as exc:
        raise DynconfError(f"--kappas: {exc}") from None
    run = import_outputs(
        args.outputs,
        args.out,
        split=args.split,
        cumulative=args.cumulative,
        layout=args.layout,
        labels_path=args.labels,
        outputs_key=args.outputs_key,
        labels_key=args.labels_key,
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
        read_pt=_read_pt,
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
            f"  {name}: N={s['N']}, accuracy at T_max {pct(s['baseline_accuracy'])}, "
            f"{s['bytes']:,} bytes{', spikes' if s['spikes'] else ''}"
        )
    return out, "\n".join(lines)


def _policy(args):
    """The exit policy named by --policy, with --threshold and every --param KEY=VALUE."""
    import dataclasses

    from dynconf.core.policies import get_policy

    cls = get_policy(args.policy)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    params = {"threshold": args.threshold} if "threshold" in fields else {}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep or key not in fields or key == "threshold":
            names = ", ".join(k for k in fields if k != "threshold") or "none"
            raise DynconfError(
                f"--param {item!r}: policy '{cls.name}' takes KEY=VALUE with KEY in: {names}"
            )
        try:
            params[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            raise DynconfError(f"--param {item!r}: {value!r} is not a number") from None
        if not math.isfinite(params[key]):
            raise DynconfError(f"--param {item!r}: must be a finite number")
    return cls(**params)


def _describe(policy) -> str:
    """ "C=0.9" for the threshold rule, "patience threshold=0.9, k=3" for the others."""
    words = ", ".join(f"{k}={v:g}" for k, v in policy.params.items())
    if policy.name == "threshold":
        return f"C={policy.threshold:g}"
    return f"{policy.name} {words}"


def cmd_evaluate(args) -> tuple[dict, str]:
    from dynconf.core import metrics

    run = _load(args)
    dec = _decode(run, args.split, args)
    sp = run.split(args.split)
    policy = _policy(args)
    res = policy.evaluate(dec, spikes=sp.spikes, neurons=run.meta.get("neurons"), synops=sp.synops)
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
        f"{run.name}/{args.split}, {dec.label}, {_describe(policy)}: accuracy "
        f"{pct(res.accuracy)} at {res.mean_latency:.3f} mean steps "
        f"(baseline {pct(res.baseline_accuracy)} at {run.T_max}{iso}; "
        f"latency -{pct(res.latency_reduction, 1)})"
    )
    if res.spike_saving is not None:
        text += f"; spikes -{pct(res.spike_saving, 1)}"
    if res.synops_saving is not None:  # synaptic operations, where the run recorded them
        spent, full = res.synops_per_sample_at_exit, res.synops_per_sample_full
        text += f"; synops -{pct(res.synops_saving, 1)} ({spent:.4g} per sample, full {full:.4g})"
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
        lines.append(f"  {name}: {pct(v['accuracy'])} at {v['mean_latency']:.3f} mean steps")
    lines.append(f"  baseline at {main['cap']}: {pct(out['baseline_accuracy'])}")
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
        test_synops=run.split(args.eval_split).synops,
        cal_synops=run.split(args.calibration_split).synops,
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
        f"  near-front band: C in [{sel.band[0]:.6g}, {sel.band[1]:.6g}]"
    )
    return out, text


# --------------------------------------------------------------------------- parsers


def add_metric_commands(sub) -> None:
    """Add the metric commands to the CLI; ``sub(name, help)`` makes one subparser."""
    p = sub("import", "import an outputs file (.npz/.npy/.pt) as a split of a run")
    p.add_argument(
        "outputs",
        help=".npz or dict .pt with outputs [T,N,K], labels [N] (spikes, ids optional), or a "
        "bare .npy / tensor .pt of outputs with --labels",
    )
    p.add_argument("--out", required=True, help="run directory (created, or a split is added)")
    p.add_argument("--split", default="test")
    p.add_argument(
        "--layout",
        choices=("TNK", "NTK"),
        default=None,
        help="outputs axes: TNK time first (the default) or NTK batch first (transposed); "
        "a shape with T = N is refused unless given",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--cumulative",
        action="store_const",
        const=True,
        default=None,
        help="outputs are accumulated S_t (differenced on import)",
    )
    what.add_argument(
        "--per-step",
        dest="cumulative",
        action="store_const",
        const=False,
        help="outputs are per-step (skip the check that refuses outputs that look accumulated)",
    )
    p.add_argument("--labels", default=None, help="labels .npy or .pt (for bare outputs)")
    p.add_argument("--outputs-key", default="outputs", help="name of the outputs array")
    p.add_argument("--labels-key", default="labels", help="name of the labels array")
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

    p = sub("evaluate", "Dynamic Confidence (or another exit policy) at one threshold")
    p.add_argument("run_dir")
    p.add_argument("--split", default="test")
    p.add_argument(
        "--threshold", type=unit_float, required=True, help="exit when confidence > C (0..1)"
    )
    p.add_argument(
        "--policy", default="threshold", choices=_policy_names(), help="default: threshold"
    )
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="a parameter of the policy, e.g. --policy patience --param k=3 (repeatable)",
    )
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
    p.add_argument(
        "--all", action="store_true", help="list every threshold, not only the front (text)"
    )
    p.add_argument("--acc-slack", type=finite_float, default=0.005, help="'near the front' slack")
    p.add_argument(
        "--lat-slack", type=finite_float, default=0.0, help="'near the front' slack (steps)"
    )
    _add_decoder_args(p)
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
    _add_decoder_args(p)
    p.set_defaults(func=cmd_select)
