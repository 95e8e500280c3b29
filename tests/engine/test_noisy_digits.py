"""The noisy_digits dataset (the "add a dataset" checklist's worked example): digits' splits
and ids with fixed per-image noise, reachable from every place that lists datasets."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from dynconf.engine.data import DATASETS, dataset_names, load_dataset
from dynconf.inputs import sample_image


def test_same_splits_as_digits_with_fixed_noise():
    clean, noisy = load_dataset("digits", seed=3), load_dataset("noisy_digits", seed=3)
    assert noisy.classes == clean.classes and noisy.id_scheme == "sklearn-digits-noisy-index"
    for name, split in clean.splits.items():
        other = noisy.splits[name]
        np.testing.assert_array_equal(other.ids, split.ids)
        np.testing.assert_array_equal(other.labels, split.labels)
        assert other.images.shape == split.images.shape and other.scale == 255.0
        clean_255 = split.images.astype(float) * 255 / 16
        diff = other.images.astype(float) - clean_255
        assert 40 < diff.std() < 70  # real noise, about NOISE_STD (clipping shrinks it)
    again = load_dataset("noisy_digits", seed=3).splits["test"].images
    np.testing.assert_array_equal(again, noisy.splits["test"].images)  # same noise every time


def test_listed_everywhere_and_shown_by_id():
    assert "noisy_digits" in dataset_names() and "noisy_digits" in DATASETS
    test = load_dataset("noisy_digits").splits["test"]
    image, source = sample_image({"id_scheme": "sklearn-digits-noisy-index"}, "test",
                                 int(test.ids[7]), None)  # fmt: skip
    np.testing.assert_array_equal(image, test.images[7, :, :, 0])
    assert "noise" in source
    help_text = subprocess.run(
        [sys.executable, "-m", "dynconf", "train", "--help"], capture_output=True, text=True
    ).stdout
    assert "noisy_digits" in help_text


def test_batches_are_normalised_like_digits():
    test = load_dataset("noisy_digits").splits["test"]
    x, y, _ = next(test.batches(64))
    assert x.shape == (64, 1, 8, 8) and float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert y.tolist() == test.labels[:64].tolist()
