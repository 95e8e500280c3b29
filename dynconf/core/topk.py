"""Top-k storage for many classes: what the decoders need of S_t, without all K columns.

At ImageNet size (K = 1,000) full per-step outputs are T x N x K values; the paper, mean,
margin and gap decoders need only the top-k accumulated values, their classes and a
log-normaliser per softmax scale (see dynconf/core/decoders).

Samples are independent, so the arrays are computed a block of samples at a time
(topk_block): topk_arrays for arrays in memory, the streaming import (core/importing.py)
for files too large to hold; both give the same numbers for every block size.
"""

from __future__ import annotations

import numpy as np

# Samples per block: about this many float64 sums S_t (8 bytes each, and a few temporaries
# of the same size while they are ranked), so memory stays near 200 MB whatever N is.
CHUNK_ELEMENTS = 1 << 23


def block_samples(T: int, K: int, elements: int | None = None) -> int:
    """How many samples of T x K sums make a block of about ``elements`` values (default
    CHUNK_ELEMENTS)."""
    return max(1, (elements or CHUNK_ELEMENTS) // max(1, T * K))


def index_dtype(K: int) -> np.dtype:
    """The smallest integer type of the stored class indices."""
    return np.dtype(np.int16 if K < 2**15 else np.int32)


def topk_block(
    S: np.ndarray, k: int, kappas: list[float] | tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From accumulated outputs S [T, n, K] (float64) of a block of n samples, the top-k
    values [T, n, k] (descending), their classes [T, n, k] and the log-normalisers
    [len(kappas) + 1, T, n] (see topk_arrays)."""
    T, n, K = S.shape
    if k < K:
        cand = np.argpartition(-S, k - 1, axis=2)[:, :, :k]
    else:
        cand = np.broadcast_to(np.arange(K), S.shape).copy()
    cand_vals = np.take_along_axis(S, cand, axis=2)
    # Descending value, ties by lower class index (np.argmax's rule for the prediction).
    order = np.lexsort((cand, -cand_vals), axis=-1)
    idx = np.take_along_axis(cand, order, axis=2)
    # If more than k classes tie for the maximum, argpartition may drop the lowest index;
    # force slot 0 to argmax so the stored prediction always equals argmax S_t.
    idx[:, :, 0] = S.argmax(axis=2)
    values = np.take_along_axis(S, idx, axis=2)
    lognorm = np.empty((len(kappas) + 1, T, n), np.float64)
    steps = np.arange(1, T + 1, dtype=np.float64)[:, None, None]
    x = np.empty_like(S)  # one buffer for every scale (the same operations, in place)
    for row, scale in enumerate([*kappas, None]):
        np.subtract(S, values[:, :, :1], out=x)
        np.divide(x, steps if scale is None else scale, out=x)
        np.exp(x, out=x)
        lognorm[row] = np.log(x.sum(axis=2))
    return values, idx.astype(index_dtype(K), copy=False), lognorm


def topk_arrays(
    outputs: np.ndarray, k: int, kappas: list[float] | tuple[float, ...]
) -> dict[str, np.ndarray]:
    """Compact storage for many classes: from per-step outputs [T, N, K] compute, per step and
    sample, the top-k of the accumulated output S_t (values float64, indices) and the
    log-normaliser log sum_k exp((S_t[k] - max S_t) / s) for each s in kappas and for s = t.

    That is all the paper, mean-output and margin decoders need: max softmax(S_t/s) =
    exp(-lognorm) and the second probability is exp((S2 - S1)/s - lognorm).
    """
    T, N, K = outputs.shape
    values = np.empty((T, N, k), np.float64)
    indices = np.empty((T, N, k), index_dtype(K))
    lognorm = np.empty((len(kappas) + 1, T, N), np.float64)
    block = block_samples(T, K)
    for lo in range(0, N, block):
        hi = min(N, lo + block)
        S = np.cumsum(np.asarray(outputs[:, lo:hi], dtype=np.float64), axis=0)
        values[:, lo:hi], indices[:, lo:hi], lognorm[:, :, lo:hi] = topk_block(S, k, kappas)
    return {"topk_values": values, "topk_indices": indices, "lognorm": lognorm}
