"""What every dataset is made of: splits that yield batches, the held-out calibration split.

A dataset is a set of named splits (``train``, ``calibration``, ``test``). The
``calibration`` split is held out of the training images and never trained on: Dynamic
Confidence thresholds are chosen there and reported on ``test`` (docs/METHOD.md section 4).

Two kinds of split give the same batches, ``(normalised float NCHW images, labels, positions
in the split)``: an ``ArraySplit`` holds small datasets (digits, CIFAR-10) decoded once as a
uint8 array in memory, which keeps an epoch on two CPU cores bound by the network rather than
by JPEG decoding; a ``StreamedSplit`` reads a large ImageFolder tree (an ImageNet folder)
lazily through a DataLoader.

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

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")
SPLITS = ("train", "calibration", "test")


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

    def take(self, positions: np.ndarray, name: str | None = None) -> ArraySplit:
        """The samples at ``positions`` of this split, as a split of their own."""
        return ArraySplit(
            name or self.name,
            self.images[positions],
            self.labels[positions],
            self.ids[positions],
            self.mean,
            self.std,
            self.scale,
        )

    def load(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised images and labels at some positions, as one batch."""
        x, y, _ = next(self.take(positions).batches(len(positions)))
        return x, y

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        augment: bool = False,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
        """Yield (normalised float NCHW images, labels, positions in this split).

        With ``device`` the whole uint8 split is copied there once (kept for later calls;
        45,000 CIFAR images are 138 MB) and each batch is gathered, converted, augmented and
        normalised there: a GPU then never waits on the CPU for a batch. On the CPU that copy
        is a view of the array, not a copy. The random draws come from the same numpy
        generator either way, so the batches do not depend on the device.
        """
        import torch

        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self)) if shuffle else np.arange(len(self))
        mean = torch.tensor(self.mean, device=device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, -1, 1, 1)
        held = None if device is None else self._held_on(device)
        for start in range(0, len(order), batch_size):
            pos = order[start : start + batch_size]
            if held is None:
                images, labels = (
                    torch.from_numpy(self.images[pos]),
                    torch.from_numpy(self.labels[pos]),
                )
            else:
                index = torch.from_numpy(pos).to(held[0].device, non_blocking=True)
                images, labels = held[0][index], held[1][index]
            x = images.permute(0, 3, 1, 2).float() / self.scale
            if augment:
                x = crop_and_flip(x, rng)
            x = (x - mean) / std
            yield x.contiguous(), labels, pos

    def _held_on(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        """The split's images and labels as tensors on ``device``, copied there once."""
        import torch

        device = torch.device(device)
        if device.type == "cuda" and device.index is None:  # one copy for "cuda" and "cuda:0"
            device = torch.device("cuda", torch.cuda.current_device())
        held = self.__dict__.setdefault("_held", {})
        if str(device) not in held:
            held[str(device)] = (
                torch.from_numpy(self.images).to(device),
                torch.from_numpy(self.labels).to(device),
            )
        return held[str(device)]


class StreamedSplit:
    """An ImageFolder split read lazily (resize, centre crop, normalise), for large trees.

    ``indices`` (default: all) picks the files of the tree that belong to this split, so a
    calibration split can be held out of a ``train/`` tree; ``ids`` are those indices.
    """

    def __init__(
        self,
        name: str,
        root: Path,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        image_size: int = 224,
        workers: int = 2,
        indices: np.ndarray | None = None,
        dataset=None,
    ):
        from torchvision import datasets, transforms

        self.name = name
        if dataset is None:
            tf = transforms.Compose(
                [
                    transforms.Resize(int(image_size * 256 / 224)),
                    transforms.CenterCrop(image_size),
                    transforms.ToTensor(),
                    transforms.Normalize(mean, std),
                ]
            )
            dataset = datasets.ImageFolder(str(root), transform=tf)
        self.root, self.mean, self.std = root, mean, std
        self.image_size, self.dataset, self.workers = image_size, dataset, workers
        targets = np.asarray(dataset.targets, dtype=np.int64)
        self.ids = np.arange(len(targets)) if indices is None else np.asarray(indices)
        self.ids = self.ids.astype(np.int64)
        self.labels = targets[self.ids]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, positions: np.ndarray, name: str | None = None) -> StreamedSplit:
        """The samples at ``positions`` of this split, as a split of their own (no re-scan)."""
        return StreamedSplit(
            name or self.name,
            self.root,
            self.mean,
            self.std,
            self.image_size,
            self.workers,
            indices=self.ids[positions],
            dataset=self.dataset,
        )

    def load(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels at some positions, decoded in this process (no workers)."""
        import torch

        xs = [self.dataset[int(self.ids[p])][0] for p in positions]
        return torch.stack(xs), torch.from_numpy(self.labels[positions])

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        augment: bool = False,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
        """Yield (normalised float NCHW images, labels, positions in this split), as ArraySplit.

        The order is drawn from a numpy generator seeded with ``seed``, so the positions
        returned are the true ones when shuffled. ``augment`` applies the same random crop
        (from a 4-pixel zero pad) and flip as for in-memory splits, on ``device``.
        """
        import torch

        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self)) if shuffle else np.arange(len(self))
        subset = torch.utils.data.Subset(self.dataset, self.ids[order].tolist())
        loader = torch.utils.data.DataLoader(
            subset, batch_size=batch_size, shuffle=False, num_workers=self.workers
        )
        start = 0
        for x, y in loader:
            pos = order[start : start + len(y)]
            start += len(y)
            x = x.to(device, non_blocking=True)
            if augment:
                x = crop_and_flip(x, rng)
            yield x.contiguous(), y.to(device, non_blocking=True), pos


def evenly_spaced(n: int, limit: int | None) -> np.ndarray:
    """Positions of ``limit`` evenly spaced samples of ``n`` (all when limit is None or >= n):
    what `simulate --limit` and `train --limit` take."""
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise DataError("--limit must be at least 1")
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def crop_and_flip(x: torch.Tensor, rng: np.random.Generator, pad: int = 4) -> torch.Tensor:
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


# How a split's pixels become inputs: "normalize", the dataset's own (pixels scaled to [0, 1],
# then (x - mean) / std per channel, what dynconf's models train on), or "none", the raw
# pixels in [0, 1] (what rate coding and networks trained on x / scale take).
TRANSFORMS = ("normalize", "none")


def with_transform(split, transform: str):
    """``split`` with its pixels served under ``transform`` (see TRANSFORMS)."""
    if transform not in TRANSFORMS:
        raise DataError(f"unknown transform {transform!r}; choose one of {', '.join(TRANSFORMS)}")
    if transform == "normalize":
        return split
    zeros, ones = (0.0,) * len(split.mean), (1.0,) * len(split.mean)
    if isinstance(split, ArraySplit):  # (x - 0) / 1 is x / scale exactly
        return ArraySplit(split.name, split.images, split.labels, split.ids, zeros, ones,
                          split.scale)  # fmt: skip
    return StreamedSplit(split.name, split.root, zeros, ones, split.image_size, split.workers,
                         indices=split.ids)  # fmt: skip


def describe_transform(split, transform: str) -> str:
    """In words, what ``transform`` does to ``split``'s pixels (stored in a run's meta)."""
    if isinstance(split, ArraySplit):
        text = f"pixels / {split.scale:g}"
    else:
        resize = int(split.image_size * 256 / 224)
        text = f"resize to {resize}, centre crop {split.image_size}, pixels / 255"
    if transform == "normalize":
        return text + f", then (x - mean) / std with mean {list(split.mean)}, std {list(split.std)}"
    return text + " (raw pixels in [0, 1])"


@dataclass
class Dataset:
    name: str
    classes: list[str]
    splits: dict[str, ArraySplit | StreamedSplit]
    id_scheme: str  # how a run's sample ids map back to images, stored in run meta

    def transform(self, name: str = "normalize") -> str:
        """What the transform ``name`` does to this dataset's pixels, in words."""
        return describe_transform(next(iter(self.splits.values())), name)

    def with_transform(self, name: str) -> Dataset:
        """The same splits served under the transform ``name`` (TRANSFORMS)."""
        splits = {key: with_transform(split, name) for key, split in self.splits.items()}
        return Dataset(self.name, self.classes, splits, self.id_scheme)


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


def split_holdout(split, holdout: np.ndarray):
    """(``train``: every sample not in ``holdout``, ``calibration``: the ``holdout`` ones)."""
    keep = np.setdiff1d(np.arange(len(split)), holdout)
    return split.take(keep, "train"), split.take(holdout, "calibration")


def resolve_data_root(data_root: str | os.PathLike | None) -> Path | None:
    """--data-root, else $DYNCONF_DATA, else None."""
    root = data_root if data_root is not None else os.environ.get("DYNCONF_DATA")
    return Path(root).expanduser() if root else None


def require_data_root(data_root: str | os.PathLike | None) -> Path:
    root = resolve_data_root(data_root)
    if root is None:
        raise DataError("no data root: pass --data-root DIR or set DYNCONF_DATA")
    return root


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


def decode_images(files: list[Path]) -> np.ndarray:
    """Every image file as one uint8 [N, H, W, 3] array; all must have the same size."""
    from PIL import Image

    from dynconf.core.safeopen import open_regular

    def decode(f: Path) -> np.ndarray:  # a regular file only: a FIFO would block the reader
        with open_regular(f, "image", DataError) as fh:
            return np.asarray(Image.open(fh).convert("RGB"))

    first = decode(files[0])
    out = np.empty((len(files), *first.shape), dtype=np.uint8)
    for i, f in enumerate(files):
        try:
            img = decode(f)
        except DataError:
            raise
        except Exception as exc:  # a corrupt image must name itself
            raise DataError(f"cannot decode image {f}: {exc}") from exc
        if img.shape != first.shape:
            raise DataError(f"image {f} is {img.shape}, expected {first.shape}")
        out[i] = img
    return out
