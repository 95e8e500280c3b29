"""sklearn's digits with fixed Gaussian pixel noise: a harder 8x8 task that still trains in
seconds on a CPU, so more time steps matter to the SNN than on the clean digits.

Same images, labels, splits and ids as ``digits``; each image gets its own noise, drawn once
from ``NOISE_SEED`` for all 1,797 images (independent of the split seed), so an id always
names the same noisy picture and the dashboard can show it (``noisy_images``). Pixels are
uint8 on a 0..255 scale.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from dynconf.engine.data.base import SPLITS, ArraySplit, Dataset
from dynconf.engine.data.digits import load_digits

ID_SCHEME = "sklearn-digits-noisy-index"
NOISE_SEED = 2023
NOISE_STD = 64.0  # on the 0..255 scale: a quarter of the range


@lru_cache(maxsize=1)
def noisy_images() -> np.ndarray:
    """Every digit with its noise, [1797, 8, 8] uint8 (index = sample id)."""
    from sklearn.datasets import load_digits as sk_load

    clean = sk_load().images * (255.0 / 16.0)
    noise = np.random.default_rng(NOISE_SEED).normal(0.0, NOISE_STD, clean.shape)
    return np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)


def load(data_root=None, seed: int = 0, download: bool = False, splits=SPLITS) -> Dataset:
    """The digits' splits (drawn with ``seed``) with every image replaced by its noisy one."""
    clean = load_digits(seed=seed)
    images = noisy_images()[..., None]
    out = {
        name: ArraySplit(name, images[split.ids], split.labels, split.ids, (0.5,), (0.5,), 255.0)
        for name, split in clean.splits.items()
    }
    return Dataset("noisy_digits", clean.classes, out, ID_SCHEME)
