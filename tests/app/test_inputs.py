"""dynconf.inputs: sample id -> input image, as the Samples page shows it (no Streamlit)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dynconf import inputs

ROOT = Path(__file__).resolve().parents[2]
TREE_META = {
    "dataset": "cifar10",
    "id_scheme": "imagefolder-index",
    "id_source": {"test": "test", "calibration": "train"},
}


@pytest.fixture
def image_tree(tmp_path) -> Path:
    """root/cifar10/{train,test}/{b_cls,a_cls}/000k.png whose red channel tells them apart:
    100 for test, 10 * (position of the class in the order written) + k."""
    from PIL import Image

    for split in ("train", "test"):
        for c, cls in enumerate(("b_cls", "a_cls")):
            (tmp_path / "cifar10" / split / cls).mkdir(parents=True)
            for k in range(3):
                value = 100 * (split == "test") + 10 * c + k
                Image.new("RGB", (4, 4), (value, 0, 0)).save(
                    tmp_path / "cifar10" / split / cls / f"{k:04d}.png"
                )
    return tmp_path


def test_digits_ids_are_sklearn_indices():
    from sklearn.datasets import load_digits

    meta = {"id_scheme": "sklearn-digits-index"}
    images = load_digits().images
    for sid in (0, 17, len(images) - 1):
        img, where = inputs.sample_image(meta, "test", sid, None)
        np.testing.assert_array_equal(img, (images[sid] * 255 / 16).astype(np.uint8))
        assert img.dtype == np.uint8 and where == "sklearn digits"
    for bad in (-1, len(images), 10**6):
        img, reason = inputs.sample_image(meta, "test", bad, None)
        assert img is None and "outside sklearn's digits" in reason


def test_imagefolder_ids_follow_torchvision_order(image_tree):
    # Classes sorted (a_cls before b_cls), then files sorted; calibration ids index train.
    img, reason = inputs.sample_image(TREE_META, "test", 0, None)
    assert img is None and "DYNCONF_DATA" in reason
    img, where = inputs.sample_image(TREE_META, "test", 4, image_tree)  # b_cls/0001
    assert img.shape == (4, 4, 3) and img[0, 0, 0] == 100 + 1
    assert where == "cifar10/test/b_cls/0001.png"
    img, where = inputs.sample_image(TREE_META, "test", 0, str(image_tree))  # a str root too
    assert img[0, 0, 0] == 100 + 10 and where == "cifar10/test/a_cls/0000.png"
    img, where = inputs.sample_image(TREE_META, "calibration", 0, image_tree)
    assert img[0, 0, 0] == 10 and where == "cifar10/train/a_cls/0000.png"
    img, reason = inputs.sample_image(TREE_META, "test", 6, image_tree)
    assert img is None and "outside" in reason and "6 images" in reason
    # The tree may also be the data root itself.
    img, where = inputs.sample_image(TREE_META, "test", 3, image_tree / "cifar10")
    assert img[0, 0, 0] == 100 and where == "test/b_cls/0000.png"


def test_unmapped_ids_say_why(image_tree, tmp_path):
    assert inputs.sample_image({}, "test", 0, image_tree)[0] is None
    assert "does not record" in inputs.sample_image(TREE_META, "test", None, image_tree)[1]
    img, reason = inputs.sample_image({"id_scheme": "hdf5-row"}, "test", 0, image_tree)
    assert img is None and "hdf5-row" in reason
    img, reason = inputs.sample_image(TREE_META, "val", 0, image_tree)
    assert img is None and "no 'val' image folder" in reason
    empty = tmp_path / "empty"
    (empty / "cifar10" / "test" / "cls").mkdir(parents=True)
    img, reason = inputs.sample_image(TREE_META, "test", 0, empty)
    assert img is None and "no images" in reason


def test_default_data_root_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("DYNCONF_DATA", raising=False)
    assert inputs.default_data_root() is None
    monkeypatch.setenv("DYNCONF_DATA", str(tmp_path))
    assert inputs.default_data_root() == tmp_path


def test_the_app_wrapper_uses_dynconf_data(image_tree, monkeypatch):
    from dynconf.app import caches

    class FakeRun:
        meta = TREE_META

    monkeypatch.delenv("DYNCONF_DATA", raising=False)
    img, reason = caches.sample_image(FakeRun(), "test", 4)
    assert img is None and "DYNCONF_DATA" in reason
    monkeypatch.setenv("DYNCONF_DATA", str(image_tree))
    img, where = caches.sample_image(FakeRun(), "test", 4)
    assert img[0, 0, 0] == 101 and where == "cifar10/test/b_cls/0001.png"


def test_mapping_ids_never_imports_torch_or_streamlit(image_tree):
    script = textwrap.dedent(
        f"""
        import json, sys
        from dynconf import inputs
        img, where = inputs.sample_image({TREE_META!r}, "test", 4, {str(image_tree)!r})
        digit, _ = inputs.sample_image({{"id_scheme": "sklearn-digits-index"}}, "test", 3, None)
        print(json.dumps({{"where": where, "digit": digit.shape,
                          "torch": "torch" in sys.modules,
                          "streamlit": "streamlit" in sys.modules}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, check=True)  # fmt: skip
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "where": "cifar10/test/b_cls/0001.png",
        "digit": [8, 8],
        "torch": False,
        "streamlit": False,
    }
