"""Fixtures for the SNN engine tests: a small QCFS CNN trained on sklearn digits, once."""

import argparse

import pytest
import torch

from dynconf.engine import train as train_module


def train_args(out, **overrides):
    """The namespace `python -m dynconf train` would build, for in-process training."""
    values = dict(
        dataset="digits",
        data_root=None,
        download=False,
        arch="digits_cnn",
        levels=4,
        out=str(out),
        init=None,
        epochs=12,
        batch_size=64,
        lr=0.05,
        momentum=0.9,
        weight_decay=5e-4,
        label_smoothing=0.0,
        warmup_epochs=1.0,
        schedule="cosine",
        average_from=0,
        train_levels=None,
        seed=0,
        device="auto",
        threads=None,
        no_progress=True,
    )
    values.update(overrides)
    return argparse.Namespace(**values)


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory):
    """Path of a digits checkpoint trained for 12 epochs (a few seconds on 2 cores)."""
    out = tmp_path_factory.mktemp("digits_ckpt")
    train_module.train(train_args(out))
    return out / "model.pt"


@pytest.fixture
def trained_digits(digits_checkpoint):
    """(ANN in eval mode, (test images, test labels)) for the digits model."""
    from dynconf.engine.data import load_digits

    ann = train_module.model_from_checkpoint(train_module.load_checkpoint(digits_checkpoint))
    test = load_digits().splits["test"]
    x, y, _ = next(test.batches(len(test)))
    return ann.float().eval(), (x, y)


@pytest.fixture(autouse=True, scope="session")
def _deterministic_torch():
    torch.manual_seed(0)
