"""ANN accuracy of a checkpoint at its own QCFS levels and at more (the `ann` command).

An IF neuron run for T steps fires at most T spikes, so its rate resolves about T levels of
its threshold: the quantised ANN with ``levels = T`` is a stand-in for the SNN at T steps
(T >= L) that costs one forward pass instead of T. It ranks candidate weights in about a
minute where a T = 64 simulation of the calibration split takes minutes; the decision to ship
weights still rests on the simulation.

    python -m dynconf ann --checkpoint CKPT --dataset cifar10 --levels 4,8,16,64,256
"""

from __future__ import annotations

from dynconf.core.formatting import pct
from dynconf.engine.checkpoint import load_checkpoint, load_checkpoint_data, model_from_checkpoint
from dynconf.engine.config import LevelsConfig, check_levels
from dynconf.engine.device import pick_device, set_threads
from dynconf.engine.evaluate import evaluate_ann


def accuracy_by_levels(config: LevelsConfig) -> dict:
    """The checkpoint's ANN accuracy on ``config.split`` at each of ``config.levels``."""
    import torch

    set_threads(config.threads)
    ckpt = load_checkpoint(config.checkpoint)
    trained = ckpt["config"]
    levels = check_levels(config.levels, "--levels") if config.levels else [trained["levels"]]
    data = load_checkpoint_data(trained, config.dataset, config.data_root, [config.split])
    split = data.splits[config.split]
    model = model_from_checkpoint(ckpt).to(pick_device(config.device))
    model = model.to(memory_format=torch.channels_last)
    accuracy = {str(n): evaluate_ann(model, split, config.batch_size, levels=n) for n in levels}
    return {
        "checkpoint": str(config.checkpoint),
        "split": config.split,
        "trained_levels": trained["levels"],
        "accuracy_by_levels": accuracy,
        "summary": ", ".join(f"L={k}: {pct(v)}" for k, v in accuracy.items()),
    }
