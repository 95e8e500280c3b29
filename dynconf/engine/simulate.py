"""Turn a trained QCFS checkpoint into a cached run: simulate every sample for T_max steps.

``simulate_checkpoint(SimulateConfig(...))`` is what the `simulate` command runs:
``python -m dynconf simulate --checkpoint CKPT --dataset cifar10 --data-root DIR --T 64
--splits calibration,test --out cached_runs/NAME``

Each batch is simulated once in the fast multi-step mode (``dynconf.engine.snn.simulate``) and
its per-step outputs and hidden spike counts are written to a hidden work folder beside the
run (``.NAME.partial``) as soon as they are done, so a killed simulation resumes where it
stopped when the same command is run again. Only when every split is complete is the run
written, atomically, in the run format of ``dynconf.core.store``; the work folder is then
removed. A progress file (``progress_file``) lets another process (the dashboard) follow.

Started by torchrun (``torchrun --nproc_per_node P -m dynconf simulate ...``), the P processes
share the batches of every split (engine/distributed.py): each writes its own into the work
folder, and rank 0 merges them into the same run a single process would write, recording
``world_size`` and which rank simulated which samples (``created.shards``) in its meta.
Besides the outputs and spikes, every split holds the synaptic operations per step and
sample (``synops``, definition in engine/synops.py).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from dynconf.core.atomic import atomic_write, write_json_atomic
from dynconf.core.format import check_run_name
from dynconf.core.locking import run_lock
from dynconf.core.provenance import code_version, now_utc
from dynconf.engine.checkpoint import (
    load_checkpoint,
    load_checkpoint_data,
    model_from_checkpoint,
    training_commands,
)
from dynconf.engine.config import SimulateConfig
from dynconf.engine.data.base import evenly_spaced
from dynconf.engine.device import set_threads
from dynconf.engine.distributed import (
    join,
    shard,
    shards_of,
    threads_per_process,
    wait_for_parts,
)
from dynconf.engine.partial import claim
from dynconf.errors import DataError


def simulate_checkpoint(
    config: SimulateConfig, progress: bool = True, argv_words: list[str] | None = None
) -> dict:
    """Simulate ``config.splits`` of a checkpoint's dataset into the run ``config.out``.

    ``argv_words``: the words after ``python -m dynconf`` recorded as the run's command
    (default: the `simulate` command that reproduces it, see ``command_words``).
    """
    import torch
    from tqdm import tqdm

    from dynconf.core.store import save_run
    from dynconf.engine.snn import SpikingNetwork, simulate

    started = time.time()
    out = Path(config.out)
    if not os.path.lexists(out):  # (lexists: a too-long name is an error, not a crash)
        check_run_name(out.name)  # now, not after hours of simulation
    if config.T < 1:
        raise DataError("--T must be at least 1")
    if out.exists() and not config.overwrite:
        raise DataError(f"{out} already exists (pass --overwrite to replace it)")
    splits = list(config.splits)
    world, device = join(config.device)
    set_threads(threads_per_process(config.threads, world))
    ckpt = load_checkpoint(config.checkpoint)
    trained = ckpt["config"]
    data = load_checkpoint_data(trained, config.dataset, config.data_root, splits)

    ann = model_from_checkpoint(ckpt).to(device)
    snn = SpikingNetwork(ann).to(device)
    work = out.parent / f".{out.name}.partial"
    plan = {s: evenly_spaced(len(data.splits[s]), config.limit) for s in splits}
    if world.main:  # the first claim records the settings; the other ranks then check them
        work.mkdir(parents=True, exist_ok=True)
        _claim_work_folder(work, config, plan)
    world.barrier()
    if not world.main:
        _claim_work_folder(work, config, plan)
    # Whole batches per rank (the same batches as one process makes), a block of each split.
    starts = {s: list(range(0, len(plan[s]), config.batch_size)) for s in splits}
    mine = {s: [starts[s][i] for i in shard(len(starts[s]), world)] for s in splits}
    total = sum(len(plan[s][b : b + config.batch_size]) for s in splits for b in mine[s])
    progress_path = Path(config.progress_file) if config.progress_file and world.main else None
    done = 0
    bar = tqdm(
        total=total,
        unit="img",
        disable=not (progress and world.main),
        file=sys.stderr,
        mininterval=2.0,
    )
    for split_name in splits:
        split, positions = data.splits[split_name], plan[split_name]
        for start in mine[split_name]:
            part = work / f"{split_name}-{start:07d}.npz"
            pos = positions[start : start + config.batch_size]
            if not part.exists():  # else resumed: this batch was finished before a kill
                t0 = time.time()
                x, y = split.load(pos)
                x = x.to(device)
                with torch.no_grad():
                    ann_pred = ann(x).argmax(1).cpu()
                result = simulate(snn, x, config.T, chunk=config.chunk)
                arrays = dict(
                    outputs=result.outputs.astype(np.float32),
                    spikes=result.spikes.astype(np.float32),
                    synops=result.synops.astype(np.int64),
                    labels=y.numpy(),
                    ids=split.ids[pos],
                    ann_correct=np.int64(int((ann_pred == y).sum())),
                    rank=np.int64(world.rank),
                    seconds=np.float64(time.time() - t0),
                )
                atomic_write(part, lambda fh, arrays=arrays: np.savez(fh, **arrays))
            done += len(pos)
            bar.update(len(pos))
            if progress_path is not None:  # rank 0's share of the work, with several ranks
                rate = bar.format_dict.get("rate") or 0
                report = {
                    "done": done,
                    "total": total,
                    "split": split_name,
                    "eta_s": (total - done) / rate if rate else None,
                    "state": "running",
                }
                write_json_atomic(progress_path, report, indent=None)
    bar.close()
    world.barrier()  # every rank's batches are written
    if not world.main:
        world.barrier()  # rank 0 has merged them into the run
        world.close()
        return {"run": str(out), "rank": world.rank, "world_size": world.size}

    parts = {s: [work / f"{s}-{b:07d}.npz" for b in starts[s]] for s in splits}
    wait_for_parts([p for s in splits for p in parts[s]], work)
    arrays, ann_accuracy, snn_by_T, shards = {}, {}, {}, {}
    sim_seconds = 0.0
    for split_name in splits:
        loaded = [np.load(p, allow_pickle=False) for p in parts[split_name]]
        arrays[split_name] = {
            "outputs": np.concatenate([f["outputs"] for f in loaded], axis=1),
            "labels": np.concatenate([f["labels"] for f in loaded]).astype(np.int64),
            "spikes": np.concatenate([f["spikes"] for f in loaded], axis=1),
            "ids": np.concatenate([f["ids"] for f in loaded]).astype(np.int64),
        }
        if all("synops" in f.files for f in loaded):  # (batches of older versions have none)
            arrays[split_name]["synops"] = np.concatenate([f["synops"] for f in loaded], axis=1)
        correct_ann = sum(int(f["ann_correct"]) for f in loaded)
        ranks = [int(f["rank"]) if "rank" in f.files else 0 for f in loaded]
        sim_seconds += sum(float(f["seconds"]) if "seconds" in f.files else 0.0 for f in loaded)
        shards[split_name] = shards_of(ranks, [len(f["labels"]) for f in loaded])
        for f in loaded:
            f.close()
        n = len(arrays[split_name]["labels"])
        ann_accuracy[split_name] = correct_ann / n
        cumulative = np.cumsum(arrays[split_name]["outputs"], axis=0, dtype=np.float64)
        correct = cumulative.argmax(2) == arrays[split_name]["labels"][None]
        snn_by_T[split_name] = {
            str(t): float(correct[t - 1].mean()) for t in _powers_of_two(config.T)
        }

    words = ["simulate", *command_words(config)] if argv_words is None else list(argv_words)
    meta = {
        "name": config.name or out.name,
        "dataset": config.dataset,
        "model": f"{trained['arch']} (QCFS L={trained['levels']})",
        "arch": trained["arch"],
        "levels": trained["levels"],
        "T_max": config.T,
        "classes": list(trained.get("classes") or data.classes),
        "neurons": int(snn.neurons),
        "id_scheme": data.id_scheme,
        "id_source": {s: ("train" if s == "calibration" else s) for s in splits},
        "ann_accuracy": ann_accuracy,
        "snn_accuracy_by_T": snn_by_T,
        "created": {
            "command": " ".join(["python", "-m", "dynconf", *words]),
            # every command that made the weights, oldest first: a model fine-tuned with
            # `train --init` was made by several
            "training_commands": training_commands(ckpt),
            "seed": trained.get("seed", 0),
            "code_version": code_version(),
            "date": now_utc(),
            "wall_time_s": round(time.time() - started, 1),
            # compute time of every batch, all ranks together (resumed batches included)
            "simulation_seconds": round(sim_seconds, 1),
            "device": str(device),
            "limit": config.limit,
            "world_size": world.size,
            "shards": shards,  # {split: [{"rank": r, "samples": [start, stop]}, ...]}
        },
    }
    if config.copy_checkpoint:
        meta["checkpoint"] = "model.pt"
    # With the run's lock held: save_run re-checks that no other writer created `out` in the
    # meantime (refused unless --overwrite), and the work folder goes only with a saved run.
    with run_lock(out):
        save_run(
            out,
            meta,
            arrays,
            overwrite=config.overwrite,
            extra_files={"model.pt": Path(config.checkpoint)} if config.copy_checkpoint else None,
        )
        shutil.rmtree(work, ignore_errors=True)
    world.barrier()
    world.close()
    if progress_path is not None:
        report = {"done": total, "total": total, "eta_s": 0, "state": "complete", "run": str(out)}
        write_json_atomic(progress_path, report, indent=None)
    return {
        "run": str(out),
        "T_max": config.T,
        "splits": {s: len(plan[s]) for s in splits},
        "ann_accuracy": ann_accuracy,
        "snn_accuracy_by_T": snn_by_T,
        "wall_time_s": meta["created"]["wall_time_s"],
        "world_size": world.size,
    }


def _claim_work_folder(work: Path, config: SimulateConfig, plan: dict) -> None:
    """Record what the partial results in ``work`` are, and refuse to mix in other ones.

    Batches are resumed by file name, so a folder left by a run with another checkpoint,
    T, sample plan or batch size would silently splice foreign results into this run.
    """
    checkpoint = Path(config.checkpoint)
    settings = {
        "checkpoint_bytes": checkpoint.stat().st_size,
        "checkpoint_mtime_ns": checkpoint.stat().st_mtime_ns,
        "dataset": config.dataset,
        "T": config.T,
        "chunk": config.chunk,
        "batch_size": config.batch_size,
        "plan": {name: positions.tolist() for name, positions in plan.items()},
    }
    claim(work, settings, "simulation with other settings (checkpoint, T, plan or batch size)")


def _powers_of_two(T: int) -> list[int]:
    steps, t = [], 1
    while t < T:
        steps.append(t)
        t *= 2
    return steps + [T]


def command_words(config: SimulateConfig) -> list[str]:
    """The `simulate` options that reproduce this run exactly (recorded in its meta)."""
    words = [
        "--checkpoint",
        str(config.checkpoint),
        "--dataset",
        config.dataset,
        "--T",
        str(config.T),
        "--splits",
        ",".join(config.splits),
        "--out",
        str(config.out),
        # batch and chunk change the order of float sums, so exact reruns need them too
        "--batch-size",
        str(config.batch_size),
        "--chunk",
        str(config.chunk),
    ]
    if config.data_root:
        words += ["--data-root", str(config.data_root)]
    if config.limit:
        words += ["--limit", str(config.limit)]
    return words
