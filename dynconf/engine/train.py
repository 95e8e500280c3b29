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
For minutes of a lent GPU (engine/speed.py, lease/README.md): ``--time-budget S`` trains as
many epochs as fit in S seconds, counted after the first epoch from its own timing (that epoch
must be all warm-up, so the schedule is the one ``--epochs N`` gives); ``--amp bf16``
autocasts the training steps; ``--compile`` times eager against compiled steps in the first
epoch and keeps the faster; ``--half-weights`` stores float16 conv/linear weights that are
exactly the network evaluated; ``--checkpoint-every N`` writes last.pt less often.
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
from dynconf.engine.config import AMP_MODES, TrainConfig
from dynconf.engine.data.base import evenly_spaced
from dynconf.engine.device import device_label, pick_device, set_threads
from dynconf.engine.evaluate import evaluate_ann
from dynconf.engine.speed import (
    Clock,
    CompileProbe,
    check_budget_settings,
    epochs_that_fit,
    round_weights_to_half,
)
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
    if config.amp not in AMP_MODES:
        raise DataError(f"--amp {config.amp!r}: choose one of {', '.join(AMP_MODES)}")
    if config.checkpoint_every < 1:
        raise DataError("--checkpoint-every must be at least 1")
    check_budget_settings(config.time_budget_s, config.warmup_epochs)
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
    stored = checkpoint_config(config, data, train_levels)  # the whole hold-out, always
    if config.limit is not None:  # a smoke test: a few evenly spaced images of every split
        for name, split in data.splits.items():
            data.splits[name] = split.take(evenly_spaced(len(split), config.limit))
        stored["train_size"] = len(data.splits["train"])
    train_split = data.splits["train"]
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

    # A compiled model would compile again for the smaller last batch, so --compile drops it
    # (a different random 1-in-N images each epoch).
    drop_partial = config.compile
    steps_per_epoch = (
        len(train_split) // config.batch_size
        if drop_partial
        else math.ceil(len(train_split) / config.batch_size)
    )
    if steps_per_epoch < 1:
        raise DataError(
            f"{len(train_split)} training images do not fill one batch of {config.batch_size}"
        )
    epochs = config.epochs
    if config.time_budget_s is not None and state["epoch"] > 0:
        epochs = int(ckpt["config"]["epochs"])  # sized when this run's first epoch ended
    warmup_steps = int(config.warmup_epochs * steps_per_epoch)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    clock = Clock(device)
    compiled = torch.compile(model) if config.compile else None  # compiles at its first call
    forward = model
    probe = None
    if compiled is not None:
        probe = CompileProbe(model, compiled, steps_per_epoch, clock)
        if state["epoch"] > 0:  # resumed: the probe ran in an earlier process
            kept = [r["compile"]["compiled_kept"] for r in state["history"] if "compile" in r]
            forward = model if kept and not kept[-1] else compiled
            probe = None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.amp == "bf16")

    def save_training_state(epoch_started: float) -> None:
        """last.pt: what a resumed run needs, with the time this epoch has taken so far."""
        training_state = {
            "model": on_cpu(model.state_dict()),
            "optimizer": on_cpu(optimizer.state_dict()),
            "epoch": state["epoch"],
            "config": stored,
            "history": json.dumps(state["history"]),
            "wall_time_s": state["wall_time_s"] + (clock.now() - epoch_started),
        }
        if average is not None:
            training_state["average"] = on_cpu(average)
        save_checkpoint(training_state, last)

    first_epoch = state["epoch"]
    while state["epoch"] < epochs:
        epoch = state["epoch"]
        started = clock.now()
        model.train()
        seen = 0
        # Sums stay on the device: reading them every step would stall a GPU once per batch.
        correct = torch.zeros((), dtype=torch.int64, device=device)
        loss_sum = torch.zeros((), device=device)
        bar = tqdm(
            training_batches(seed=config.seed * 1000 + epoch),
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{epochs}",
            disable=not progress,
            file=sys.stderr,
            mininterval=2.0,
        )
        # Steady step time, for --time-budget: from mid-epoch (after any compile) to the end.
        mid_step = max(steps_per_epoch // 2, probe.done_at if probe else 0)
        mid_time = None
        for i, (x, y, _) in enumerate(bar):
            if i >= steps_per_epoch:  # the partial last batch, dropped with --compile
                break
            if probe is not None:
                forward = probe.model_for(i)
            if i == mid_step:
                mid_time = clock.now()
            lr = learning_rate(
                epoch * steps_per_epoch + i,
                epochs * steps_per_epoch,
                warmup_steps,
                config.lr,
                config.schedule,
                cycle_steps=steps_per_epoch,
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            if len(train_levels) > 1:
                set_levels(model, train_levels[i % len(train_levels)])
            with autocast:
                logits = forward(x.contiguous(memory_format=torch.channels_last))
                loss = loss_fn(logits.float(), y)
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
        bar.close()
        loop_end = clock.now()
        set_levels(model, config.levels)
        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum.item() / seen,
            "train_accuracy": correct.item() / seen,
            "seconds": round(loop_end - started, 3),  # the training steps, not the evaluation
        }
        if probe is not None and probe.report is not None:
            record["compile"] = probe.report
        probe = None  # only the first epoch of a run is probed
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
        state["epoch"] = epoch + 1

        sizing = config.time_budget_s is not None and epoch == 0 == first_epoch
        if sizing or state["epoch"] % config.checkpoint_every == 0 or state["epoch"] == epochs:
            save_start = clock.now()
            save_training_state(started)
            save_s = clock.now() - save_start
        if sizing:
            # Each further epoch: its steps at the steady rate, evaluation, and its share of a
            # checkpoint write. The schedule up to here was all warm-up, so it stays valid.
            overhead = (save_start - loop_end) + save_s / config.checkpoint_every
            if mid_time is not None and mid_step < steps_per_epoch:
                step_s = (loop_end - mid_time) / (steps_per_epoch - mid_step)
            else:
                step_s = (loop_end - started) / steps_per_epoch
            estimate = step_s * steps_per_epoch + overhead
            epochs = epochs_that_fit(
                config.time_budget_s, clock.now() - started, estimate, config.epochs
            )
            stored["epochs"] = epochs
            record.update(sized_epochs=epochs, epoch_estimate_s=round(estimate, 3))
            print(
                f"--time-budget {config.time_budget_s:g} s: {epochs} epochs "
                f"(first {clock.now() - started:.1f} s, then about {estimate:.2f} s each)",
                file=sys.stderr,
                flush=True,
            )
            save_training_state(started)  # with the sized schedule, so a resumed run keeps it
        state["wall_time_s"] += clock.now() - started
        print(json.dumps(record), file=sys.stderr, flush=True)

    if average is not None:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(average["params"][name])
        # Averaged weights never ran a batch, so the BatchNorm statistics left from training
        # belong to other weights: refit them as an equal-weight mean over one training pass.
        started = time.time()
        update_bn(training_batches(seed=config.seed * 1000 + epochs), model)
        state["wall_time_s"] += time.time() - started
    half = round_weights_to_half(model) if config.half_weights else []

    words = sys.argv[1:] if argv_words is None else list(argv_words)
    result = {
        "checkpoint": str(out / "model.pt"),
        "epochs": state["epoch"],
        "train_wall_time_s": round(state["wall_time_s"], 1),
        "device": device_label(device),
    }
    if average is not None:
        result["averaged_epochs"] = average["count"]
    probes = [r["compile"] for r in state["history"] if "compile" in r]
    if probes:
        result["compile"] = probes[-1]
    if half:
        result["half_weights"] = len(half)
    for name in ("calibration", "test"):
        if name in data.splits:
            result[f"ann_{name}_accuracy"] = evaluate_ann(model, data.splits[name])
    weights = on_cpu(model.state_dict())
    for name in half:  # float16 holds these values exactly (round_weights_to_half)
        weights[name] = weights[name].half()
    save_checkpoint(
        {
            "model": weights,
            "config": stored,
            "history": json.dumps(state["history"]),
            "result": json.dumps(result),
            "command": " ".join(["python", "-m", "dynconf", *words]),
        },
        out / "model.pt",
    )
    return result
