"""Fixtures for the SNN engine tests: a small QCFS CNN trained on sklearn digits, once."""

import pytest
import torch

from dynconf.engine.checkpoint import load_checkpoint, model_from_checkpoint
from dynconf.engine.config import TrainConfig
from dynconf.engine.train import train


def train_args(out, **overrides) -> TrainConfig:
    """The settings of the digits model the tests train: 12 epochs of digits_cnn."""
    values = dict(dataset="digits", arch="digits_cnn", out=str(out), epochs=12, batch_size=64)
    values["lr"] = 0.05
    values.update(overrides)
    return TrainConfig(**values)


def train_quietly(config: TrainConfig) -> dict:
    """``train`` without a progress bar."""
    return train(config, progress=False)


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory):
    """Path of a digits checkpoint trained for 12 epochs (a few seconds on 2 cores)."""
    out = tmp_path_factory.mktemp("digits_ckpt")
    train_quietly(train_args(out))
    return out / "model.pt"


@pytest.fixture
def trained_digits(digits_checkpoint):
    """(ANN in eval mode, (test images, test labels)) for the digits model."""
    from dynconf.engine.data import load_digits

    ann = model_from_checkpoint(load_checkpoint(digits_checkpoint))
    test = load_digits().splits["test"]
    x, y, _ = next(test.batches(len(test)))
    return ann.float().eval(), (x, y)


@pytest.fixture(autouse=True, scope="session")
def _deterministic_torch():
    torch.manual_seed(0)
