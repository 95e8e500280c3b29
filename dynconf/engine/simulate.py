"""Turn a trained QCFS checkpoint into a cached run: simulate every sample for T_max steps.

``simulate_checkpoint(SimulateConfig(...))`` is what the `simulate` command runs:
``python -m dynconf simulate --checkpoint CKPT --dataset cifar10 --data-root DIR --T 64
--splits calibration,test --out cached_runs/NAME``

It is ``record_run`` with dynconf's own adapter (engine/frameworks/qcfs.py): each batch is
simulated once in the fast multi-step mode (``dynconf.engine.snn.simulate``), and the one run
writer (engine/writer.py) gives it what every recording has: a resumable work folder beside
the run, the torchrun merge (``torchrun --nproc_per_node P -m dynconf simulate ...``), the run
lock, a progress file the dashboard follows, and the provenance in ``created``. Besides the
outputs, hidden spikes and synaptic operations (engine/synops.py), the meta holds the ANN's
accuracy on each split and every command that made the weights.
"""

from __future__ import annotations

from pathlib import Path

from dynconf.engine.batches import SplitBatches
from dynconf.engine.checkpoint import (
    load_checkpoint,
    load_checkpoint_data,
    model_from_checkpoint,
    training_commands,
)
from dynconf.engine.config import SimulateConfig
from dynconf.engine.data.base import evenly_spaced
from dynconf.engine.device import set_threads
from dynconf.engine.distributed import join, threads_per_process
from dynconf.engine.writer import check_destination, id_source
from dynconf.errors import DataError


def simulate_checkpoint(
    config: SimulateConfig, progress: bool = True, argv_words: list[str] | None = None
) -> dict:
    """Simulate ``config.splits`` of a checkpoint's dataset into the run ``config.out``.

    ``argv_words``: the words after ``python -m dynconf`` recorded as the run's command
    (default: the `simulate` command that reproduces it, see ``command_words``).
    """
    from dynconf.engine.frameworks.qcfs import QcfsAdapter
    from dynconf.engine.record import record_run
    from dynconf.engine.snn import SpikingNetwork

    out = Path(config.out)
    if config.T < 1:
        raise DataError("--T must be at least 1")
    check_destination(out, config.overwrite)  # now, not after hours of simulation
    splits = list(config.splits)
    world, device = join(config.device)
    set_threads(threads_per_process(config.threads, world))
    ckpt = load_checkpoint(config.checkpoint)
    trained = ckpt["config"]
    data = load_checkpoint_data(trained, config.dataset, config.data_root, splits)
    ann = model_from_checkpoint(ckpt).to(device)
    snn = SpikingNetwork(ann).to(device)
    plan = {s: evenly_spaced(len(data.splits[s]), config.limit) for s in splits}
    batches = {s: SplitBatches(data.splits[s].take(plan[s]), config.batch_size) for s in splits}
    _count_neurons(snn, data.splits[splits[0]], plan[splits[0]], device)
    words = ["simulate", *command_words(config)] if argv_words is None else list(argv_words)
    run = record_run(
        snn,
        batches,
        T=config.T,
        out=out,
        classes=list(trained.get("classes") or data.classes),
        dataset=config.dataset,
        model_name=f"{trained['arch']} (QCFS L={trained['levels']})",
        seed=trained.get("seed", 0),
        progress=progress,
        progress_file=config.progress_file,
        overwrite=config.overwrite,
        name=config.name,
        adapter=QcfsAdapter(snn, ann=ann, chunk=config.chunk),
        settings_extra=_settings(config, plan),
        extra_meta=_extra_meta(trained, data, splits, config),
        created_extra={"training_commands": training_commands(ckpt), "limit": config.limit},
        command=" ".join(["python", "-m", "dynconf", *words]),
        extra_files={"model.pt": Path(config.checkpoint)} if config.copy_checkpoint else None,
    )
    meta = run.meta
    return {
        "run": str(out),
        "T_max": config.T,
        "splits": {s: len(plan[s]) for s in splits},
        "ann_accuracy": meta["ann_accuracy"],
        "snn_accuracy_by_T": meta["snn_accuracy_by_T"],
        "wall_time_s": meta["created"]["wall_time_s"],
        "world_size": world.size,
    }


def _count_neurons(snn, split, positions, device) -> None:
    """One step of one sample, so the network knows its hidden neuron count even when every
    batch of a resumed run was simulated before."""
    import torch

    if len(positions) == 0:
        return
    x, _ = split.load(positions[:1])
    with torch.no_grad():
        snn.reset()
        snn.step(x.to(device), 1)
        snn.reset()


def _extra_meta(trained: dict, data, splits: list[str], config: SimulateConfig) -> dict:
    meta = {
        "arch": trained["arch"],
        "levels": trained["levels"],
        "id_scheme": data.id_scheme,
        "id_source": id_source(splits),
    }
    if config.copy_checkpoint:
        meta["checkpoint"] = "model.pt"
    return meta


def _settings(config: SimulateConfig, plan: dict) -> dict:
    """What makes two simulations the same job besides the weights (claimed in the work
    folder): batches are resumed by position, so another checkpoint file, T, sample plan or
    batch size would splice foreign results into the run."""
    checkpoint = Path(config.checkpoint)
    return {
        "checkpoint_bytes": checkpoint.stat().st_size,
        "checkpoint_mtime_ns": checkpoint.stat().st_mtime_ns,
        "dataset": config.dataset,
        "chunk": config.chunk,
        "batch_size": config.batch_size,
        "plan": {name: positions.tolist() for name, positions in plan.items()},
    }


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
