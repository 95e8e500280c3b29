"""An snnTorch Leaky network trained briefly on sklearn digits, recorded and evaluated.

    python examples/snntorch_digits.py [--epochs 10] [--T 32] [--out DIR]

Stateful Leaky neurons (``init_hidden=True``) in an ``nn.Sequential``, trained with
surrogate gradients for 8 steps per image on the CPU; the output layer's membrane potential
is the readout. ``record_run`` records the calibration and test splits for T steps; the
threshold is chosen on calibration and reported on test, with the oracle.
"""

from __future__ import annotations

import snntorch as snn
import torch
from common import digits_splits, evaluate, parse_args, recording_batches, training_batches
from snntorch import surrogate, utils
from torch import nn

from dynconf.record import record_run

TRAIN_STEPS = 8


def build_network() -> nn.Module:
    grad = surrogate.atan()
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 128),
        snn.Leaky(beta=0.9, spike_grad=grad, init_hidden=True),
        nn.Linear(128, 10),
        snn.Leaky(beta=0.9, spike_grad=grad, init_hidden=True, output=True),  # (spk, mem)
    )


def train(net, split, epochs: int) -> None:
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    for epoch in range(epochs):
        for x, y in training_batches(split, epoch=epoch):
            utils.reset(net)
            membrane = torch.stack([net(x)[1] for _ in range(TRAIN_STEPS)])
            loss = nn.functional.cross_entropy(membrane.mean(0), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    utils.reset(net)


def main() -> dict:
    args = parse_args(__doc__.splitlines()[0], epochs=10)
    splits = digits_splits()
    net = build_network()
    train(net, splits["train"], args.epochs)
    run = record_run(
        net,
        {s: recording_batches(splits[s]) for s in ("calibration", "test")},
        T=args.T,
        out=f"{args.out}/snntorch_digits",
        readout="membrane",
        classes=[str(d) for d in range(10)],
        dataset="digits",
        model_name="snnTorch Leaky MLP 64-128-10",
        overwrite=True,
    )
    return evaluate(run)


if __name__ == "__main__":
    main()
