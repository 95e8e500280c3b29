"""sklearn's 8x8 digits: the dataset that needs no download (it ships with scikit-learn).

1,797 images: 30 % for ``test``, and of the rest 30 per class held out as ``calibration``.
Ids index ``sklearn.datasets.load_digits().images``.
"""

from __future__ import annotations

import numpy as np

from dynconf.engine.data.base import SPLITS, ArraySplit, Dataset, split_holdout, stratified_holdout

ID_SCHEME = "sklearn-digits-index"


def load_digits(
    calibration_per_class: int = 30, test_fraction: float = 0.3, seed: int = 0
) -> Dataset:
    """sklearn's digits as train / calibration / test splits, drawn with ``seed``."""
    from sklearn.datasets import load_digits as sk_load

    bunch = sk_load()
    images = (bunch.images[..., None]).astype(np.uint8)  # values 0..16
    labels = bunch.target.astype(np.int64)
    ids = np.arange(len(labels), dtype=np.int64)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(labels))
    n_test = int(round(test_fraction * len(labels)))
    test_idx, rest = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    mean, std = (0.5,), (0.5,)
    full = ArraySplit("train", images[rest], labels[rest], ids[rest], mean, std, 16.0)
    test = ArraySplit("test", images[test_idx], labels[test_idx], ids[test_idx], mean, std, 16.0)
    holdout = stratified_holdout(full.labels, calibration_per_class, seed)
    train, calibration = split_holdout(full, holdout)
    classes = [str(d) for d in range(10)]
    return Dataset(
        "digits", classes, {"train": train, "calibration": calibration, "test": test}, ID_SCHEME
    )


def load(data_root=None, seed: int = 0, download: bool = False, splits=SPLITS) -> Dataset:
    """The registry's entry point; digits has no root and no download, and is cheap to load
    whole, so every split is returned."""
    return load_digits(seed=seed)
