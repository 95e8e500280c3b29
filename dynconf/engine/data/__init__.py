"""Datasets for training and simulation, by name: the one list of them is ``DATASETS``.

Each dataset is one module here whose ``load(data_root, seed, download, splits)`` returns a
``Dataset`` of named splits (see base.py). CLI choices and the app's menu read
``dataset_names()``. To add a dataset, write its module and add it to the import and to
``DATASETS`` below (docs/ARCHITECTURE.md). Nothing here downloads anything unless the caller
passes ``download=True``, and importing this package imports no torch: the dashboard maps
sample ids to image files with ``scan_imagefolder`` alone.
"""

from __future__ import annotations

from collections.abc import Callable

from dynconf.engine.data import cifar10, digits, imagefolder, noisy_digits
from dynconf.engine.data.base import (
    SPLITS,
    ArraySplit,
    Dataset,
    StreamedSplit,
    crop_and_flip,
    resolve_data_root,
    scan_imagefolder,
    stratified_holdout,
)
from dynconf.engine.data.cifar10 import CIFAR10_MEAN, CIFAR10_STD, load_cifar10
from dynconf.engine.data.digits import load_digits
from dynconf.engine.data.imagefolder import IMAGENET_MEAN, IMAGENET_STD, load_imagefolder
from dynconf.errors import DataError

DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": digits.load,
    "cifar10": cifar10.load,
    "imagefolder": imagefolder.load,
    "noisy_digits": noisy_digits.load,
}


def dataset_names() -> tuple[str, ...]:
    return tuple(DATASETS)


def load_dataset(
    name: str,
    data_root=None,
    seed: int = 0,
    download: bool = False,
    splits: tuple[str, ...] = SPLITS,
) -> Dataset:
    """Load a dataset by name (see DATASETS); ``seed`` draws the calibration hold-out."""
    try:
        load = DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None
    return load(data_root, seed=seed, download=download, splits=tuple(splits))


__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "DATASETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SPLITS",
    "ArraySplit",
    "Dataset",
    "StreamedSplit",
    "crop_and_flip",
    "dataset_names",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_imagefolder",
    "resolve_data_root",
    "scan_imagefolder",
    "stratified_holdout",
]
