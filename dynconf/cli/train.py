"""Train a QCFS network (the ANN that gets converted to an SNN), with resumable checkpoints.

The `train` command: argparse over dynconf.engine.train, which does the work; see its
docstring for the schedule, resuming, warm restarts and weight averaging. torch is imported
only when the command runs, so `python -m dynconf --help` stays fast.
"""

from __future__ import annotations

import argparse

from dynconf.engine.config import AMP_MODES, SCHEDULES, TrainConfig, parse_level_list
from dynconf.engine.data import dataset_names

DEFAULTS = TrainConfig.defaults()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=dataset_names())
    parser.add_argument("--data-root", default=None, help="dataset root (else $DYNCONF_DATA)")
    parser.add_argument(
        "--download",
        action="store_true",
        help="let torchvision download CIFAR-10 into --data-root (off by default)",
    )
    parser.add_argument("--arch", required=True)
    parser.add_argument(
        "--levels", type=int, default=DEFAULTS["levels"], help="QCFS quantisation levels L"
    )
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
    parser.add_argument("--schedule", choices=SCHEDULES, default=DEFAULTS["schedule"])
    parser.add_argument(
        "--average-from",
        type=int,
        default=DEFAULTS["average_from"],
        metavar="EPOCH",
        help="average the weights of every epoch from this one on (SWA; 0: off)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument(
        "--device", default=DEFAULTS["device"], help="auto (CUDA if present), cpu, cuda[:i]"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: all cores)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_time_boxed_arguments(parser)


def add_time_boxed_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of time-boxed training (engine/speed.py), one argument group."""
    timed = parser.add_argument_group(
        "time-boxed training", "settings that fit training into a given time on any GPU"
    )
    timed.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="train and evaluate on only N evenly spaced images of each split (a smoke test; "
        "the checkpoint still records the whole calibration hold-out)",
    )
    timed.add_argument(
        "--amp",
        choices=AMP_MODES,
        default=DEFAULTS["amp"],
        help="bf16: bfloat16 autocast for the training steps (evaluation stays float32)",
    )
    timed.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the training steps; the first epoch times eager and compiled "
        "steps and keeps the faster (the last partial batch of each epoch is dropped)",
    )
    timed.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="train as many epochs (at most --epochs) as fit in SECONDS, sized from the "
        "first epoch (which must be all warm-up); the checkpoint records the count",
    )
    timed.add_argument(
        "--checkpoint-every",
        type=int,
        default=DEFAULTS["checkpoint_every"],
        metavar="N",
        help="write last.pt every N epochs (a kill loses at most N epochs)",
    )
    timed.add_argument(
        "--half-weights",
        action="store_true",
        help="round conv/linear weights to float16 after training and store them so: "
        "model.pt is half the size and holds exactly the network evaluated and simulated",
    )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    train_levels = args.train_levels
    return TrainConfig(
        dataset=args.dataset,
        arch=args.arch,
        out=args.out,
        data_root=args.data_root,
        download=args.download,
        levels=args.levels,
        init=args.init,
        train_levels=None
        if train_levels is None
        else tuple(parse_level_list(train_levels, "--train-levels")),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        warmup_epochs=args.warmup_epochs,
        schedule=args.schedule,
        average_from=args.average_from,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        limit=args.limit,
        amp=args.amp,
        compile=args.compile,
        time_budget_s=args.time_budget,
        checkpoint_every=args.checkpoint_every,
        half_weights=args.half_weights,
    )


def run_command(args: argparse.Namespace) -> dict:
    from dynconf.engine.train import train

    return train(
        config_from_args(args),
        progress=not args.no_progress,
        argv_words=getattr(args, "argv", None),
    )
