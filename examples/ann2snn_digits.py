"""A ReLU network trained on sklearn digits, converted with SpikingJelly's ann2snn, recorded.

    python examples/ann2snn_digits.py [--epochs 10] [--T 32] [--out DIR]

Trains a small ReLU MLP on the CPU, converts it to integrate-and-fire neurons with
SpikingJelly's rate-coding recipe (thresholds from the largest activations on the training
images), records calibration and test for T steps with ``record_run`` (the converted
network is single-step: it is stepped T times) and evaluates Dynamic Confidence on it.
"""

from __future__ import annotations

import torch
from common import digits_splits, evaluate, parse_args, recording_batches, training_batches
from spikingjelly.activation_based import ann2snn
from torch import nn

from dynconf.record import record_run


def build_ann() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 128),
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def train(ann, split, epochs: int) -> None:
    optimiser = torch.optim.Adam(ann.parameters(), lr=3e-3)
    for epoch in range(epochs):
        for x, y in training_batches(split, epoch=epoch):
            loss = nn.functional.cross_entropy(ann(x), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()


def main() -> dict:
    args = parse_args(__doc__.splitlines()[0], epochs=10)
    splits = digits_splits()
    ann = build_ann()
    train(ann, splits["train"], args.epochs)
    ann.eval()
    calibration_images = [x for x, _ in training_batches(splits["train"], 128)]
    recipe = ann2snn.RateCodingRecipe(dataloader=calibration_images, mode="max")
    snn = ann2snn.Converter(recipe=recipe, device="cpu").convert(ann)
    run = record_run(
        snn,
        {s: recording_batches(splits[s]) for s in ("calibration", "test")},
        T=args.T,
        out=f"{args.out}/ann2snn_digits",
        classes=[str(d) for d in range(10)],
        dataset="digits",
        model_name="ReLU MLP 64-128-64-10 converted by SpikingJelly ann2snn (IF, max norm)",
        overwrite=True,
    )
    with torch.no_grad():
        x, y = next(iter(splits["test"].batches(len(splits["test"]))))[:2]
        print(f"ANN test accuracy: {(ann(x).argmax(1) == y).float().mean():.2%}")
    return evaluate(run)


if __name__ == "__main__":
    main()
