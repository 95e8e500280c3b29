"""How a run stores its per-step outputs: one strategy object per storage, by name.

``full`` keeps the per-step outputs ``[T, N, K]`` as given; ``topk`` keeps, per step and
sample, the top-k accumulated outputs, their classes and the log-normalisers the decoders need
(core/topk.py), for runs with many classes. Everything that differs between them lives here:
the arrays a split holds (``roles``), the meta settings (``normalise``), the arrays made from
outputs in memory (``arrays``) or a block of samples at a time (``layout`` and ``block``,
for the streaming import), and each array's sample axis. The readers, writers and checks ask
``storage_of(meta)`` instead of branching on the name; a new storage is one class here and
one entry of ``STORAGES``.
"""

from __future__ import annotations

import math

import numpy as np

from dynconf.core.topk import index_dtype, topk_arrays, topk_block
from dynconf.errors import RunFormatError

DEFAULT_TOPK = 5


class Storage:
    """One way of storing a split's outputs. ``sample_axis[role]``: where the samples are."""

    name = ""
    roles: tuple[str, ...] = ()
    sample_axis: dict[str, int] = {}

    def normalise(self, meta: dict, T: int, K: int) -> None:
        """Check and complete the meta's settings of this storage (in place)."""

    def meta_problems(self, meta: dict, n_classes: int) -> list[str]:
        """What is wrong with a stored run's settings of this storage (meta.json)."""
        return []

    def arrays(self, outputs: np.ndarray, meta: dict) -> dict[str, np.ndarray]:
        """The stored arrays of a split from its outputs ``[T, N, K]`` in memory."""
        raise NotImplementedError

    def layout(self, meta: dict, T: int, N: int, K: int, dtype) -> dict[str, tuple]:
        """``{role: (shape, dtype)}`` of the stored arrays of a split of N samples."""
        raise NotImplementedError

    def block(self, z: np.ndarray, meta: dict) -> dict[str, np.ndarray]:
        """The stored arrays of a block of samples ``z [T, n, K]`` (samples on their axis)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FullStorage(Storage):
    """The per-step outputs as given."""

    name = "full"
    roles = ("outputs",)
    sample_axis = {"outputs": 1}

    def arrays(self, outputs, meta):
        return {"outputs": outputs}

    def layout(self, meta, T, N, K, dtype):
        return {"outputs": ((T, N, K), dtype)}

    def block(self, z, meta):
        return {"outputs": z}


class TopkStorage(Storage):
    """The top-k accumulated outputs, their classes and the log-normalisers (core/topk.py)."""

    name = "topk"
    roles = ("topk_values", "topk_indices", "lognorm")
    sample_axis = {"topk_values": 1, "topk_indices": 1, "lognorm": 2}

    def normalise(self, meta, T, K):
        k = meta.get("topk", DEFAULT_TOPK)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise RunFormatError(f"topk must be a positive integer, got {k!r}")
        meta["topk"] = min(int(k), K)
        meta["topk_kappas"] = [float(x) for x in meta.get("topk_kappas") or [T]]

    def meta_problems(self, meta, n_classes):
        problems = []
        k = meta.get("topk")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n_classes:
            problems.append(f"'topk' must be an integer in 1..{n_classes}")
        kappas = meta.get("topk_kappas")
        numbers = isinstance(kappas, list) and all(
            not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x) and x > 0
            for x in kappas
        )
        if not numbers:
            problems.append("'topk_kappas' must be a list of positive numbers")
        return problems

    def arrays(self, outputs, meta):
        return topk_arrays(outputs, meta["topk"], meta["topk_kappas"])

    def layout(self, meta, T, N, K, dtype):
        k, kappas = meta["topk"], meta["topk_kappas"]
        return {
            "topk_values": ((T, N, k), np.float64),
            "topk_indices": ((T, N, k), index_dtype(K)),
            "lognorm": ((len(kappas) + 1, T, N), np.float64),
        }

    def block(self, z, meta):
        S = np.cumsum(np.asarray(z, dtype=np.float64), axis=0)
        values, indices, lognorm = topk_block(S, meta["topk"], meta["topk_kappas"])
        return {"topk_values": values, "topk_indices": indices, "lognorm": lognorm}


STORAGES: dict[str, Storage] = {s.name: s for s in (FullStorage(), TopkStorage())}


def storage_of(meta_or_name) -> Storage:
    """The storage a run's meta (or a storage name) says."""
    name = meta_or_name.get("storage", "full") if isinstance(meta_or_name, dict) else meta_or_name
    try:
        return STORAGES[name]
    except (KeyError, TypeError):
        raise RunFormatError(f"storage must be one of {', '.join(STORAGES)}") from None


def write_block(writer, arr: np.ndarray, N: int, lo: int, axis: int) -> None:
    """Write a block of samples ``lo:lo+n`` (on ``axis`` of ``arr``) into a C-order file of
    the whole array (N samples on that axis) through ``writer.write(offset, values)``."""
    lead = arr.shape[:axis]
    inner = math.prod(arr.shape[axis + 1 :])
    for flat, index in enumerate(np.ndindex(*lead)):
        writer.write((flat * N + lo) * inner, arr[index])
