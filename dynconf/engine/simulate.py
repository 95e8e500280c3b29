"""Turn a trained QCFS checkpoint into a cached run: simulate every sample for T_max steps.

``python -m dynconf simulate --checkpoint CKPT --dataset cifar10 --data-root DIR --T 64
--splits calibration,test --out cached_runs/NAME``

Each batch is simulated once in the fast multi-step mode (``dynconf.engine.snn.simulate``) and its
per-step outputs and hidden spike counts are written to a hidden work folder beside ``--out``
(``.NAME.partial``) as soon as they are done, so a killed simulation resumes where it stopped
when the same command is run again. Only when every split is complete is the run written,
atomically, in the run format of ``dynconf.core.store``; the work folder is then removed. A progress
file (``--progress-file``) lets another process (the dashboard) follow along.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from dynconf import __version__
from dynconf.errors import DataError


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", required=True, help="model.pt written by `train`")
    parser.add_argument("--dataset", required=True, choices=("digits", "cifar10", "imagefolder"))
    parser.add_argument("--data-root", default=None, help="dataset root (else $DYNCONF_DATA)")
    parser.add_argument("--T", type=int, default=64, help="time steps per sample (T_max)")
    parser.add_argument("--splits", default="calibration,test", help="comma-separated splits")
    parser.add_argument("--out", required=True, help="run directory to create")
    parser.add_argument("--name", default=None, help="run name (default: the folder name)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=4, help="time steps per multi-step call")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="simulate only N evenly spaced samples of each split (quick looks)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--progress-file", default=None, help="JSON progress for other processes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--no-checkpoint-copy", action="store_true", help="do not copy the checkpoint into the run"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run")


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def _save_npz_atomic(path: Path, **arrays) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def code_version() -> str:
    """The git commit of this checkout when there is one, else the package version."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        )
        if rev.returncode == 0 and rev.stdout.strip():
            return f"{__version__}+g{rev.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


def subset(n: int, limit: int | None) -> np.ndarray:
    """Positions of ``limit`` evenly spaced samples (all when limit is None or >= n)."""
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise DataError("--limit must be at least 1")
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def pick_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_checkpoint_data(config: dict, dataset: str, data_root, splits: list[str]):
    """The splits of ``dataset`` for a checkpoint whose training ``config`` is given.

    Refuses a dataset other than the one trained on, and a calibration split other than the
    images held out of that training (else "calibration" accuracy would be training accuracy).
    """
    from dynconf.engine.data import load_dataset

    if config["dataset"] != dataset:
        raise DataError(f"checkpoint was trained on {config['dataset']}, not {dataset}")
    data = load_dataset(dataset, data_root, seed=config.get("seed", 0), splits=tuple(splits))
    missing = [s for s in splits if s not in data.splits]
    if missing:
        raise DataError(f"dataset {dataset} has no split {', '.join(missing)}")
    held_out = config.get("calibration_ids")
    if (
        "calibration" in splits
        and held_out
        and not np.array_equal(data.splits["calibration"].ids, np.asarray(held_out))
    ):
        raise DataError("calibration split differs from the one held out at training time")
    return data


def simulate_checkpoint(args) -> dict:
    import torch
    from tqdm import tqdm

    from dynconf.core.store import save_run
    from dynconf.engine.snn import SpikingNetwork, simulate
    from dynconf.engine.train import load_checkpoint, model_from_checkpoint, training_commands

    started = time.time()
    out = Path(args.out)
    if args.T < 1:
        raise DataError("--T must be at least 1")
    if out.exists() and not args.overwrite:
        raise DataError(f"{out} already exists (pass --overwrite to replace it)")
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    device = pick_device(args.device)
    ckpt = load_checkpoint(args.checkpoint)
    config = ckpt["config"]
    data = load_checkpoint_data(config, args.dataset, args.data_root, splits)

    ann = model_from_checkpoint(ckpt)
    snn = SpikingNetwork(ann).to(device)
    work = out.parent / f".{out.name}.partial"
    work.mkdir(parents=True, exist_ok=True)
    plan = {s: subset(len(data.splits[s]), args.limit) for s in splits}
    _claim_work_folder(work, args, plan)
    total = sum(len(p) for p in plan.values())
    progress_path = Path(args.progress_file) if args.progress_file else None
    done = 0
    sim_seconds = 0.0
    bar = tqdm(total=total, unit="img", disable=args.no_progress, file=sys.stderr, mininterval=2.0)
    ann_correct = {}
    for split_name in splits:
        split, positions = data.splits[split_name], plan[split_name]
        ann_correct[split_name] = 0
        for start in range(0, len(positions), args.batch_size):
            part = work / f"{split_name}-{start:07d}.npz"
            pos = positions[start : start + args.batch_size]
            if part.exists():  # resumed: this batch was finished before a kill
                with np.load(part, allow_pickle=False) as f:
                    ann_correct[split_name] += int(f["ann_correct"])
            else:
                t0 = time.time()
                x, y = _gather(split, pos)
                x = x.to(device)
                with torch.no_grad():
                    ann_pred = ann.to(device)(x).argmax(1).cpu()
                result = simulate(snn, x, args.T, chunk=args.chunk)
                correct = int((ann_pred == y).sum())
                ann_correct[split_name] += correct
                _save_npz_atomic(
                    part,
                    outputs=result.outputs.astype(np.float32),
                    spikes=result.spikes.astype(np.float32),
                    labels=y.numpy(),
                    ids=split.ids[pos],
                    ann_correct=np.int64(correct),
                )
                sim_seconds += time.time() - t0
            done += len(pos)
            bar.update(len(pos))
            if progress_path is not None:
                rate = bar.format_dict.get("rate") or 0
                _write_json_atomic(
                    progress_path,
                    {
                        "done": done,
                        "total": total,
                        "split": split_name,
                        "eta_s": (total - done) / rate if rate else None,
                        "state": "running",
                    },
                )
    bar.close()

    arrays, ann_accuracy, snn_by_T = {}, {}, {}
    for split_name in splits:
        parts = sorted(work.glob(f"{split_name}-*.npz"))
        loaded = [np.load(p, allow_pickle=False) for p in parts]
        arrays[split_name] = {
            "outputs": np.concatenate([f["outputs"] for f in loaded], axis=1),
            "labels": np.concatenate([f["labels"] for f in loaded]).astype(np.int64),
            "spikes": np.concatenate([f["spikes"] for f in loaded], axis=1),
            "ids": np.concatenate([f["ids"] for f in loaded]).astype(np.int64),
        }
        for f in loaded:
            f.close()
        n = len(arrays[split_name]["labels"])
        ann_accuracy[split_name] = ann_correct[split_name] / n
        cumulative = np.cumsum(arrays[split_name]["outputs"], axis=0, dtype=np.float64)
        correct = cumulative.argmax(2) == arrays[split_name]["labels"][None]
        snn_by_T[split_name] = {
            str(t): float(correct[t - 1].mean()) for t in _powers_of_two(args.T)
        }

    name = args.name or out.name
    meta = {
        "name": name,
        "dataset": args.dataset,
        "model": f"{config['arch']} (QCFS L={config['levels']})",
        "arch": config["arch"],
        "levels": config["levels"],
        "T_max": args.T,
        "classes": list(config.get("classes") or data.classes),
        "neurons": int(snn.neurons),
        "id_scheme": data.id_scheme,
        "id_source": {s: ("train" if s == "calibration" else s) for s in splits},
        "ann_accuracy": ann_accuracy,
        "snn_accuracy_by_T": snn_by_T,
        "created": {
            "command": " ".join(["python", "-m", "dynconf", "simulate", *_cli_args(args)]),
            # every command that made the weights, oldest first: a model fine-tuned with
            # `train --init` was made by several
            "training_commands": training_commands(ckpt),
            "seed": config.get("seed", 0),
            "code_version": code_version(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_time_s": round(time.time() - started, 1),
            "simulation_seconds": round(sim_seconds, 1),
            "device": str(device),
            "limit": args.limit,
        },
    }
    if not args.no_checkpoint_copy:
        meta["checkpoint"] = "model.pt"
    save_run(
        out,
        meta,
        arrays,
        overwrite=args.overwrite,
        extra_files={"model.pt": Path(args.checkpoint)} if not args.no_checkpoint_copy else None,
    )
    shutil.rmtree(work, ignore_errors=True)
    if progress_path is not None:
        _write_json_atomic(
            progress_path,
            {"done": total, "total": total, "eta_s": 0, "state": "complete", "run": str(out)},
        )
    return {
        "run": str(out),
        "T_max": args.T,
        "splits": {s: len(plan[s]) for s in splits},
        "ann_accuracy": ann_accuracy,
        "snn_accuracy_by_T": snn_by_T,
        "wall_time_s": meta["created"]["wall_time_s"],
    }


def _claim_work_folder(work: Path, args, plan: dict) -> None:
    """Record what the partial results in ``work`` are, and refuse to mix in other ones.

    Batches are resumed by file name, so a folder left by a run with another checkpoint,
    T, sample plan or batch size would silently splice foreign results into this run.
    """
    checkpoint = Path(args.checkpoint)
    settings = {
        "checkpoint_bytes": checkpoint.stat().st_size,
        "checkpoint_mtime_ns": checkpoint.stat().st_mtime_ns,
        "dataset": args.dataset,
        "T": args.T,
        "chunk": args.chunk,
        "batch_size": args.batch_size,
        "plan": {name: positions.tolist() for name, positions in plan.items()},
    }
    record = work / "settings.json"
    if record.exists():
        try:
            previous = json.loads(record.read_text())
        except ValueError:
            previous = None
        if previous != settings:
            raise DataError(
                f"{work} holds partial results of a simulation with other settings; "
                "delete it or rerun that simulation's exact command"
            )
    else:
        _write_json_atomic(record, settings)


def _gather(split, positions: np.ndarray):
    """Normalised images and labels of some positions of a split."""
    import torch

    if hasattr(split, "images"):  # in-memory split: index directly
        x, y, _ = next(split.take(positions).batches(len(positions)))
        return x, y
    xs = [split.dataset[int(p)][0] for p in positions]
    return torch.stack(xs), torch.from_numpy(split.labels[positions])


def _powers_of_two(T: int) -> list[int]:
    steps, t = [], 1
    while t < T:
        steps.append(t)
        t *= 2
    return steps + [T]


def _cli_args(args) -> list[str]:
    words = [
        "--checkpoint",
        str(args.checkpoint),
        "--dataset",
        args.dataset,
        "--T",
        str(args.T),
        "--splits",
        args.splits,
        "--out",
        str(args.out),
        # batch and chunk change the order of float sums, so exact reruns need them too
        "--batch-size",
        str(args.batch_size),
        "--chunk",
        str(args.chunk),
    ]
    if args.data_root:
        words += ["--data-root", str(args.data_root)]
    if args.limit:
        words += ["--limit", str(args.limit)]
    return words


def run_command(args) -> dict:
    return simulate_checkpoint(args)
