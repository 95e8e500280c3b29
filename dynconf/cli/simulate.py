"""Turn a trained QCFS checkpoint into a cached run: simulate every sample for T_max steps.

The `simulate` command: argparse over dynconf.engine.simulate, which does the work (resumable
after a kill, atomic run writes, a progress file for the dashboard). torch is imported only
when the command runs.

Several processes (GPUs, machines) share the work when started by torchrun:
``torchrun --nproc_per_node P -m dynconf simulate ...`` (README, "More than one machine").
"""

from __future__ import annotations

import argparse

from dynconf.engine.config import SimulateConfig, parse_splits
from dynconf.engine.data import dataset_names

DEFAULTS = SimulateConfig.defaults()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="model.pt written by `train`")
    parser.add_argument("--dataset", required=True, choices=dataset_names())
    parser.add_argument("--data-root", default=None, help="dataset root (else $DYNCONF_DATA)")
    parser.add_argument(
        "--T", type=int, default=DEFAULTS["T"], help="time steps per sample (T_max)"
    )
    parser.add_argument(
        "--splits", default=",".join(DEFAULTS["splits"]), help="comma-separated splits"
    )
    parser.add_argument("--out", required=True, help="run directory to create")
    parser.add_argument("--name", default=None, help="run name (default: the folder name)")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument(
        "--chunk", type=int, default=DEFAULTS["chunk"], help="time steps per multi-step call"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="simulate only N evenly spaced samples of each split (quick looks)",
    )
    parser.add_argument("--device", default=DEFAULTS["device"], help="auto, cpu or cuda[:i]")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--progress-file", default=None, help="JSON progress for other processes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--no-checkpoint-copy", action="store_true", help="do not copy the checkpoint into the run"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run")


def config_from_args(args: argparse.Namespace) -> SimulateConfig:
    return SimulateConfig(
        checkpoint=args.checkpoint,
        dataset=args.dataset,
        out=args.out,
        data_root=args.data_root,
        T=args.T,
        splits=parse_splits(args.splits),
        name=args.name,
        batch_size=args.batch_size,
        chunk=args.chunk,
        limit=args.limit,
        device=args.device,
        threads=args.threads,
        progress_file=args.progress_file,
        copy_checkpoint=not args.no_checkpoint_copy,
        overwrite=args.overwrite,
    )


def run_command(args: argparse.Namespace) -> dict:
    from dynconf.engine.distributed import env_world, quiet_unless_main
    from dynconf.engine.simulate import simulate_checkpoint

    quiet_unless_main(env_world())  # under torchrun only rank 0 prints the result
    # The run records the `simulate` words that reproduce it (command_words), not argv.
    return simulate_checkpoint(config_from_args(args), progress=not args.no_progress)
