"""The streaming half of an import: outputs read a block of samples at a time, and the
stored arrays written piece by piece (importing.py drives it).

TimeFirst presents outputs as time first [T, N, K] whatever their layout, from an array in
memory or an npyio.ArrayFile; a time-first file is read one step's slice of a block at a
time, so every read is one contiguous piece. _StreamingPrepare is store's ``prepare`` for an
import: format.prepare_split's checks and conversions done block by block, each stored array
written with NpyWriter into a temporary file beside the destination that the store renames
into place. Peak memory is a block's, not the file's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dynconf.core.atomic import temp_name
from dynconf.core.format import (
    ARRAY_SUFFIXES,
    CHUNK_ELEMENTS,
    OPTIONAL_ROLES,
    OUTPUT_DTYPES,
    accumulation_problem,
    check_shape,
    check_split_arrays,
    check_split_inputs,
    stored_optional,
)
from dynconf.core.npyio import ArrayFile
from dynconf.core.npywriter import NpyWriter
from dynconf.core.storage import storage_of, write_block
from dynconf.core.topk import block_samples
from dynconf.errors import RunFormatError


class TimeFirst:
    """Outputs as time first [T, N, K] whatever their layout (NTK is transposed here), from
    an array in memory or an npyio.ArrayFile, read a block of samples at a time (block) or a
    few samples of one step (rows), so a file is never read whole."""

    def __init__(self, data: np.ndarray | ArrayFile, layout: str = "TNK"):
        self.data, self.ntk = data, layout == "NTK"
        a, b, K = (int(n) for n in data.shape)
        self.shape = (b, a, K) if self.ntk else (a, b, K)
        self.dtype, self.ndim = data.dtype, 3

    def block(self, lo: int, hi: int) -> np.ndarray:
        """outputs[:, lo:hi] as an array [T, hi - lo, K] of the file's dtype."""
        T, N, K = self.shape
        d = self.data
        if not isinstance(d, ArrayFile):
            return np.asarray(d[lo:hi].swapaxes(0, 1) if self.ntk else d[:, lo:hi])
        if self.ntk:  # [N, T, K]: the block is one contiguous piece
            piece = d.read(lo * T * K, (hi - lo) * T * K).reshape(hi - lo, T, K)
            return np.ascontiguousarray(piece.swapaxes(0, 1))
        out = np.empty((T, hi - lo, K), d.dtype)
        for t in range(T):  # one contiguous piece per step
            d.read((t * N + lo) * K, (hi - lo) * K, out=out[t])
        return out

    def rows(self, t: int, rows: np.ndarray) -> np.ndarray:
        """outputs[t, rows] as an array [len(rows), K]."""
        T, N, K = self.shape
        d = self.data
        if not isinstance(d, ArrayFile):
            return np.asarray(d[rows, t] if self.ntk else d[t, rows])
        out = np.empty((len(rows), K), d.dtype)
        for i, r in enumerate(rows):
            d.read(((int(r) * T + t) if self.ntk else (t * N + int(r))) * K, K, out=out[i])
        return out


class _StreamingPrepare:
    """store's ``prepare`` for an import: format.prepare_split's checks and conversions, done
    a block of samples at a time on TimeFirst outputs, the stored arrays written piece by
    piece into temporary files beside the destination (``folder``) whose paths it returns;
    the store renames them into place. Files left behind by a failure are in ``temps``.

    Per block, in prepare_split's order: cumulative outputs differenced (with their finite
    check), the dtype conversion (with its overflow check), integers to float64, the check
    of the running sums S_t (format.accumulation_problem), then the reduction to top-k or
    the copy. A file with several problems in different blocks reports the first block's.
    """

    def __init__(
        self,
        source: Path,
        folder: Path,
        cumulative: bool | None,
        dtype: str | None,
        target: Path | None = None,
    ):
        self.source, self.folder = source, folder
        self.target = target if target is not None else folder  # the run, named in messages
        self.cumulative, self.dtype = cumulative, dtype
        self.temps: list[Path] = []

    def stored_dtype(self, outputs: TimeFirst) -> np.dtype:
        if self.dtype is not None:
            return np.dtype(self.dtype)
        if self.cumulative or outputs.dtype.kind in "iub":
            return np.dtype(np.float64)
        return outputs.dtype

    def convert(self, z: np.ndarray) -> np.ndarray:
        """One block of outputs as stored (before the reduction), checked."""
        if self.cumulative:
            acc = z.astype(np.float64)
            if not np.isfinite(acc).all():
                raise RunFormatError(f"{self.source}: outputs contain NaN or infinite values")
            z = np.diff(acc, axis=0, prepend=np.zeros_like(acc[:1]))
        if self.dtype is not None:
            with np.errstate(over="ignore"):
                z = z.astype(self.dtype)
            if not np.isfinite(z).all():
                raise RunFormatError(
                    f"{self.source}: outputs overflow {self.dtype} (NaN/inf after conversion)"
                )
        if z.dtype.kind in "iub":
            z = z.astype(np.float64)  # exact for any realistic integer output
        return z

    def writer(self, split: str, role: str, shape, dtype) -> NpyWriter:
        path = temp_name(self.folder / f"{split}.{role}.npy")
        self.temps.append(path)
        return NpyWriter(path, shape, dtype, shown=self.target / f"{split}.{role}.npy")

    def __call__(self, split: str, arrays: Mapping, meta: dict, label: str) -> dict:
        check_split_inputs(split, arrays, label)
        outputs, labels = arrays["outputs"], arrays.get("labels")
        if labels is None:
            raise RunFormatError(f"{label}: no 'labels' array")
        dtype = self.stored_dtype(outputs)
        if dtype not in OUTPUT_DTYPES:
            raise RunFormatError(f"{label}: outputs dtype {dtype} is not float16/32/64")
        T, K = meta["T_max"], len(meta["classes"])
        where = {role: f"{label}: {role}" for role in ARRAY_SUFFIXES}
        side = {r: a for r, a in arrays.items() if r in OPTIONAL_ROLES and isinstance(a, ArrayFile)}
        small = {
            r: np.asarray(a)
            for r, a in arrays.items()
            if r != "outputs" and a is not None and r not in side
        }
        N = check_split_arrays(where, {"labels": small["labels"]}, T, K)
        check_shape(outputs, (T, N, K), where["outputs"], "outputs")
        check_split_arrays(where, small, T, K)
        # The streamed side arrays' shapes and dtypes; their values are checked as copied.
        check_split_arrays(where, {"labels": small["labels"], **side}, T, K, check_values=False)
        stored: dict = {"labels": small["labels"].astype(np.int64)}
        writers = {}
        try:
            storage = storage_of(meta)
            for role, (shape, role_dtype) in storage.layout(meta, T, N, K, dtype).items():
                writers[role] = self.writer(split, role, shape, role_dtype)
            block = block_samples(T, K)
            for lo in range(0, N, block):
                hi = min(N, lo + block)
                z = self.convert(outputs.block(lo, hi))
                problem = accumulation_problem(z)
                if problem:
                    raise RunFormatError(
                        f"{where['outputs']}: the accumulated outputs S_t are {problem}"
                    )
                for role, arr in storage.block(z, meta).items():
                    write_block(writers[role], arr, N, lo, storage.sample_axis[role])
            for role, w in writers.items():
                stored[role] = w.close()
        except BaseException:
            for w in writers.values():
                w.abort()
            raise
        for role in OPTIONAL_ROLES:  # as prepare_split stores them
            if role in small:
                stored[role] = stored_optional(role, small[role])
            elif role in side:
                stored[role] = self.copy_side(split, role, side[role], where[role])
        return stored

    def copy_side(self, split: str, role: str, data: ArrayFile, where: str) -> Path:
        """A large side array (spikes, synops, ids) copied into its stored file piece by
        piece: checked as check_split_arrays checks it (finite counts, >= 0) and converted
        as stored_optional converts it, so memory stays at one piece."""
        stored_dtype = stored_optional(role, np.empty(0, data.dtype)).dtype
        writer = self.writer(split, role, data.shape, stored_dtype)
        try:
            for start in range(0, data.size, CHUNK_ELEMENTS):
                piece = data.read(start, min(CHUNK_ELEMENTS, data.size - start))
                if role != "ids":
                    if piece.dtype.kind == "f" and not np.isfinite(piece).all():
                        raise RunFormatError(f"{where}: {role} contain NaN or infinite values")
                    if piece.size and piece.min() < 0:
                        raise RunFormatError(f"{where}: {role} must be >= 0 (they are counts)")
                writer.write(start, stored_optional(role, piece))
            return writer.close()
        except BaseException:
            writer.abort()
            raise
