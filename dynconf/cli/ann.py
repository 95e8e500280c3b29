"""ANN accuracy of a checkpoint at its own QCFS levels and at more.

The `ann` command: argparse over dynconf.engine.levels, which explains why the ANN at
``levels = T`` stands in for the SNN at T steps. torch is imported only when it runs.
"""

from __future__ import annotations

import argparse

from dynconf.engine.config import LevelsConfig, parse_level_list
from dynconf.engine.data import dataset_names

DEFAULTS = LevelsConfig.defaults()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="model.pt written by `train`")
    parser.add_argument("--dataset", required=True, choices=dataset_names())
    parser.add_argument("--data-root", default=None, help="dataset root (else $DYNCONF_DATA)")
    parser.add_argument("--split", default=DEFAULTS["split"], help="calibration or test")
    parser.add_argument(
        "--levels",
        default=None,
        metavar="L1,L2,...",
        help="QCFS levels to evaluate at (default: the checkpoint's own)",
    )
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument("--device", default=DEFAULTS["device"], help="auto, cpu or cuda[:i]")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")


def config_from_args(args: argparse.Namespace) -> LevelsConfig:
    levels = tuple(parse_level_list(args.levels, "--levels")) if args.levels else None
    return LevelsConfig(
        checkpoint=args.checkpoint,
        dataset=args.dataset,
        data_root=args.data_root,
        split=args.split,
        levels=levels,
        batch_size=args.batch_size,
        device=args.device,
        threads=args.threads,
    )


def run_command(args: argparse.Namespace) -> dict:
    from dynconf.engine.levels import accuracy_by_levels

    return accuracy_by_levels(config_from_args(args))
