"""A SpikingJelly LIF network trained briefly on sklearn digits, recorded and evaluated.

    python examples/spikingjelly_digits.py [--epochs 10] [--T 32] [--out DIR]

Trains a multi-step LIF MLP with surrogate gradients (8 steps, direct encoding) on the CPU,
records the calibration and test splits for T steps with ``record_run``, then chooses the
confidence threshold on calibration and reports it on test, with the oracle.
"""

from __future__ import annotations

import torch
from common import digits_splits, evaluate, parse_args, recording_batches, training_batches
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import nn

from dynconf.record import record_run

TRAIN_STEPS = 8


def build_network() -> nn.Module:
    net = nn.Sequential(
        layer.Flatten(),
        layer.Linear(64, 128),
        neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), detach_reset=True),
        layer.Linear(128, 10),
    )
    functional.set_step_mode(net, "m")  # takes [T, B, ...], returns [T, B, 10]
    return net


def train(net, split, epochs: int) -> None:
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    for epoch in range(epochs):
        for x, y in training_batches(split, epoch=epoch):
            functional.reset_net(net)
            frames = x.unsqueeze(0).repeat(TRAIN_STEPS, 1, 1, 1, 1)
            loss = nn.functional.cross_entropy(net(frames).mean(0), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    functional.reset_net(net)


def main() -> dict:
    args = parse_args(__doc__.splitlines()[0], epochs=10)
    splits = digits_splits()
    net = build_network()
    train(net, splits["train"], args.epochs)
    run = record_run(
        net,
        {s: recording_batches(splits[s]) for s in ("calibration", "test")},
        T=args.T,
        out=f"{args.out}/spikingjelly_digits",
        classes=[str(d) for d in range(10)],
        dataset="digits",
        model_name="SpikingJelly LIF MLP 64-128-10",
        overwrite=True,
    )
    return evaluate(run)


if __name__ == "__main__":
    main()
