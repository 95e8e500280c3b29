"""Synthetic runs shared by the tests of every layer (import as tests.helpers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------- dashboard runs


def synthetic_split(
    n: int, T: int, K: int, seed: int, neurons: int, dtype=np.float16
) -> dict[str, np.ndarray]:
    """Per-step outputs that behave like a converted SNN's, for tests of the dashboard.

    Every sample has a fixed "clean" logit vector (its class boosted by a per-sample margin,
    a minority boosted toward a confusable class instead) and each step adds noise, with the
    first steps damped as in QCFS conversion; the running sum S_t then firms up over time,
    so accuracy rises with t, easy samples become confident early and some never do.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, n)
    margin = np.clip(rng.normal(6.0, 2.5, n), 0.0, None)
    clean = rng.normal(0.0, 1.0, (n, K))
    clean[np.arange(n), labels] += margin
    confused = rng.random(n) < 0.08
    clean[np.flatnonzero(confused), (labels[confused] + 1) % K] += 2.0 + margin[confused]
    ramp = np.minimum(1.0, np.arange(1, T + 1) / 2.0)[:, None, None]  # slow first steps
    outputs = ramp * clean[None] + rng.normal(0.0, 2.5, (T, n, K))
    rate = rng.uniform(0.05, 0.15, n)
    spikes = (neurons * rate[None, :] * (0.8 + 0.4 * rng.random((T, n)))).astype(np.float32)
    ids = np.sort(rng.choice(10 * n, n, replace=False)).astype(np.int64)
    return {
        "outputs": outputs.astype(dtype),
        "labels": labels.astype(np.int64),
        "spikes": spikes,
        "ids": ids,
    }


def build_synthetic_run(
    path: Path, n_test: int = 600, n_cal: int = 400, T: int = 16, K: int = 10, seed: int = 0
):
    """A complete, valid run directory (test + calibration splits) via dynconf.core.store."""
    from dynconf.core.store import save_run

    neurons = 2000
    return save_run(
        path,
        {
            "test": synthetic_split(n_test, T, K, seed, neurons),
            "calibration": synthetic_split(n_cal, T, K, seed + 1, neurons),
        },
        dataset="synthetic",
        model="synthetic SNN (test fixture)",
        classes=[f"class {k}" for k in range(K)],
        neurons=neurons,
        extra_meta={"notes": "Synthetic outputs built by tests/conftest.py."},
    )
