"""Any ImageFolder tree (an ImageNet folder, your own images), streamed from disk.

``<root>/val/`` (or ``test/``) is the ``test`` split. A ``<root>/train/`` tree gives ``train``
and, held out of it, ``calibration``: a tenth of the smallest class, at most 50 images, from
every class, drawn with the seed (ImageNet: 50,000 images). Without ``train/`` there is
nothing to train on or calibrate with: such a tree can be simulated, not trained.
Images are resized, centre-cropped to ``image_size`` and normalised with ImageNet's
statistics; ids index the source tree in ImageFolder order.
"""

from __future__ import annotations

import os

import numpy as np

from dynconf.engine.data.base import (
    SPLITS,
    Dataset,
    StreamedSplit,
    require_data_root,
    split_holdout,
    stratified_holdout,
)
from dynconf.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ID_SCHEME = "imagefolder-index"
CALIBRATION_FRACTION = 0.1  # of the smallest class, held out of every class
CALIBRATION_MAX_PER_CLASS = 50


def calibration_per_class(labels: np.ndarray) -> int:
    """How many images of each class the calibration split holds for these training labels."""
    smallest = int(np.bincount(labels).min()) if len(labels) else 0
    return max(1, min(CALIBRATION_MAX_PER_CLASS, round(CALIBRATION_FRACTION * smallest)))


def load_imagefolder(
    data_root: str | os.PathLike | None,
    image_size: int = 224,
    seed: int = 0,
    splits: tuple[str, ...] = SPLITS,
) -> Dataset:
    """The ``splits`` of an ImageFolder tree that it has (see the module docstring)."""
    root = require_data_root(data_root)
    test_folder = next((root / f for f in ("val", "test") if (root / f).is_dir()), None)
    has_train = (root / "train").is_dir()
    if test_folder is None and not has_train:
        raise DataError(f"no val/, test/ or train/ ImageFolder tree under {root}")
    out = {}
    if test_folder is not None and "test" in splits:
        out["test"] = StreamedSplit("test", test_folder, IMAGENET_MEAN, IMAGENET_STD, image_size)
    if has_train and {"train", "calibration"} & set(splits):
        full = StreamedSplit("train", root / "train", IMAGENET_MEAN, IMAGENET_STD, image_size)
        holdout = stratified_holdout(full.labels, calibration_per_class(full.labels), seed)
        out["train"], out["calibration"] = split_holdout(full, holdout)
    if out:
        classes = next(iter(out.values())).dataset.classes
    else:  # asked only for splits this tree lacks: the caller names them
        folder = test_folder if test_folder is not None else root / "train"
        classes = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    return Dataset("imagefolder", classes, {k: v for k, v in out.items() if k in splits}, ID_SCHEME)


def load(data_root=None, seed: int = 0, download: bool = False, splits=SPLITS) -> Dataset:
    """The registry's entry point (nothing to download: the tree must be there)."""
    return load_imagefolder(data_root, seed=seed, splits=splits)
