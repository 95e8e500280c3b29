"""ANN accuracy of a checkpoint at its own QCFS levels and at more.

An IF neuron run for T steps fires at most T spikes, so its rate resolves about T levels of
its threshold: the quantised ANN with ``levels = T`` is a stand-in for the SNN at T steps
(T >= L) that costs one forward pass instead of T. It ranks candidate weights in about a
minute where a T = 64 simulation of the calibration split takes minutes; the decision to ship
weights still rests on the simulation.

    python -m dynconf ann --checkpoint CKPT --dataset cifar10 --levels 4,8,16,64,256
"""

from __future__ import annotations

import os


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", required=True, help="model.pt written by `train`")
    parser.add_argument("--dataset", required=True, choices=("digits", "cifar10", "imagefolder"))
    parser.add_argument("--data-root", default=None, help="dataset root (else $DYNCONF_DATA)")
    parser.add_argument("--split", default="calibration", help="calibration or test")
    parser.add_argument(
        "--levels",
        default=None,
        metavar="L1,L2,...",
        help="QCFS levels to evaluate at (default: the checkpoint's own)",
    )
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")


def run_command(args) -> dict:
    import torch

    from dynconf.engine.simulate import load_checkpoint_data, pick_device
    from dynconf.engine.train import (
        evaluate_ann,
        load_checkpoint,
        model_from_checkpoint,
        parse_level_list,
    )

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    ckpt = load_checkpoint(args.checkpoint)
    config = ckpt["config"]
    levels = parse_level_list(args.levels, "--levels") if args.levels else [config["levels"]]
    data = load_checkpoint_data(config, args.dataset, args.data_root, [args.split])
    split = data.splits[args.split]
    model = model_from_checkpoint(ckpt).to(pick_device(args.device))
    model = model.to(memory_format=torch.channels_last)
    accuracy = {str(n): evaluate_ann(model, split, args.batch_size, levels=n) for n in levels}
    return {
        "checkpoint": str(args.checkpoint),
        "split": args.split,
        "trained_levels": config["levels"],
        "accuracy_by_levels": accuracy,
        "summary": ", ".join(f"L={k}: {100 * v:.2f} %" for k, v in accuracy.items()),
    }
