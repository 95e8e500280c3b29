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

from dynconf.errors import DataError


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


def ann_accuracy_by_levels(model, split, levels: list[int], batch_size: int = 500) -> dict:
    """Top-1 accuracy of ``model`` on ``split`` with every QCFS layer set to each of ``levels``.

    The model's own levels are restored afterwards.
    """
    from dynconf.qcfs import qcfs_layers, set_levels
    from dynconf.train import evaluate_ann

    own = [layer.levels for layer in qcfs_layers(model)]
    try:
        result = {}
        for count in levels:
            set_levels(model, count)
            result[str(count)] = evaluate_ann(model, split, batch_size)
        return result
    finally:
        for layer, count in zip(qcfs_layers(model), own, strict=True):
            layer.levels = count


def run_command(args) -> dict:
    import torch

    from dynconf.data import load_dataset
    from dynconf.simulate import pick_device
    from dynconf.train import load_checkpoint, model_from_checkpoint, parse_level_list

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    ckpt = load_checkpoint(args.checkpoint)
    config = ckpt["config"]
    if config["dataset"] != args.dataset:
        raise DataError(f"checkpoint was trained on {config['dataset']}, not {args.dataset}")
    levels = parse_level_list(args.levels, "--levels") if args.levels else [config["levels"]]
    data = load_dataset(
        args.dataset, args.data_root, seed=config.get("seed", 0), splits=(args.split,)
    )
    if args.split not in data.splits:
        raise DataError(f"dataset {args.dataset} has no split {args.split}")
    device = pick_device(args.device)
    model = model_from_checkpoint(ckpt).to(device).to(memory_format=torch.channels_last)
    accuracy = ann_accuracy_by_levels(model, data.splits[args.split], levels, args.batch_size)
    return {
        "checkpoint": str(args.checkpoint),
        "split": args.split,
        "trained_levels": config["levels"],
        "accuracy_by_levels": accuracy,
        "summary": ", ".join(f"L={k}: {100 * v:.2f} %" for k, v in accuracy.items()),
    }
