"""Train a QCFS network (the ANN that gets converted to an SNN), with resumable checkpoints.

``train(TrainConfig(...))`` is what the `train` command runs (dynconf/cli/train.py):

``python -m dynconf train --dataset cifar10 --data-root ../shared/data --arch resnet20
--levels 4 --epochs 30 --out checkpoints/resnet20``

SGD with Nesterov momentum, a linear warm-up then a cosine, one-cycle, constant or cyclic
learning rate, standard CIFAR augmentation (random crop from a 4-pixel pad, horizontal flip).
After every epoch the whole training state is written atomically to ``OUT/last.pt``; running the
same command again resumes from it, so a killed run loses at most one epoch. ``--init CKPT``
starts a new schedule from the weights of a finished checkpoint (a warm restart: a short model is
trained longer without repeating its epochs); it must hold out the same calibration images, so
none leak into training.
When training ends, ``OUT/model.pt`` holds the weights plus the configuration and the final ANN
accuracy on calibration and test.
``--average-from K`` averages the weights at the end of every epoch from epoch K on
(stochastic weight averaging, Izmailov et al. 2018; pair it with ``--schedule constant`` or
``cyclic``): the average of points along the SGD trajectory lies in a flatter,
better-generalising region than any one of them. BatchNorm statistics are then recomputed for
the averaged weights with one pass over the training data, since no batch ever ran through them.
``--device cuda`` (the default when CUDA is present) trains on a GPU: each uint8 batch is
moved there and converted and augmented there, and checkpoints are written with CPU tensors,
so a run started on a GPU resumes on a CPU (or the other way round) with the same command.
Checkpoints contain only tensors and plain Python values, so they load with
``torch.load(weights_only=True)`` (see checkpoint.py).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from dynconf.engine.checkpoint import (
    check_init_compatible,
    checkpoint_config,
    load_checkpoint,
    on_cpu,
    save_checkpoint,
    training_commands,
)
from dynconf.engine.config import TrainConfig
from dynconf.engine.device import device_label, pick_device, set_threads
from dynconf.engine.evaluate import evaluate_ann
from dynconf.errors import DataError


def learning_rate(
    step: int,
    total_steps: int,
    warmup_steps: int,
    peak: float,
    schedule: str,
    cycle_steps: int = 1,
) -> float:
    """Linear warm-up to ``peak``, then one of:

    - ``cosine``: cosine from ``peak`` to 0 over the remaining steps;
    - ``onecycle``: linear from ``peak`` to ``peak/1000``;
    - ``constant``: ``peak``;
    - ``cyclic``: a cosine from ``peak`` towards 0 restarted every ``cycle_steps`` steps (one
      epoch in ``train``), so each epoch ends at a low rate: the points that weight averaging
      collects are each well converged yet spread along the trajectory.
    """
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if schedule == "constant":
        return peak
    if schedule == "cyclic":
        return 0.5 * peak * (1.0 + math.cos(math.pi * (step % cycle_steps) / cycle_steps))
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if schedule == "cosine":
        return 0.5 * peak * (1.0 + math.cos(math.pi * progress))
    return peak * (1.0 - progress * (1.0 - 1e-3))


def update_average(average: dict | None, model) -> dict:
    """Fold the model's current parameters into their running mean (one more epoch averaged)."""
    import torch

    with torch.no_grad():
        if average is None:
            params = {name: p.detach().clone() for name, p in model.named_parameters()}
            return {"params": params, "count": 1}
        count = average["count"] + 1
        for name, p in model.named_parameters():
            average["params"][name] += (p.detach() - average["params"][name]) / count
        return {"params": average["params"], "count": count}


def train(config: TrainConfig, progress: bool = True, argv_words: list[str] | None = None) -> dict:
    """Train (or resume, or warm-restart) as ``config`` says; returns the result summary.

    ``argv_words``: the words after ``python -m dynconf`` that ran this, recorded in the
    checkpoint as its ``command`` (default: this process's own arguments).
    """
    import torch
    from torch.optim.swa_utils import update_bn
    from tqdm import tqdm

    from dynconf.engine.data import load_dataset
    from dynconf.engine.models import build_model, set_levels

    if config.average_from < 0:
        raise DataError("--average-from must be an epoch number >= 1, or 0 for off")
    train_levels = config.resolved_train_levels()
    set_threads(config.threads)
    device = pick_device(config.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: pick the fastest kernels
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_dataset(
        config.dataset, config.data_root, seed=config.seed, download=config.download
    )
    if "train" not in data.splits:
        raise DataError(f"dataset {config.dataset} has no training split (no train/ folder?)")
    train_split = data.splits["train"]
    stored = checkpoint_config(config, data, train_levels)
    torch.manual_seed(config.seed)
    model = build_model(config.arch, config.levels, len(data.classes))
    model = model.to(device, memory_format=torch.channels_last)
    # Thresholds (lambda) and BN/bias parameters are not weight-decayed.
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        momentum=config.momentum,
        nesterov=True,
    )
    state = {"epoch": 0, "history": [], "wall_time_s": 0.0}
    average = None  # running mean of the weights (--average-from), with how many epochs it holds
    last = out / "last.pt"
    if config.init:
        init = load_checkpoint(config.init)
        check_init_compatible(init["config"], stored, config.init)
        model.load_state_dict(init["model"])
        stored["init"] = {
            "checkpoint": str(config.init),
            "commands": training_commands(init),
            "epochs": len(json.loads(init.get("history", "[]"))),
        }
    if last.exists():
        ckpt = load_checkpoint(last)
        if ckpt["config"]["arch"] != config.arch or ckpt["config"]["levels"] != config.levels:
            raise DataError(f"{last} was trained with another arch/levels; use a new --out")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state = {
            "epoch": ckpt["epoch"],
            "history": json.loads(ckpt["history"]),
            "wall_time_s": float(ckpt["wall_time_s"]),
        }
        if "average" in ckpt:
            average = ckpt["average"]
            names = {name for name, _ in model.named_parameters()}
            if set(average.get("params", {})) != names or average.get("count", 0) < 1:
                raise DataError(f"{last} holds a broken weight average; use a new --out")
            average["params"] = {k: v.to(device) for k, v in average["params"].items()}
        print(f"resuming from {last} after epoch {state['epoch']}", file=sys.stderr)

    def training_batches(seed: int):
        """One shuffled pass over the training split, augmented except for digits."""
        return train_split.batches(
            config.batch_size,
            shuffle=True,
            augment=config.dataset != "digits",
            seed=seed,
            device=device,
        )

    steps_per_epoch = math.ceil(len(train_split) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = int(config.warmup_epochs * steps_per_epoch)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    for epoch in range(state["epoch"], config.epochs):
        started = time.time()
        model.train()
        seen = 0
        # Sums stay on the device: reading them every step would stall a GPU once per batch.
        correct = torch.zeros((), dtype=torch.int64, device=device)
        loss_sum = torch.zeros((), device=device)
        bar = tqdm(
            training_batches(seed=config.seed * 1000 + epoch),
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not progress,
            file=sys.stderr,
            mininterval=2.0,
        )
        for i, (x, y, _) in enumerate(bar):
            lr = learning_rate(
                epoch * steps_per_epoch + i,
                total_steps,
                warmup_steps,
                config.lr,
                config.schedule,
                cycle_steps=steps_per_epoch,
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            if len(train_levels) > 1:
                set_levels(model, train_levels[i % len(train_levels)])
            logits = model(x.contiguous(memory_format=torch.channels_last))
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(y)
            correct += (logits.argmax(1) == y).sum()
            loss_sum += loss.detach() * len(y)
            if progress and i % 20 == 0:
                bar.set_postfix(
                    loss=f"{loss_sum.item() / seen:.3f}",
                    acc=f"{correct.item() / seen:.3f}",
                    lr=f"{lr:.4f}",
                )
        set_levels(model, config.levels)
        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum.item() / seen,
            "train_accuracy": correct.item() / seen,
            "seconds": time.time() - started,
        }
        if "calibration" in data.splits:
            record["calibration_accuracy"] = evaluate_ann(model, data.splits["calibration"])
            if max(train_levels) > config.levels:
                record[f"calibration_accuracy_L{max(train_levels)}"] = evaluate_ann(
                    model, data.splits["calibration"], levels=max(train_levels)
                )
        if config.average_from and epoch + 1 >= config.average_from:
            average = update_average(average, model)
            record["averaged_epochs"] = average["count"]
        state["history"].append(record)
        state["wall_time_s"] += time.time() - started
        state["epoch"] = epoch + 1
        print(json.dumps(record), file=sys.stderr, flush=True)
        training_state = {
            "model": on_cpu(model.state_dict()),
            "optimizer": on_cpu(optimizer.state_dict()),
            "epoch": epoch + 1,
            "config": stored,
            "history": json.dumps(state["history"]),
            "wall_time_s": state["wall_time_s"],
        }
        if average is not None:
            training_state["average"] = on_cpu(average)
        save_checkpoint(training_state, last)

    if average is not None:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(average["params"][name])
        # Averaged weights never ran a batch, so the BatchNorm statistics left from training
        # belong to other weights: refit them as an equal-weight mean over one training pass.
        started = time.time()
        update_bn(training_batches(seed=config.seed * 1000 + config.epochs), model)
        state["wall_time_s"] += time.time() - started

    words = sys.argv[1:] if argv_words is None else list(argv_words)
    result = {
        "checkpoint": str(out / "model.pt"),
        "epochs": state["epoch"],
        "train_wall_time_s": round(state["wall_time_s"], 1),
        "device": device_label(device),
    }
    if average is not None:
        result["averaged_epochs"] = average["count"]
    for name in ("calibration", "test"):
        if name in data.splits:
            result[f"ann_{name}_accuracy"] = evaluate_ann(model, data.splits[name])
    save_checkpoint(
        {
            "model": on_cpu(model.state_dict()),
            "config": stored,
            "history": json.dumps(state["history"]),
            "result": json.dumps(result),
            "command": " ".join(["python", "-m", "dynconf", *words]),
        },
        out / "model.pt",
    )
    return result
