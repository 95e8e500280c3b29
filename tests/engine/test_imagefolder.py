"""`train`, `ann` and `simulate` on an ImageFolder tree, as a new ImageNet user runs them.

These commands once crashed on such a tree (``StreamedSplit.batches() got an unexpected
keyword argument 'device'``). The tree here is tiny: 2 classes of 16x16 PNGs, with
``train/`` (which also gives the held-out calibration split) and ``val/`` (the test split).
"""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from dynconf import cli
from dynconf.core.store import load_run
from dynconf.engine.data import load_dataset, scan_imagefolder
from dynconf.engine.data.imagefolder import calibration_per_class


def make_tree(root, per_class=None):
    per_class = per_class or {"train": 6, "val": 3}
    rng = np.random.default_rng(0)
    for split, count in per_class.items():
        for cls, brightness in (("cat", 40), ("dog", 200)):
            (root / split / cls).mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(rng.normal(brightness, 20, (16, 16, 3)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / cls / f"{i}.png")
    return root


def run_cli(capsys, *argv) -> dict:
    code = cli.main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("imagefolder"))


@pytest.fixture(scope="module")
def checkpoint(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt")
    code = cli.main(
        ["train", "--dataset", "imagefolder", "--data-root", str(tree), "--arch", "resnet20",
         "--epochs", "1", "--batch-size", "4", "--threads", "2", "--no-progress", "--json",
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    return out / "model.pt"


def test_an_imagefolder_tree_gives_train_a_held_out_calibration_and_test(tree):
    data = load_dataset("imagefolder", tree, seed=0)
    assert set(data.splits) == {"train", "calibration", "test"}
    assert data.classes == ["cat", "dog"] and data.id_scheme == "imagefolder-index"
    train, calibration, test = (data.splits[s] for s in ("train", "calibration", "test"))
    # a tenth of the smallest class, at least one image, from every class
    assert calibration_per_class(np.array([0] * 6 + [1] * 6)) == 1
    assert np.bincount(calibration.labels).tolist() == [1, 1]
    assert len(train) == 10 and len(test) == 6
    assert not set(train.ids) & set(calibration.ids)
    assert sorted([*train.ids, *calibration.ids]) == list(range(12))
    # ids index the train/ tree in ImageFolder order, so they name the exact file
    _, files, labels = scan_imagefolder(tree / "train")
    assert labels[calibration.ids].tolist() == calibration.labels.tolist()
    x, y = calibration.load(np.arange(len(calibration)))
    assert x.shape == (2, 3, 224, 224) and y.tolist() == [0, 1]
    # shuffled batches report the true positions of their samples
    train.workers = 0
    for x, y, pos in train.batches(4, shuffle=True, augment=True, seed=1, device="cpu"):
        assert y.tolist() == train.labels[pos].tolist() and x.shape[1:] == (3, 224, 224)
    # the same seed holds out the same images (training and simulation must agree)
    again = load_dataset("imagefolder", tree, seed=0, splits=("calibration",))
    assert np.array_equal(again.splits["calibration"].ids, calibration.ids)
    assert set(again.splits) == {"calibration"}


def test_train_on_an_imagefolder_tree(checkpoint):
    ckpt = torch.load(checkpoint, weights_only=True)
    config = ckpt["config"]
    assert config["dataset"] == "imagefolder" and config["classes"] == ["cat", "dog"]
    assert config["train_size"] == 10 and len(config["calibration_ids"]) == 2
    result = json.loads(ckpt["result"])
    assert result["epochs"] == 1
    assert 0.0 <= result["ann_calibration_accuracy"] <= 1.0
    assert 0.0 <= result["ann_test_accuracy"] <= 1.0
    assert len(json.loads(ckpt["history"])) == 1


def test_ann_on_an_imagefolder_tree(capsys, tree, checkpoint):
    base = ["ann", "--checkpoint", str(checkpoint), "--dataset", "imagefolder"]
    for split in ("calibration", "test"):
        out = run_cli(capsys, *base, "--data-root", str(tree), "--split", split, "--levels", "4,8")
        assert out["split"] == split and set(out["accuracy_by_levels"]) == {"4", "8"}
        assert all(0.0 <= v <= 1.0 for v in out["accuracy_by_levels"].values())
    # the calibration accuracy is train's own evaluation of the held-out images
    trained = json.loads(torch.load(checkpoint, weights_only=True)["result"])
    calibration = run_cli(capsys, *base, "--data-root", str(tree))
    assert calibration["accuracy_by_levels"]["4"] == trained["ann_calibration_accuracy"]


def test_simulate_an_imagefolder_tree(tree, checkpoint, tmp_path, capsys):
    out = tmp_path / "run"
    summary = run_cli(
        capsys, "simulate", "--checkpoint", str(checkpoint), "--dataset", "imagefolder",
        "--data-root", str(tree), "--T", "4", "--splits", "calibration,test", "--limit", "2",
        "--out", str(out), "--no-progress", "--threads", "2",
    )  # fmt: skip
    assert summary["splits"] == {"calibration": 2, "test": 2}
    run = load_run(out)
    assert run.meta["id_source"] == {"calibration": "train", "test": "test"}
    held_out = torch.load(checkpoint, weights_only=True)["config"]["calibration_ids"]
    assert run.split("calibration").ids.tolist() == held_out


def test_a_tree_without_train_can_be_simulated_but_not_trained(tmp_path, capsys):
    tree = make_tree(tmp_path / "valonly", {"val": 2})
    data = load_dataset("imagefolder", tree)
    assert set(data.splits) == {"test"} and data.classes == ["cat", "dog"]
    code = cli.main(
        ["train", "--dataset", "imagefolder", "--data-root", str(tree), "--arch", "resnet20",
         "--epochs", "1", "--out", str(tmp_path / "ckpt"), "--no-progress"]
    )  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 2 and "no training split" in err and err.count("\n") == 1
