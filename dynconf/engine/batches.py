"""The batches a recording is fed with, and the digests that tell two jobs or batches apart.

A recording reads ``(x, y)`` or ``(x, y, ids)`` batches (``unpack`` checks them, one line
per mistake). ``SplitBatches`` serves a dataset split that way, with its length in batches
and samples for the progress bar. ``batch_digest`` names a batch by its inputs, labels and
ids (a resumed batch must be the same one); ``model_fingerprint`` names a model by its
weights and buffers (a resumed job must use the same one).
"""

from __future__ import annotations

import hashlib

import numpy as np

from dynconf.errors import DataError


class SplitBatches:
    """A dataset split's batches as (x, y, ids), with a length for the progress bar."""

    def __init__(self, split, batch_size: int):
        if batch_size < 1:
            raise DataError("--batch-size must be at least 1")
        self.split, self.batch_size = split, batch_size

    def __len__(self) -> int:
        return -(-len(self.split) // self.batch_size)

    @property
    def samples(self) -> int:
        return len(self.split)

    def __iter__(self):
        for x, y, positions in self.split.batches(self.batch_size):
            yield x, y, self.split.ids[positions]


def unpack(batch, split: str, index: int, position: int):
    """``(x, y[, ids])`` -> (x tensor, labels int64 [B], ids int64 [B])."""
    import torch

    where = f"split '{split}', batch {index + 1}"
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise DataError(f"{where}: expected (x, y) or (x, y, ids), got {type(batch).__name__}")
    x = batch[0]
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{where}: inputs are a {type(x).__name__}, expected a tensor")
    y = as_int_array(batch[1], f"{where}: labels")
    if x.ndim < 1 or y.shape != (x.shape[0],):
        raise DataError(
            f"{where}: {len(y)} labels for inputs of shape {tuple(x.shape)} (need one per sample)"
        )
    if len(batch) == 3:
        ids = as_int_array(batch[2], f"{where}: ids")
        if ids.shape != y.shape:
            raise DataError(f"{where}: {len(ids)} ids for {len(y)} labels")
    else:
        ids = np.arange(position, position + len(y), dtype=np.int64)
    return x, y, ids


def as_int_array(value, what: str) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise DataError(f"{what} must be integers [B], got {arr.dtype} of shape {arr.shape}")
    return arr.astype(np.int64)


def _tensor_bytes(tensor) -> bytes:
    import torch

    arr = tensor.detach().cpu().contiguous()
    return arr.reshape(-1).view(torch.uint8).numpy().tobytes()


def batch_digest(x, y: np.ndarray, ids: np.ndarray) -> str:
    """A digest of one batch (inputs, labels, ids): a resumed batch must be the same one."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{x.dtype}{tuple(x.shape)}".encode())
    h.update(_tensor_bytes(x))
    h.update(np.ascontiguousarray(y).tobytes())
    h.update(np.ascontiguousarray(ids).tobytes())
    return h.hexdigest()


def model_fingerprint(model) -> str:
    """A digest of the model's weights and buffers (which model made partial results)."""
    h = hashlib.blake2b(type(model).__qualname__.encode(), digest_size=16)
    state = getattr(model, "state_dict", None)
    if callable(state):
        for key, value in state().items():
            h.update(key.encode())
            if hasattr(value, "detach"):
                h.update(f"{value.dtype}{tuple(value.shape)}".encode())
                h.update(_tensor_bytes(value))
            else:
                h.update(repr(value).encode())
    return h.hexdigest()
