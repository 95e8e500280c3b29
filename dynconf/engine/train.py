"""Train a QCFS network (the ANN that gets converted to an SNN), with resumable checkpoints.

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
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

from dynconf.errors import DataError

DEFAULTS = {
    "epochs": 30,
    "batch_size": 128,
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "label_smoothing": 0.0,
    "warmup_epochs": 1.0,
    "schedule": "cosine",
    "seed": 0,
    "average_from": 0,
}


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", required=True, choices=("digits", "cifar10", "imagefolder"))
    parser.add_argument("--data-root", default=None, help="dataset root (else $DYNCONF_DATA)")
    parser.add_argument(
        "--download",
        action="store_true",
        help="let torchvision download CIFAR-10 into --data-root (off by default)",
    )
    parser.add_argument("--arch", required=True)
    parser.add_argument("--levels", type=int, default=4, help="QCFS quantisation levels L")
    parser.add_argument("--out", required=True, help="checkpoint directory (resumed if present)")
    parser.add_argument(
        "--init",
        default=None,
        help="start from the weights of this finished checkpoint (new optimizer and schedule)",
    )
    parser.add_argument(
        "--train-levels",
        default=None,
        metavar="L1,L2,...",
        help="cycle the QCFS levels through these, one per training batch (must include "
        "--levels); the SNN at T steps resolves about T levels, so this trains the network "
        "for the long simulations too. Evaluation and the checkpoint use --levels",
    )
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    parser.add_argument("--momentum", type=float, default=DEFAULTS["momentum"])
    parser.add_argument("--weight-decay", type=float, default=DEFAULTS["weight_decay"])
    parser.add_argument("--label-smoothing", type=float, default=DEFAULTS["label_smoothing"])
    parser.add_argument("--warmup-epochs", type=float, default=DEFAULTS["warmup_epochs"])
    parser.add_argument(
        "--schedule",
        choices=("cosine", "onecycle", "constant", "cyclic"),
        default=DEFAULTS["schedule"],
    )
    parser.add_argument(
        "--average-from",
        type=int,
        default=DEFAULTS["average_from"],
        metavar="EPOCH",
        help="average the weights of every epoch from this one on (SWA; 0: off)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda[:i]")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: all cores)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


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


def save_atomic(obj, path: Path) -> None:
    """torch.save to a temp file, fsync, then rename: a kill never leaves half a checkpoint."""
    import torch

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a dynconf checkpoint safely (weights_only) and check what it must hold."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(f"checkpoint {path} cannot be loaded safely: {exc}") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise DataError(
            f"checkpoint {path} is not a dynconf checkpoint (needs 'model' and 'config')"
        )
    return ckpt


def training_commands(ckpt: dict) -> list[str]:
    """Every command that shaped a checkpoint's weights, oldest first.

    A warm restart (``--init``) records the commands of the checkpoint it started from, so a
    chain of restarts keeps its whole history, not just the last link.
    """
    init = ckpt["config"].get("init") or {}
    # checkpoints restarted before the chain was recorded hold only the previous command
    earlier = init.get("commands") or ([init["command"]] if init.get("command") else [])
    return [*earlier, *([ckpt["command"]] if ckpt.get("command") else [])]


def model_from_checkpoint(ckpt: dict):
    """Rebuild the QCFS network described by a checkpoint and load its weights."""
    from dynconf.engine.qcfs import build_model

    cfg = ckpt["config"]
    model = build_model(cfg["arch"], cfg["levels"], cfg["num_classes"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise DataError(f"checkpoint weights do not fit {cfg['arch']}: {exc}") from exc
    return model.eval()


def check_init_compatible(init_config: dict, config: dict, path) -> None:
    """Refuse to fine-tune from weights of another network or another calibration hold-out.

    A different hold-out would mean some calibration images were seen in training, which makes
    the calibration split useless for choosing a threshold.
    """
    for key in ("arch", "levels", "num_classes", "dataset", "id_scheme"):
        if init_config.get(key) != config.get(key):
            raise DataError(
                f"--init {path}: its {key} is {init_config.get(key)!r}, "
                f"this run's is {config.get(key)!r}"
            )
    if list(init_config.get("calibration_ids", [])) != list(config["calibration_ids"]):
        raise DataError(
            f"--init {path} held out other calibration images (another --seed?): "
            "fine-tuning would train on this run's calibration split"
        )


def evaluate_ann(model, split, batch_size: int = 500, levels: int | None = None) -> float:
    """Top-1 accuracy of the (quantised) ANN on a split, on the device the model is on.

    ``levels``: evaluate with every QCFS layer at this many levels instead of its own (see
    ``qcfs.set_levels``); the layers get their own levels back afterwards.
    """
    import torch

    from dynconf.engine.qcfs import qcfs_layers, set_levels

    own_levels = [layer.levels for layer in qcfs_layers(model)]
    device = next(model.parameters()).device
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    try:
        if levels is not None:
            set_levels(model, levels)
        with torch.no_grad():
            for x, y, _ in split.batches(batch_size, device=device):
                logits = model(x.contiguous(memory_format=torch.channels_last))
                correct += (logits.argmax(1) == y).sum()
    finally:
        for layer, own in zip(qcfs_layers(model), own_levels, strict=True):
            layer.levels = own
    return correct.item() / len(split)


def on_cpu(obj):
    """A copy of a (nested) state dict with every tensor on the CPU.

    Checkpoints written on a GPU must load and resume on a machine without one.
    """
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {key: on_cpu(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(on_cpu(value) for value in obj)
    return obj


def parse_level_list(text: str, option: str) -> list[int]:
    """A comma list of QCFS levels such as ``"4,8,16,64"`` as ints; errors name ``option``."""
    try:
        parsed = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise DataError(f"{option} {text!r}: expected integers such as 4,8,16,64") from None
    if not parsed or min(parsed) < 1:
        raise DataError(f"{option} {text!r}: levels must be integers >= 1")
    return parsed


def parse_train_levels(text: str | None, levels: int) -> list[int]:
    """``--train-levels "4,8,16,64"`` as a list of ints; it must include ``--levels``."""
    if text is None:
        return [levels]
    parsed = parse_level_list(text, "--train-levels")
    if levels not in parsed:
        raise DataError(
            f"--train-levels {text!r} must include --levels {levels}, the levels the "
            "checkpoint keeps and is evaluated at"
        )
    return parsed


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


def train(args) -> dict:
    import torch
    from torch.optim.swa_utils import update_bn
    from tqdm import tqdm

    from dynconf.engine.data import load_dataset
    from dynconf.engine.qcfs import build_model, set_levels
    from dynconf.engine.simulate import pick_device

    if args.average_from < 0:
        raise DataError("--average-from must be an epoch number >= 1, or 0 for off")
    train_levels = parse_train_levels(args.train_levels, args.levels)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    device = pick_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: pick the fastest kernels
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_dataset(args.dataset, args.data_root, seed=args.seed, download=args.download)
    train_split = data.splits["train"]
    config = {
        "arch": args.arch,
        "levels": args.levels,
        "dataset": args.dataset,
        "num_classes": len(data.classes),
        "classes": data.classes,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "momentum": args.momentum,
        "weight_decay": args.weight_decay,
        "label_smoothing": args.label_smoothing,
        "warmup_epochs": args.warmup_epochs,
        "schedule": args.schedule,
        "average_from": args.average_from,
        "train_levels": train_levels,
        "seed": args.seed,
        "train_size": len(train_split),
        "id_scheme": data.id_scheme,
        "calibration_ids": data.splits["calibration"].ids.tolist()
        if "calibration" in data.splits
        else [],
    }
    torch.manual_seed(args.seed)
    model = build_model(args.arch, args.levels, len(data.classes))
    model = model.to(device, memory_format=torch.channels_last)
    # Thresholds (lambda) and BN/bias parameters are not weight-decayed.
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [
            {"params": decay, "weight_decay": args.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=args.lr,
        momentum=args.momentum,
        nesterov=True,
    )
    state = {"epoch": 0, "history": [], "wall_time_s": 0.0}
    average = None  # running mean of the weights (--average-from), with how many epochs it holds
    last = out / "last.pt"
    if args.init:
        init = load_checkpoint(args.init)
        check_init_compatible(init["config"], config, args.init)
        model.load_state_dict(init["model"])
        config["init"] = {
            "checkpoint": str(args.init),
            "commands": training_commands(init),
            "epochs": len(json.loads(init.get("history", "[]"))),
        }
    if last.exists():
        ckpt = load_checkpoint(last)
        if ckpt["config"]["arch"] != args.arch or ckpt["config"]["levels"] != args.levels:
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
            args.batch_size,
            shuffle=True,
            augment=args.dataset != "digits",
            seed=seed,
            device=device,
        )

    steps_per_epoch = math.ceil(len(train_split) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    warmup_steps = int(args.warmup_epochs * steps_per_epoch)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    for epoch in range(state["epoch"], args.epochs):
        started = time.time()
        model.train()
        seen = 0
        # Sums stay on the device: reading them every step would stall a GPU once per batch.
        correct = torch.zeros((), dtype=torch.int64, device=device)
        loss_sum = torch.zeros((), device=device)
        bar = tqdm(
            training_batches(seed=args.seed * 1000 + epoch),
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{args.epochs}",
            disable=args.no_progress,
            file=sys.stderr,
            mininterval=2.0,
        )
        for i, (x, y, _) in enumerate(bar):
            lr = learning_rate(
                epoch * steps_per_epoch + i,
                total_steps,
                warmup_steps,
                args.lr,
                args.schedule,
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
            if not args.no_progress and i % 20 == 0:
                bar.set_postfix(
                    loss=f"{loss_sum.item() / seen:.3f}",
                    acc=f"{correct.item() / seen:.3f}",
                    lr=f"{lr:.4f}",
                )
        set_levels(model, args.levels)
        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum.item() / seen,
            "train_accuracy": correct.item() / seen,
            "seconds": time.time() - started,
        }
        if "calibration" in data.splits:
            record["calibration_accuracy"] = evaluate_ann(model, data.splits["calibration"])
            if max(train_levels) > args.levels:
                record[f"calibration_accuracy_L{max(train_levels)}"] = evaluate_ann(
                    model, data.splits["calibration"], levels=max(train_levels)
                )
        if args.average_from and epoch + 1 >= args.average_from:
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
            "config": config,
            "history": json.dumps(state["history"]),
            "wall_time_s": state["wall_time_s"],
        }
        if average is not None:
            training_state["average"] = on_cpu(average)
        save_atomic(training_state, last)

    if average is not None:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(average["params"][name])
        # Averaged weights never ran a batch, so the BatchNorm statistics left from training
        # belong to other weights: refit them as an equal-weight mean over one training pass.
        started = time.time()
        update_bn(training_batches(seed=args.seed * 1000 + args.epochs), model)
        state["wall_time_s"] += time.time() - started

    result = {
        "checkpoint": str(out / "model.pt"),
        "epochs": state["epoch"],
        "train_wall_time_s": round(state["wall_time_s"], 1),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
    }
    if average is not None:
        result["averaged_epochs"] = average["count"]
    for name in ("calibration", "test"):
        if name in data.splits:
            result[f"ann_{name}_accuracy"] = evaluate_ann(model, data.splits[name])
    save_atomic(
        {
            "model": on_cpu(model.state_dict()),
            "config": config,
            "history": json.dumps(state["history"]),
            "result": json.dumps(result),
            "command": " ".join(["python", "-m", "dynconf", *sys.argv[1:]]),
        },
        out / "model.pt",
    )
    return result


def run_command(args) -> dict:
    return train(args)
