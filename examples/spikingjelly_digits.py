"""A SpikingJelly LIF network trained briefly on sklearn digits, recorded and evaluated.

    python examples/spikingjelly_digits.py [--epochs 10] [--T 32] [--out DIR]

Trains a multi-step LIF MLP with surrogate gradients (8 steps, direct encoding) on the CPU
on raw pixels x / 16 (the transform "none"), records the calibration and test splits for T
steps with ``record_run``, then chooses the confidence threshold on calibration and reports
it on test, with the oracle. The same network recorded by the command line must be given the
same inputs: ``dynconf record --model spikingjelly_digits:build_network --weights W.pt
--dataset digits --transform none`` (``own_loop`` is the network's own loop, to compare).
"""

from __future__ import annotations

import torch
from common import digits_splits, evaluate, parse_args, recording_batches, training_batches
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import nn

from dynconf.record import record_run

TRAIN_STEPS = 8
TRANSFORM = "none"  # raw pixels x / 16 in [0, 1]


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


@torch.no_grad()
def own_loop(net, split, T: int, batch_size: int = 128) -> torch.Tensor:
    """The network's per-step outputs ``[T, N, 10]`` from its own multi-step call."""
    net.eval()
    outputs = []
    for x, _, _ in split.batches(batch_size):
        functional.reset_net(net)
        outputs.append(net(x.unsqueeze(0).repeat(T, 1, 1, 1, 1)))
    functional.reset_net(net)
    return torch.cat(outputs, dim=1)


def main() -> dict:
    args = parse_args(__doc__.splitlines()[0], epochs=10)
    splits = digits_splits(TRANSFORM)
    net = build_network()
    train(net, splits["train"], args.epochs)
    torch.save(net.state_dict(), f"{args.out}/spikingjelly_digits.pt")
    run = record_run(
        net,
        {s: recording_batches(splits[s]) for s in ("calibration", "test")},
        T=args.T,
        out=f"{args.out}/spikingjelly_digits",
        classes=[str(d) for d in range(10)],
        dataset="digits",
        model_name="SpikingJelly LIF MLP 64-128-10",
        overwrite=True,
        recording_extra={"transform": TRANSFORM},
    )
    return evaluate(run)


if __name__ == "__main__":
    main()
