"""CIFAR-10, decoded once into memory, from an ImageFolder tree or torchvision's layout.

``calibration`` holds 500 training images of each class (5,000 in all), drawn with the seed;
``train`` is the other 45,000. Ids index the source split (ImageFolder order for a tree,
torchvision's order for its ``cifar-10-batches-py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dynconf.engine.data.base import (
    SPLITS,
    ArraySplit,
    Dataset,
    decode_images,
    require_data_root,
    resolve_data_root,
    scan_imagefolder,
    split_holdout,
    stratified_holdout,
)
from dynconf.errors import DataError

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def find_cifar10_tree(data_root: str | os.PathLike | None) -> Path:
    """The folder holding CIFAR-10's ``train/`` and ``test/`` ImageFolder trees."""
    root = require_data_root(data_root)
    for candidate in (root, root / "cifar10", root / "CIFAR10", root / "cifar-10"):
        if (candidate / "train").is_dir() and (candidate / "test").is_dir():
            return candidate
    raise DataError(
        f"CIFAR-10 not found under {root}: expected train/<class>/*.jpg and test/<class>/*.jpg "
        "(or torchvision's cifar-10-batches-py folder)"
    )


def _load_torchvision(root: Path, download: bool) -> tuple[list[str], dict]:
    from torchvision.datasets import CIFAR10

    out = {}
    for split, train in (("train", True), ("test", False)):
        try:
            ds = CIFAR10(str(root), train=train, download=download)
        except RuntimeError as exc:
            raise DataError(f"CIFAR-10 not found under {root}: {exc}") from exc
        out[split] = (np.asarray(ds.data, dtype=np.uint8), np.asarray(ds.targets, dtype=np.int64))
    return list(ds.classes), out


def load_cifar10(
    data_root: str | os.PathLike | None,
    calibration_per_class: int = 500,
    seed: int = 0,
    download: bool = False,
    splits: tuple[str, ...] = SPLITS,
) -> Dataset:
    """CIFAR-10's ``splits``; only the source folders they need are decoded."""
    root = resolve_data_root(data_root)
    torchvision_layout = root is not None and (root / "cifar-10-batches-py").is_dir()
    if torchvision_layout or download:
        if root is None:
            raise DataError("--download needs --data-root DIR")
        classes, arrays = _load_torchvision(root, download)
        scheme = "torchvision-cifar10-index"
    else:
        tree = find_cifar10_tree(root)
        arrays = {}
        need = {"train"} if ({"train", "calibration"} & set(splits)) else set()
        need |= {"test"} if "test" in splits else set()
        for split in sorted(need):
            classes, files, labels = scan_imagefolder(tree / split)
            arrays[split] = (decode_images(files), labels)
        scheme = "imagefolder-index"
    out = {}
    if "train" in arrays:
        images, labels = arrays["train"]
        full = ArraySplit(
            "train", images, labels, np.arange(len(labels)), CIFAR10_MEAN, CIFAR10_STD
        )
        holdout = stratified_holdout(labels, calibration_per_class, seed)
        out["train"], out["calibration"] = split_holdout(full, holdout)
    if "test" in arrays:
        images, labels = arrays["test"]
        out["test"] = ArraySplit(
            "test", images, labels, np.arange(len(labels)), CIFAR10_MEAN, CIFAR10_STD
        )
    return Dataset("cifar10", classes, {k: v for k, v in out.items() if k in splits}, scheme)


def load(data_root=None, seed: int = 0, download: bool = False, splits=SPLITS) -> Dataset:
    """The registry's entry point."""
    return load_cifar10(data_root, seed=seed, download=download, splits=splits)
