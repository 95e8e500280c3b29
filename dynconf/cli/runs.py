"""The run commands: `import` (an outputs file as a split of a run) and `info`.

Each ``cmd_*`` returns (JSON dict, human text); dynconf/cli/__init__.py prints one of them.
"""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

import numpy as np

from dynconf.cli.metrics import finite_float, load
from dynconf.core.formatting import pct
from dynconf.core.storage import STORAGES
from dynconf.errors import DynconfError


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

    run = load(args)
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



def add_commands(sub) -> None:
    """import and info; ``sub(name, help)`` makes one subparser."""
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
    p.add_argument("--storage", choices=tuple(STORAGES), default="full")
    p.add_argument("--topk", type=int, default=5, help="k for --storage topk")
    p.add_argument("--kappas", default=None, help="kappas kept by topk (default: T_max)")
    p.add_argument("--dtype", choices=("float16", "float32", "float64"), default=None)
    p.add_argument("--neurons", type=int, default=None, help="hidden neuron count")
    p.add_argument("--overwrite", action="store_true", help="replace an existing split")
    p.set_defaults(func=cmd_import)

    p = sub("info", "describe a run")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_info)
