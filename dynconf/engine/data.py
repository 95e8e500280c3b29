"""Datasets for training and simulation: sklearn digits, CIFAR-10 and any ImageFolder tree.

Every dataset is returned as named splits (``train``, ``calibration``, ``test``). The
``calibration`` split is held out of the training images and never trained on: Dynamic
Confidence thresholds are chosen there and reported on ``test`` (method.md section 4).

Small datasets (digits, CIFAR-10) are decoded once into a uint8 array in memory, which makes
an epoch on two CPU cores bound by the network rather than by JPEG decoding. Large
ImageFolder trees (an ImageNet validation folder) are streamed through a DataLoader.

Nothing here downloads anything unless the caller passes ``download=True``.
Sample ids are indices into the source split in ImageFolder order (classes sorted, files
sorted), so a run's ``ids`` array points back at the exact image file. torch is imported only
by the functions that make tensors, so the dashboard can map ids to files without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dynconf.errors import DataError

if TYPE_CHECKING:
    import torch

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")
DATASETS = ("digits", "cifar10", "imagefolder")


@dataclass
class ArraySplit:
    """Images held in memory as uint8 NHWC plus labels and source ids."""

    name: str
    images: np.ndarray  # [N, H, W, C] uint8
    labels: np.ndarray  # [N] int64
    ids: np.ndarray  # [N] int64: index in the source split (ImageFolder order)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float = 255.0  # pixel value that maps to 1.0

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, positions: np.ndarray) -> ArraySplit:
        """The samples at ``positions`` of this split, as a split of their own."""
        return ArraySplit(
            self.name,
            self.images[positions],
            self.labels[positions],
            self.ids[positions],
            self.mean,
            self.std,
            self.scale,
        )

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        augment: bool = False,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
        """Yield (normalised float NCHW images, labels, positions in this split).

        With ``device`` the uint8 batch is moved there first and converted, augmented and
        normalised there: a GPU then never waits on the CPU for a batch. The random draws
        come from the same numpy generator either way, so the batches do not depend on it.
        """
        import torch

        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self)) if shuffle else np.arange(len(self))
        mean = torch.tensor(self.mean, device=device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, -1, 1, 1)
        for start in range(0, len(order), batch_size):
            pos = order[start : start + batch_size]
            images = torch.from_numpy(self.images[pos]).to(device, non_blocking=True)
            x = images.permute(0, 3, 1, 2).float() / self.scale
            if augment:
                x = _crop_and_flip(x, rng)
            x = (x - mean) / std
            labels = torch.from_numpy(self.labels[pos]).to(device, non_blocking=True)
            yield x.contiguous(), labels, pos


def _crop_and_flip(x: torch.Tensor, rng: np.random.Generator, pad: int = 4) -> torch.Tensor:
    """Standard CIFAR augmentation: random crop from a zero-padded image, random h-flip.

    One gather for the whole batch (rows ``dy + i``, columns ``dx + j`` or, flipped,
    ``dx + w - 1 - j``) instead of a Python loop over images, so it costs a few kernels
    on a GPU; tests check it against the per-image loop.
    """
    import torch

    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    flip = rng.random(n) < 0.5
    cols = np.where(flip[:, None], np.arange(w)[::-1], np.arange(w)) + dx[:, None]
    rows = np.arange(h) + dy[:, None]
    index = torch.from_numpy(rows[:, :, None] * (w + 2 * pad) + cols[:, None, :])
    index = index.to(x.device).view(n, 1, h * w).expand(n, c, h * w)
    return padded.flatten(2).gather(2, index).view(n, c, h, w)


@dataclass
class Dataset:
    name: str
    classes: list[str]
    splits: dict[str, ArraySplit]
    id_scheme: str  # how a run's sample ids map back to images, stored in run meta


def stratified_holdout(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of ``per_class`` samples of every class, drawn with a fixed seed, sorted."""
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) <= per_class:
            raise DataError(
                f"class {c} has only {len(members)} samples, cannot hold out {per_class}"
            )
        chosen.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def _split_holdout(split: ArraySplit, holdout: np.ndarray) -> tuple[ArraySplit, ArraySplit]:
    keep = np.setdiff1d(np.arange(len(split)), holdout)

    def take(idx, name):
        return ArraySplit(
            name,
            split.images[idx],
            split.labels[idx],
            split.ids[idx],
            split.mean,
            split.std,
            split.scale,
        )

    return take(keep, "train"), take(holdout, "calibration")


# --------------------------------------------------------------------------- digits


def load_digits(
    calibration_per_class: int = 30, test_fraction: float = 0.3, seed: int = 0
) -> Dataset:
    """sklearn's 8x8 digits (ships with scikit-learn): train / calibration / test splits.

    Ids index ``sklearn.datasets.load_digits().images``.
    """
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
    train, calibration = _split_holdout(full, holdout)
    classes = [str(d) for d in range(10)]
    return Dataset(
        "digits",
        classes,
        {"train": train, "calibration": calibration, "test": test},
        "sklearn-digits-index",
    )


# --------------------------------------------------------------------------- CIFAR-10


def resolve_data_root(data_root: str | os.PathLike | None) -> Path | None:
    """--data-root, else $DYNCONF_DATA, else None."""
    root = data_root if data_root is not None else os.environ.get("DYNCONF_DATA")
    return Path(root).expanduser() if root else None


def find_cifar10_tree(data_root: str | os.PathLike | None) -> Path:
    """The folder holding CIFAR-10's ``train/`` and ``test/`` ImageFolder trees."""
    root = resolve_data_root(data_root)
    if root is None:
        raise DataError("no data root: pass --data-root DIR or set DYNCONF_DATA")
    for candidate in (root, root / "cifar10", root / "CIFAR10", root / "cifar-10"):
        if (candidate / "train").is_dir() and (candidate / "test").is_dir():
            return candidate
    raise DataError(
        f"CIFAR-10 not found under {root}: expected train/<class>/*.jpg and test/<class>/*.jpg "
        "(or torchvision's cifar-10-batches-py folder)"
    )


def scan_imagefolder(root: Path) -> tuple[list[str], list[Path], np.ndarray]:
    """Classes, files and labels of an ImageFolder tree, in torchvision's order."""
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    files, labels = [], []
    for label, cls in enumerate(classes):
        names = sorted(
            e.name
            for e in os.scandir(root / cls)
            if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)
        )
        files += [root / cls / n for n in names]
        labels += [label] * len(names)
    if not files:
        raise DataError(f"image folder {root} holds no images")
    return classes, files, np.asarray(labels, dtype=np.int64)


def _decode_all(files: list[Path]) -> np.ndarray:
    from PIL import Image

    first = np.asarray(Image.open(files[0]).convert("RGB"))
    out = np.empty((len(files), *first.shape), dtype=np.uint8)
    for i, f in enumerate(files):
        try:
            img = np.asarray(Image.open(f).convert("RGB"))
        except Exception as exc:  # a corrupt image must name itself
            raise DataError(f"cannot decode image {f}: {exc}") from exc
        if img.shape != first.shape:
            raise DataError(f"image {f} is {img.shape}, expected {first.shape}")
        out[i] = img
    return out


def _load_cifar10_torchvision(root: Path, download: bool) -> tuple[list[str], dict]:
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
    splits: tuple[str, ...] = ("train", "calibration", "test"),
) -> Dataset:
    """CIFAR-10 from an ImageFolder tree (or torchvision's layout), fully decoded in memory.

    ``calibration`` holds ``calibration_per_class`` training images of each class (5,000 in
    all by default), drawn with ``seed``; ``train`` is the rest. Ids index the source split.
    """
    root = resolve_data_root(data_root)
    torchvision_layout = root is not None and (root / "cifar-10-batches-py").is_dir()
    if torchvision_layout or download:
        if root is None:
            raise DataError("--download needs --data-root DIR")
        classes, arrays = _load_cifar10_torchvision(root, download)
        scheme = "torchvision-cifar10-index"
    else:
        tree = find_cifar10_tree(root)
        arrays = {}
        need = {"train"} if ({"train", "calibration"} & set(splits)) else set()
        need |= {"test"} if "test" in splits else set()
        for split in sorted(need):
            classes, files, labels = scan_imagefolder(tree / split)
            arrays[split] = (_decode_all(files), labels)
        scheme = "imagefolder-index"
    out = {}
    if "train" in arrays:
        images, labels = arrays["train"]
        full = ArraySplit(
            "train", images, labels, np.arange(len(labels)), CIFAR10_MEAN, CIFAR10_STD
        )
        holdout = stratified_holdout(labels, calibration_per_class, seed)
        out["train"], out["calibration"] = _split_holdout(full, holdout)
    if "test" in arrays:
        images, labels = arrays["test"]
        out["test"] = ArraySplit(
            "test", images, labels, np.arange(len(labels)), CIFAR10_MEAN, CIFAR10_STD
        )
    return Dataset("cifar10", classes, {k: v for k, v in out.items() if k in splits}, scheme)


# --------------------------------------------------------------------------- any ImageFolder


class StreamedSplit:
    """A large ImageFolder split read lazily (resize 256, centre crop 224, ImageNet stats)."""

    def __init__(self, name: str, root: Path, image_size: int = 224, workers: int = 2):
        from torchvision import datasets, transforms

        self.name = name
        tf = transforms.Compose(
            [
                transforms.Resize(int(image_size * 256 / 224)),
                transforms.CenterCrop(image_size),
                transforms.ToTensor(),
                transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )
        self.dataset = datasets.ImageFolder(str(root), transform=tf)
        self.labels = np.asarray(self.dataset.targets, dtype=np.int64)
        self.ids = np.arange(len(self.labels), dtype=np.int64)
        self.workers = workers

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, batch_size: int, shuffle: bool = False, augment: bool = False, seed: int = 0):
        import torch

        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=self.workers,
            generator=torch.Generator().manual_seed(seed),
        )
        start = 0
        for x, y in loader:
            pos = np.arange(start, start + len(y))
            start += len(y)
            yield x, y, pos


def load_imagefolder(data_root: str | os.PathLike | None, image_size: int = 224) -> Dataset:
    """Any ImageFolder tree: ``<root>/val`` (or ``test``) is used as the split to simulate.

    A ``train/`` folder, when present, also gives ``train`` and a held-out ``calibration``.
    """
    root = resolve_data_root(data_root)
    if root is None:
        raise DataError("no data root: pass --data-root DIR or set DYNCONF_DATA")
    splits = {}
    for name, folder in (("test", "val"), ("test", "test"), ("train", "train")):
        if (root / folder).is_dir() and name not in splits:
            splits[name] = StreamedSplit(name, root / folder, image_size)
    if not splits:
        raise DataError(f"no val/, test/ or train/ ImageFolder tree under {root}")
    classes = next(iter(splits.values())).dataset.classes
    return Dataset("imagefolder", classes, splits, "imagefolder-index")


def load_dataset(
    name: str,
    data_root=None,
    seed: int = 0,
    download: bool = False,
    splits: tuple[str, ...] = ("train", "calibration", "test"),
) -> Dataset:
    """Load a dataset by name (see DATASETS)."""
    if name == "digits":
        return load_digits(seed=seed)
    if name == "cifar10":
        return load_cifar10(data_root, seed=seed, download=download, splits=splits)
    if name == "imagefolder":
        return load_imagefolder(data_root)
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
