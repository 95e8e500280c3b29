"""Which input image a sample id stands for: the Samples page's picture, without Streamlit.

A run's meta says how its ids map to images. ``id_scheme`` (written by ``simulate``) names
the mapping: ``sklearn-digits-index`` indexes sklearn's digits, ``sklearn-digits-noisy-index``
the same with the noisy_digits dataset's fixed noise, ``imagefolder-index`` indexes
an ImageFolder tree in torchvision's order (classes sorted, then files sorted). ``id_source``
says which source split each run split was drawn from (calibration comes from train).

No torch here: browsing runs must stay fast on a fresh machine, so ImageFolder trees are
listed with ``scan_imagefolder``, which imports no torch. The expensive parts (loading the
digits, listing a folder) are cached per process.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from dynconf.errors import DataError


def default_data_root() -> Path | None:
    """The dataset root images are read from: $DYNCONF_DATA, else None (none shown)."""
    from dynconf.engine.data import resolve_data_root  # imports no torch

    return resolve_data_root(None)


@lru_cache(maxsize=1)
def digits_images() -> np.ndarray:
    """sklearn's digits, [1797, 8, 8] with values 0..16."""
    from sklearn.datasets import load_digits

    return load_digits().images


@lru_cache(maxsize=8)
def imagefolder_files(folder: str) -> tuple[str, ...]:
    """Files of an ImageFolder tree in torchvision's order, as the simulator numbered them."""
    from dynconf.engine.data import scan_imagefolder  # imports no torch

    return tuple(str(f) for f in scan_imagefolder(Path(folder))[1])


def _digits_image(sample_id: int) -> tuple[np.ndarray | None, str]:
    images = digits_images()
    if not 0 <= sample_id < len(images):
        return None, f"id {sample_id} is outside sklearn's digits (0..{len(images) - 1})"
    return (np.asarray(images[sample_id]) * (255.0 / 16.0)).astype(np.uint8), "sklearn digits"


def _imagefolder_image(
    meta: dict, source: str, sample_id: int, data_root: Path | None
) -> tuple[np.ndarray | None, str]:
    if data_root is None:
        return None, "set DYNCONF_DATA to the data root to see the images"
    root = Path(data_root)
    # The tree may sit under the dataset's name (either case) or be the root itself.
    names = [meta.get("dataset", ""), str(meta.get("dataset", "")).upper(), ""]
    folder = next((root / n / source for n in names if (root / n / source).is_dir()), None)
    if folder is None:
        return None, f"no '{source}' image folder under {root}"
    try:
        files = imagefolder_files(str(folder))
    except DataError as exc:
        return None, str(exc)
    if not 0 <= sample_id < len(files):
        return None, f"id {sample_id} is outside {folder} ({len(files)} images)"
    from PIL import Image

    from dynconf.core.safeopen import open_regular

    try:
        with open_regular(files[sample_id], "image", DataError) as fh, Image.open(fh) as im:
            picture = np.asarray(im.convert("RGB"))
    except DataError as exc:
        return None, str(exc)
    return picture, str(Path(files[sample_id]).relative_to(root))


def sample_image(
    meta: dict[str, Any], split: str, sample_id: int | None, data_root: Path | str | None
) -> tuple[np.ndarray | None, str]:
    """The input image behind a sample id (uint8, [H, W] or [H, W, 3]) and where it came
    from; or None and the reason it cannot be shown."""
    scheme = meta.get("id_scheme") or meta.get("ids")
    if sample_id is None or not scheme:
        return None, "this run does not record which image each sample is"
    source = (meta.get("id_source") or {}).get(split, split)
    if scheme == "sklearn-digits-index":
        return _digits_image(int(sample_id))
    if scheme == "sklearn-digits-noisy-index":
        from dynconf.engine.data.noisy_digits import noisy_images  # imports no torch

        if not 0 <= int(sample_id) < len(noisy_images()):
            return None, f"id {sample_id} is outside sklearn's digits"
        return noisy_images()[int(sample_id)], "sklearn digits with fixed pixel noise"
    if str(scheme).startswith("imagefolder"):
        root = Path(data_root) if data_root is not None else None
        return _imagefolder_image(meta, source, int(sample_id), root)
    return None, f"images for id scheme '{scheme}' cannot be shown"
