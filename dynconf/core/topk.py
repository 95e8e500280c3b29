"""Top-k storage for many classes: what the decoders need of S_t, without all K columns.

At ImageNet size (K = 1,000) full per-step outputs are T x N x K values; the paper, mean,
margin and gap decoders need only the top-k accumulated values, their classes and a
log-normaliser per softmax scale (see dynconf/core/decoders).
"""

from __future__ import annotations

import numpy as np

CHUNK_ELEMENTS = 1 << 24  # outputs are converted in slices of this many elements


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
    index_dtype = np.int16 if K < 2**15 else np.int32
    values = np.empty((T, N, k), np.float64)
    indices = np.empty((T, N, k), index_dtype)
    lognorm = np.empty((len(kappas) + 1, T, N), np.float64)
    steps = np.arange(1, T + 1, dtype=np.float64)[:, None, None]
    block = max(1, CHUNK_ELEMENTS // max(1, T * K))
    for lo in range(0, N, block):
        hi = min(N, lo + block)
        S = np.cumsum(np.asarray(outputs[:, lo:hi], dtype=np.float64), axis=0)
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
        values[:, lo:hi] = np.take_along_axis(S, idx, axis=2)
        indices[:, lo:hi] = idx
        top = values[:, lo:hi, :1]
        for row, scale in enumerate([*kappas, None]):
            x = (S - top) / (steps if scale is None else scale)
            lognorm[row, :, lo:hi] = np.log(np.exp(x).sum(axis=2))
    return {"topk_values": values, "topk_indices": indices, "lognorm": lognorm}
