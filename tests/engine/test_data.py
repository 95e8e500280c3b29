"""Datasets: held-out calibration split, ImageFolder order, clear errors for absent data."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dynconf.engine.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    ArraySplit,
    crop_and_flip,
    load_cifar10,
    load_digits,
    load_imagefolder,
    scan_imagefolder,
)
from dynconf.errors import DataError

SHARED_CIFAR = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10"


def test_digits_splits_are_disjoint_and_stratified():
    data = load_digits()
    ids = {name: set(split.ids.tolist()) for name, split in data.splits.items()}
    assert not (ids["train"] & ids["calibration"]) and not (ids["train"] & ids["test"])
    assert not (ids["calibration"] & ids["test"])
    assert sum(len(v) for v in ids.values()) == 1797
    assert np.bincount(data.splits["calibration"].labels).tolist() == [30] * 10
    x, y, pos = next(data.splits["test"].batches(16))
    assert x.shape == (16, 1, 8, 8) and y.shape == (16,) and pos.tolist() == list(range(16))
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0


def make_tree(root: Path, classes=("b_cls", "a_cls"), per_class=12, size=(32, 32)):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{i:04d}.png")
    return root


def test_imagefolder_order_matches_torchvision(tmp_path):
    from torchvision.datasets import ImageFolder

    root = make_tree(tmp_path / "cifar10")
    classes, files, labels = scan_imagefolder(root / "train")
    reference = ImageFolder(str(root / "train"))
    assert classes == reference.classes == ["a_cls", "b_cls"]
    assert [str(f) for f in files] == [p for p, _ in reference.samples]
    assert labels.tolist() == reference.targets


def test_cifar10_tree_with_held_out_calibration(tmp_path):
    root = make_tree(tmp_path / "cifar10")
    data = load_cifar10(tmp_path, calibration_per_class=3, seed=1)  # finds cifar10/ below root
    train, cal, test = (data.splits[s] for s in ("train", "calibration", "test"))
    assert len(train) == 18 and len(cal) == 6 and len(test) == 24
    assert not set(train.ids) & set(cal.ids)
    assert np.bincount(cal.labels).tolist() == [3, 3]
    # ids point back at the exact file: image id 5 of the training tree is sample 5
    _, files, _ = scan_imagefolder(root / "train")
    i = int(cal.ids[0])
    where = int(np.flatnonzero(cal.ids == i)[0])
    assert np.array_equal(cal.images[where], np.asarray(Image.open(files[i]).convert("RGB")))
    # the same seed gives the same held-out images (training and simulation must agree)
    again = load_cifar10(tmp_path, calibration_per_class=3, seed=1)
    assert np.array_equal(again.splits["calibration"].ids, cal.ids)
    x, _, _ = next(train.batches(8, shuffle=True, augment=True, seed=3))
    assert x.shape == (8, 3, 32, 32)


def test_absent_data_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("DYNCONF_DATA", raising=False)
    with pytest.raises(DataError, match="pass --data-root DIR or set DYNCONF_DATA"):
        load_cifar10(None)
    with pytest.raises(DataError, match="CIFAR-10 not found under"):
        load_cifar10(tmp_path)
    with pytest.raises(DataError, match="no val/, test/ or train/"):
        load_imagefolder(tmp_path)
    monkeypatch.setenv("DYNCONF_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="CIFAR-10 not found under"):
        load_cifar10(None)


def test_corrupt_image_names_the_file(tmp_path):
    root = make_tree(tmp_path / "cifar10", per_class=4)
    bad = root / "test" / "a_cls" / "0002.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match="0002.png"):
        load_cifar10(tmp_path, calibration_per_class=1, splits=("test",))


def test_imagefolder_streams_an_imagenet_style_tree(tmp_path):
    root = tmp_path / "imagenet"
    for c in ("n01", "n02"):
        (root / "val" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((40, 50, 3), 40 * i, np.uint8)).save(
                root / "val" / c / f"{i}.jpg"
            )
    data = load_imagefolder(root, image_size=32)
    test = data.splits["test"]
    test.workers = 0
    x, y, pos = next(test.batches(4))
    assert x.shape == (4, 3, 32, 32) and y.tolist() == [0, 0, 0, 1] and pos.tolist() == [0, 1, 2, 3]


@pytest.mark.skipif(not SHARED_CIFAR.is_dir(), reason="shared CIFAR-10 copy not present")
def test_shared_cifar10_layout():
    classes, files, labels = scan_imagefolder(SHARED_CIFAR / "test")
    assert classes[0] == "airplane" and classes[-1] == "truck" and len(classes) == 10
    assert len(files) == 10_000 and np.bincount(labels).tolist() == [1000] * 10
    assert os.path.basename(files[0]) == "0000.jpg"


def _crop_and_flip_loop(x, rng, pad=4):
    """Reference: the per-image crop and flip, written as plainly as possible."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    flip = rng.random(n) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def test_batched_crop_and_flip_matches_the_per_image_loop():
    x = torch.randn(64, 3, 32, 32)
    fast = crop_and_flip(x, np.random.default_rng(7))
    slow = _crop_and_flip_loop(x, np.random.default_rng(7))
    assert torch.equal(fast, slow)
    # it really augments: some images moved or flipped, and borders hold the zero padding
    assert not torch.equal(fast, x)
    assert (fast == 0).any()


def test_batches_on_a_device_equal_the_cpu_batches():
    split = ArraySplit(
        "train",
        np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8),
        np.arange(40) % 10,
        np.arange(40),
        CIFAR10_MEAN,
        CIFAR10_STD,
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    plain = list(split.batches(16, shuffle=True, augment=True, seed=5))
    moved = list(split.batches(16, shuffle=True, augment=True, seed=5, device=device))
    assert len(plain) == len(moved) == 3
    for (x, y, pos), (xd, yd, posd) in zip(plain, moved, strict=True):
        assert xd.device.type == torch.device(device).type
        assert torch.allclose(x, xd.cpu(), atol=1e-6)
        assert torch.equal(y, yd.cpu()) and np.array_equal(pos, posd)
