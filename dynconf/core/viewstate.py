"""What a view keeps on disk for big runs, so that reopening one costs a read.

One analysis-cache entry (dynconf.core.analysis_cache) per run stamp + split + decoder +
kappa holds the decoded confidences and predictions (correctness is recomputed from the
labels), the threshold rule's records with their order by value (what a sweep sorts), and
the slider grid's sweep. :func:`state` makes the entry from a fresh decoding, :func:`restore`
rebuilds the decoded split from it, or gives None when the entry does not fit the split (the
view then decodes again). Every array is exact: nothing is rounded or recomputed
differently, so a restored view gives the numbers a fresh one does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dynconf.core import metrics
from dynconf.core.decoders import Decoded


def _small_int(arr: np.ndarray, bound: int) -> np.ndarray:
    return np.asarray(arr, np.int16 if bound < (1 << 15) else np.int32)


def state(view: Any, dec: Decoded) -> tuple[dict, dict]:
    """(arrays, meta) that let :func:`restore` rebuild the decoded split, the threshold
    rule's records with their sweep order, and the slider grid's sweep without computing."""
    from dynconf.core.policies.threshold import threshold_cache

    counts, steps, order = threshold_cache(dec).records()
    sw = metrics.sweep(dec)  # the view's own (view.sweep) would ask for dec again
    arrays = {
        "confidence": dec.confidence,
        "prediction": _small_int(dec.prediction, view.run.K),
        "rec_counts": _small_int(counts, dec.T + 1),
        "rec_steps": _small_int(steps, dec.T + 1),
        "rec_order": np.asarray(order, np.int32 if len(order) < (1 << 31) else np.int64),
        **{f"sweep_{name}": getattr(sw, name) for name in SWEEP_ARRAYS},
    }
    meta = {"T": dec.T, "N": dec.N, "acc_slack": sw.acc_slack, "lat_slack": sw.lat_slack}
    view._memo.setdefault(("sweep",), sw)  # the view makes it read-only
    return arrays, meta


SWEEP_ARRAYS = ("thresholds", "accuracy", "mean_latency", "n_correct", "on_front", "near_front")
ARRAYS = ("confidence", "prediction", "rec_counts", "rec_steps", "rec_order",
          *(f"sweep_{name}" for name in SWEEP_ARRAYS))  # fmt: skip


def _fits(entry: Any, data: Any, K: int) -> bool:
    """The entry is whole and describes this split: names, shapes and index ranges (a
    damaged entry is a miss, never an out-of-range read)."""
    a, T, N = entry.arrays, data.T, data.N
    if not set(ARRAYS) <= set(a) or entry.meta.get("T") != T or entry.meta.get("N") != N:
        return False
    if a["confidence"].shape != (T, N) or a["prediction"].shape != (T, N):
        return False
    counts, steps, order = a["rec_counts"], a["rec_steps"], a["rec_order"]
    n = steps.shape[0] if steps.ndim == 1 else -1
    if counts.shape != (N,) or n < 0 or order.shape != (n,) or int(counts.sum()) != n:
        return False
    if N == 0:
        return True
    if counts.min() < 1 or steps.min() < 1 or steps.max() > T or a["prediction"].min() < 0:
        return False
    # In range is what safety needs (the entry's CRC already caught damage on the way in).
    return not (a["prediction"].max() >= K or order.min() < 0 or order.max() >= n)


def restore(view: Any, entry: Any) -> Decoded | None:
    """The decoded split from an analysis-cache entry of :func:`state` (its threshold
    cache and sweep put in place); None when there is none or it does not fit this split."""
    from dynconf.core.pareto import Sweep
    from dynconf.core.policies.threshold import ThresholdCache

    if entry is None or not _fits(entry, view.data, view.run.K):
        return None
    a, data = entry.arrays, view.data
    labels = np.asarray(data.labels).astype(np.int64)
    prediction = a["prediction"].astype(np.int32)
    dec = Decoded(view.decoder, view.key_kappa, a["confidence"], prediction,
                  prediction == labels[None, :], labels, spikes=data.spikes,
                  synops=data.synops, neurons=view.neurons)  # fmt: skip
    counts = a["rec_counts"]
    dec.cache["threshold"] = ThresholdCache.from_records(
        dec, counts, a["rec_steps"], a["rec_order"]
    )
    view._memo[("sweep",)] = Sweep(  # the view makes it read-only
        *(a[f"sweep_{name}"] for name in SWEEP_ARRAYS),
        acc_slack=float(entry.meta["acc_slack"]),
        lat_slack=float(entry.meta["lat_slack"]),
    )
    return dec
