"""The checks of a split's arrays and their conversion to what a run stores.

Every array of a run may come from anyone, so types, shapes, ranges and finite values are
checked before a number is computed from it; the scans go slice by slice (CHUNK_ELEMENTS),
so a memory-mapped file is never loaded whole. format.py re-exports these names.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dynconf.core.format import (
    ARRAY_SUFFIXES,
    CHUNK_ELEMENTS,
    INPUT_ROLES,
    MAX_ACCUMULATED,
    OPTIONAL_ROLES,
    OUTPUT_DTYPES,
    SPLIT_NAME,
)
from dynconf.core.storage import storage_of
from dynconf.errors import RunFormatError


def _all_finite(arr: np.ndarray) -> bool:
    """np.isfinite(arr).all() in slices, so a memory-mapped file is never loaded whole."""
    if arr.dtype.kind in "iub":
        return True
    flat = arr.reshape(-1) if arr.flags.c_contiguous else np.ravel(arr)
    return all(
        np.isfinite(flat[i : i + CHUNK_ELEMENTS]).all() for i in range(0, flat.size, CHUNK_ELEMENTS)
    )


def accumulation_problem(outputs: np.ndarray) -> str | None:
    """Why the running sums S_t of per-step outputs [T, N, K] are unusable, or None.

    Every metric accumulates the outputs in float64; values that are each finite (1e308) can
    still sum to infinity, and then every number computed from the run is meaningless. The
    sums are formed block by block of samples, so a memory-mapped file is never loaded whole.
    A finite S_t at every step also proves each output finite (an inf or NaN would propagate).
    """
    T, N, K = outputs.shape
    block = max(1, (1 << 20) // max(1, K))  # 8 MB of float64 sums at a time
    with np.errstate(over="ignore", invalid="ignore"):
        for lo in range(0, N, block):
            S = np.zeros((min(N, lo + block) - lo, K))
            for t in range(T):
                S += outputs[t, lo : lo + block]
                largest = np.abs(S).max(initial=0.0)  # NaN if any sum is NaN
                if not np.isfinite(largest):
                    return "not finite (NaN or infinite values, or sums that overflow)"
                if largest > MAX_ACCUMULATED:
                    return f"not finite in practice (|S_t| exceeds {MAX_ACCUMULATED:g})"
    return None


def _chunked_min_max(arr: np.ndarray) -> tuple:
    flat = arr.reshape(-1)
    lo, hi = None, None
    for i in range(0, flat.size, CHUNK_ELEMENTS):
        part = flat[i : i + CHUNK_ELEMENTS]
        lo = part.min() if lo is None else min(lo, part.min())
        hi = part.max() if hi is None else max(hi, part.max())
    return lo, hi


def check_shape(arr: np.ndarray, shape: tuple, where: str, what: str) -> None:
    if arr.ndim != len(shape):
        raise RunFormatError(
            f"{where}: {what} must have {len(shape)} dimensions {_fmt_shape(shape)}, "
            f"got shape {tuple(arr.shape)}"
        )
    for got, want in zip(arr.shape, shape, strict=True):
        if want is not None and got != want:
            raise RunFormatError(
                f"{where}: {what} has shape {tuple(arr.shape)}, expected {_fmt_shape(shape)}"
            )


def _fmt_shape(shape: tuple) -> str:
    return "[" + ", ".join("?" if s is None else str(s) for s in shape) + "]"


def check_split_arrays(
    where: Mapping[str, str],
    arrays: Mapping[str, np.ndarray],
    T: int,
    K: int,
    N: int | None = None,
    topk: int | None = None,
    n_kappas: int | None = None,
    check_values: bool = True,
) -> int:
    """Validate the arrays of one split (any subset of ARRAY_SUFFIXES); returns N.

    `where` maps each array role to a description used in messages (a file path on load).
    check_values=False checks shapes and dtypes only (no scan of the values).
    """
    N = _check_labels(where, arrays.get("labels"), K, N, check_values)
    check = _Checker(where, arrays, check_values)
    if "outputs" in arrays:
        check.floats("outputs", (T, N, K), OUTPUT_DTYPES, scan=False)
        problem = accumulation_problem(arrays["outputs"]) if check_values else None
        if problem:
            raise RunFormatError(f"{where['outputs']}: the accumulated outputs S_t are {problem}")
    if "topk_values" in arrays:
        check.topk_values(T, N, topk)
    if "topk_indices" in arrays:
        check.topk_indices(T, N, topk, K)
    if "lognorm" in arrays:
        check.floats("lognorm", (n_kappas + 1 if n_kappas is not None else None, T, N))
        if check_values and _chunked_min_max(arrays["lognorm"])[0] < 0:
            raise RunFormatError(f"{where['lognorm']}: log-normalisers must be >= 0")
    for role in ("spikes", "synops"):  # per-step counts [T, N]
        if arrays.get(role) is not None:
            check.counts(role, T, N)
    if arrays.get("ids") is not None:
        ids = arrays["ids"]
        check_shape(ids, (N,), where["ids"], "ids")
        if ids.dtype.kind not in "iu":
            raise RunFormatError(f"{where['ids']}: ids must be integers, got {ids.dtype}")
    return N


def _check_labels(where: Mapping[str, str], labels, K: int, N: int | None, scan: bool) -> int:
    """Labels [N] of integers in [0, K); returns N."""
    if labels is None:
        raise RunFormatError(f"{where['labels']}: labels are missing")
    check_shape(labels, (N,), where["labels"], "labels")
    N = int(labels.shape[0])
    if N < 1:
        raise RunFormatError(f"{where['labels']}: no samples")
    if labels.dtype.kind not in "iu":
        raise RunFormatError(f"{where['labels']}: labels must be integers, got {labels.dtype}")
    if scan:
        lo, hi = _chunked_min_max(labels)
        if lo < 0 or hi >= K:
            raise RunFormatError(
                f"{where['labels']}: labels must lie in [0, {K}) for {K} classes, "
                f"found values from {lo} to {hi}"
            )
    return N


class _Checker:
    """The checks of check_split_arrays that differ by role, with its messages."""

    def __init__(self, where: Mapping[str, str], arrays: Mapping, check_values: bool):
        self.where, self.arrays, self.check_values = where, arrays, check_values

    def floats(self, role: str, shape: tuple, dtypes=None, scan: bool = True) -> None:
        arr, where = self.arrays[role], self.where[role]
        check_shape(arr, shape, where, role)
        if arr.dtype.kind != "f" or (dtypes is not None and arr.dtype not in dtypes):
            allowed = ", ".join(str(d) for d in (dtypes or ["a float type"]))
            raise RunFormatError(f"{where}: {role} dtype {arr.dtype} (allowed: {allowed})")
        if self.check_values and scan and not _all_finite(arr):
            raise RunFormatError(f"{where}: {role} contain NaN or infinite values")

    def topk_values(self, T: int, N: int, topk) -> None:
        where, vals = self.where["topk_values"], self.arrays["topk_values"]
        self.floats("topk_values", (T, N, topk), (np.dtype(np.float64),))
        largest = np.abs(_chunked_min_max(vals)).max() if self.check_values else 0
        if largest > MAX_ACCUMULATED:
            raise RunFormatError(
                f"{where}: the accumulated outputs S_t are not finite in "
                f"practice (|S_t| exceeds {MAX_ACCUMULATED:g})"
            )
        ordered = not (self.check_values and T > 0 and topk and topk > 1) or not np.any(
            np.diff(np.asarray(vals), axis=2) > 0
        )
        if not ordered:
            raise RunFormatError(f"{where}: values are not in descending order")

    def topk_indices(self, T: int, N: int, topk, K: int) -> None:
        where, idx = self.where["topk_indices"], self.arrays["topk_indices"]
        check_shape(idx, (T, N, topk), where, "topk_indices")
        if idx.dtype.kind not in "iu":
            raise RunFormatError(f"{where}: indices must be integers")
        if self.check_values:
            lo, hi = _chunked_min_max(idx)
            if lo < 0 or hi >= K:
                raise RunFormatError(f"{where}: class indices outside [0, {K})")

    def counts(self, role: str, T: int, N: int) -> None:
        where, counts = self.where[role], self.arrays[role]
        check_shape(counts, (T, N), where, role)
        if counts.dtype.kind not in "fiu":
            raise RunFormatError(f"{where}: {role} must be numbers, got {counts.dtype}")
        if self.check_values:
            if not _all_finite(counts):
                raise RunFormatError(f"{where}: {role} contain NaN or infinite values")
            if _chunked_min_max(counts)[0] < 0:
                raise RunFormatError(f"{where}: {role} must be >= 0 (they are counts)")


def check_split_inputs(split: str, arrays: Mapping, label: str) -> None:
    """A split's name is allowed and its arrays are ones a split can hold (INPUT_ROLES)."""
    if not isinstance(split, str) or not SPLIT_NAME.match(split):
        raise RunFormatError(
            f"split name {split!r} is not allowed (letters, digits, '_' and '-', max 64)"
        )
    unknown = set(arrays) - set(INPUT_ROLES)
    if unknown:
        raise RunFormatError(f"{label}: unexpected arrays {sorted(unknown)}")


def prepare_split(
    split: str,
    arrays: Mapping[str, np.ndarray | None],
    meta: dict,
    label: str,
) -> dict[str, np.ndarray]:
    """Validate user arrays for one split and convert them to what is stored on disk."""
    check_split_inputs(split, arrays, label)
    if arrays.get("outputs") is None:
        raise RunFormatError(f"{label}: no 'outputs' array")
    if arrays.get("labels") is None:
        raise RunFormatError(f"{label}: no 'labels' array")
    given = {role: np.asarray(a) for role, a in arrays.items() if a is not None}
    outputs = given["outputs"]
    if outputs.dtype.kind in "iub":
        outputs = outputs.astype(np.float64)  # exact for any realistic integer output
    if outputs.ndim != 3:
        raise RunFormatError(
            f"{label}: outputs must be [T, N, K] (time first), got shape {outputs.shape}"
        )
    given["outputs"] = outputs
    if outputs.dtype not in OUTPUT_DTYPES:
        raise RunFormatError(f"{label}: outputs dtype {outputs.dtype} is not float16/32/64")
    T, K = meta["T_max"], len(meta["classes"])
    where = {role: f"{label}: {role}" for role in ARRAY_SUFFIXES}
    check_split_arrays(where, given, T, K)
    stored = {"labels": given["labels"].astype(np.int64)}
    stored.update(storage_of(meta).arrays(outputs, meta))
    for role in OPTIONAL_ROLES:
        if role in given:
            stored[role] = stored_optional(role, given[role])
    return stored


def stored_optional(role: str, arr: np.ndarray) -> np.ndarray:
    """An optional array as a run stores it: spike counts as floats, synaptic operations as
    given (int64 when integers, which stay exact), ids as int64. The one rule for
    prepare_split and the streaming import."""
    if role == "ids":
        return arr.astype(np.int64)
    if role == "spikes":
        return arr if arr.dtype.kind == "f" else arr.astype(np.float64)
    if role == "synops":
        return arr if arr.dtype.kind == "f" else arr.astype(np.int64)
    raise RunFormatError(f"optional array {role!r} is not known")
