"""Run directories: the cached per-step outputs of one SNN, validated on load, written atomically.

A run is what makes every exit rule cheap to study: the SNN is simulated once for T_max steps
per sample and its last-layer output at every step is stored, so any threshold or decoder is
evaluated afterwards without touching the network (method.md section 1).

Layout of `cached_runs/<name>/` (schema 1, see docs/DESIGN.md):
  meta.json                    what the run is and how it was made
  <split>.labels.npy           [N] integer class labels in [0, K)
  <split>.outputs.npy          [T_max, N, K] per-step outputs, NOT accumulated   (storage "full")
  <split>.topk_values.npy      [T_max, N, k] float64 top-k of S_t, descending    (storage "topk")
  <split>.topk_indices.npy     [T_max, N, k] int16/int32 their class indices     (storage "topk")
  <split>.lognorm.npy          [M+1, T_max, N] float64 log sum_k exp((S_t[k] - max S_t) / s)
                               for s in meta["topk_kappas"] and a last row for s = t  ("topk")
  <split>.spikes.npy           optional [T_max, N] hidden spikes per step and image
  <split>.ids.npy              optional [N] int64 sample ids

Why these rules: arrays are plain .npy read with allow_pickle=False (a run may come from
anyone, and a pickle executes code), memory-mapped (ImageNet outputs are gigabytes), and
fully validated on load so a damaged run fails with the file and the problem named instead of
producing wrong numbers. Writes go to temporary names beside the target, are fsynced and then
renamed into place, so a crash or a kill never leaves a half-written run that loads as valid.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import shutil
import sys
import time
import uuid
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynconf import __version__
from dynconf.errors import RunFormatError

SCHEMA = 1
META_FILE = "meta.json"
TMP_PREFIX = ".dynconf-tmp-"  # ignored by list_runs and by .gitignore
SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")  # no dots, slashes or '..'
STORAGES = ("full", "topk")
OUTPUT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
MAX_META_BYTES = 64 << 20  # room for ImageNet-21k class lists, not for a hostile giant
CHUNK_ELEMENTS = 1 << 24  # arrays are checked / converted in slices of this many elements

# Files of one split: stored name suffix -> role. Only these names are ever written or removed.
ARRAY_SUFFIXES = ("labels", "outputs", "topk_values", "topk_indices", "lognorm", "spikes", "ids")


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True, eq=False)
class SplitData:
    """One split of a run. Arrays are read-only memory maps when loaded from disk.

    With storage "full", `outputs` is set; with "topk", the three topk arrays are set instead.
    """

    name: str
    labels: np.ndarray
    num_classes: int
    outputs: np.ndarray | None = None
    spikes: np.ndarray | None = None
    ids: np.ndarray | None = None
    topk_values: np.ndarray | None = None
    topk_indices: np.ndarray | None = None
    lognorm: np.ndarray | None = None
    topk_kappas: tuple[float, ...] = ()

    @property
    def storage(self) -> str:
        return "full" if self.outputs is not None else "topk"

    @property
    def T(self) -> int:
        arr = self.outputs if self.outputs is not None else self.topk_values
        return int(arr.shape[0])

    @property
    def N(self) -> int:
        return int(self.labels.shape[0])

    @property
    def K(self) -> int:
        return self.num_classes


@dataclass(eq=False)
class Run:
    """A loaded, validated run directory."""

    path: Path
    meta: dict
    splits: dict[str, SplitData]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def T_max(self) -> int:
        return int(self.meta["T_max"])

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def K(self) -> int:
        return len(self.meta["classes"])

    @property
    def storage(self) -> str:
        return self.meta["storage"]

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(self.splits)

    def split(self, name: str) -> SplitData:
        if name not in self.splits:
            have = ", ".join(self.splits) or "none"
            raise RunFormatError(f"{self.path}: run has no split '{name}' (splits: {have})")
        return self.splits[name]


@dataclass(frozen=True)
class RunListing:
    """One entry of list_runs: ok is False (with error set) for a damaged directory."""

    name: str
    path: Path
    ok: bool
    error: str | None
    meta: dict | None


# --------------------------------------------------------------------------- reading arrays


def _prod(shape) -> int:
    return int(math.prod(int(s) for s in shape))


def _read_header(f, where: str):
    """Parse a .npy header from an open binary file; refuse object dtypes before any data."""
    try:
        version = np.lib.format.read_magic(f)
    except ValueError:
        raise RunFormatError(f"{where}: not a .npy array file") from None
    try:
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise RunFormatError(f"{where}: unsupported .npy format version {version}")
    except (ValueError, SyntaxError, TypeError) as exc:
        raise RunFormatError(f"{where}: damaged .npy header ({exc})") from None
    if dtype.hasobject:
        raise RunFormatError(f"{where}: holds Python objects (pickled data); refusing to load it")
    if dtype.fields is not None or dtype.subdtype is not None:
        raise RunFormatError(f"{where}: structured dtype {dtype} is not a plain numeric array")
    return shape, fortran, dtype


def read_npy(path: Path | str, mmap: bool = True) -> np.ndarray:
    """Load one .npy file safely: no pickles, no truncation, read-only memory map by default."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            shape, _, dtype = _read_header(f, str(path))
            offset = f.tell()
    except FileNotFoundError:
        raise RunFormatError(f"{path}: file is missing") from None
    except IsADirectoryError:
        raise RunFormatError(f"{path}: is a directory, expected a .npy file") from None
    except OSError as exc:
        raise RunFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    expected = offset + _prod(shape) * dtype.itemsize
    size = path.stat().st_size
    if size < expected:
        raise RunFormatError(
            f"{path}: truncated ({size} bytes, header announces {expected}); "
            "the file was not fully written"
        )
    if size > expected:
        raise RunFormatError(f"{path}: {size - expected} unexpected bytes after the array data")
    use_mmap = mmap and _prod(shape) > 0  # an empty array cannot be memory-mapped
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if use_mmap else None)
    except (ValueError, OSError, EOFError) as exc:
        raise RunFormatError(f"{path}: cannot load array ({exc})") from None


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Load every array of an .npz archive into memory, refusing pickles and damaged members."""
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                key = info.filename[: -len(".npy")]
                where = f"{path}[{key}]"
                with zf.open(info) as f:
                    shape, fortran, dtype = _read_header(f, where)
                    # The archive's directory states the member size; a header that claims more
                    # data than that is damaged (and would make us allocate for nothing).
                    if _prod(shape) * dtype.itemsize > info.file_size:
                        raise RunFormatError(f"{where}: truncated array data")
                    data = f.read(_prod(shape) * dtype.itemsize)
                if len(data) != _prod(shape) * dtype.itemsize:
                    raise RunFormatError(f"{where}: truncated array data")
                arr = np.frombuffer(data, dtype=dtype)
                arrays[key] = arr.reshape(shape, order="F" if fortran else "C")
    except RunFormatError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError) as exc:
        raise RunFormatError(f"{path}: damaged .npz archive ({exc})") from None
    return arrays


def read_outputs_file(path: Path | str, labels_path: Path | str | None = None) -> dict:
    """Read an outputs file to import: .npz (outputs, labels, optional spikes, ids), .npy
    (outputs only; labels from labels_path) or .pt (a dict of tensors, torch.load with
    weights_only=True). Returns a dict of numpy arrays; shapes are checked by the caller."""
    path = Path(path)
    if not path.exists():
        raise RunFormatError(f"{path}: file does not exist")
    if not path.is_file():
        raise RunFormatError(f"{path}: not a file")
    with open(path, "rb") as f:
        head = f.read(8)
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):  # torch's format is a zip too: decide by name first
        arrays = _read_torch(path)
    elif head.startswith(b"PK"):
        arrays = _read_npz(path)
    elif head.startswith(b"\x93NUMPY"):
        arrays = {"outputs": read_npy(path)}
    elif suffix == ".npz":
        raise RunFormatError(f"{path}: not an .npz archive (no zip signature)")
    else:
        raise RunFormatError(f"{path}: not an .npz archive or .npy array (unknown content)")
    if labels_path is not None:
        if "labels" in arrays:
            raise RunFormatError(f"{path}: has a 'labels' array and a labels file was given too")
        arrays["labels"] = read_npy(labels_path, mmap=False)
    if "outputs" not in arrays:
        raise RunFormatError(f"{path}: no 'outputs' array (found: {', '.join(arrays) or 'none'})")
    if "labels" not in arrays:
        raise RunFormatError(f"{path}: no 'labels' array (add one, or pass a labels file)")
    unknown = set(arrays) - {"outputs", "labels", "spikes", "ids"}
    if unknown:
        raise RunFormatError(f"{path}: unexpected arrays {sorted(unknown)}")
    return arrays


def _read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch  # only for .pt imports; the rest of dynconf never needs it
    except ImportError:
        raise RunFormatError(f"{path}: reading .pt files needs torch (not installed)") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or unsafe files
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunFormatError(f"{path}: cannot read as a safe torch file ({msg})") from None
    if not isinstance(obj, dict):
        raise RunFormatError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    arrays = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise RunFormatError(f"{path}: entry {key!r} is not a named tensor")
        arrays[key] = value.detach().cpu().numpy()
    return arrays


# --------------------------------------------------------------------------- validation


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _safe_relative_path(value: str) -> bool:
    p = Path(value)
    return not p.is_absolute() and ".." not in p.parts and "\\" not in value


def validate_meta(meta, where: str = META_FILE) -> dict:
    """Check meta.json content (types, ranges, split names); returns it unchanged."""

    def bad(problem: str):
        raise RunFormatError(f"{where}: {problem}")

    if not isinstance(meta, dict):
        bad(f"expected a JSON object, got {type(meta).__name__}")
    schema = meta.get("schema")
    if not _is_int(schema):
        bad("'schema' is missing or not an integer")
    if schema != SCHEMA:
        bad(f"schema {schema} is not supported (this dynconf reads schema {SCHEMA})")
    for key in ("name", "dataset", "model"):
        if not isinstance(meta.get(key), str):
            bad(f"'{key}' is missing or not a string")
    T_max = meta.get("T_max")
    if not _is_int(T_max) or T_max < 1:
        bad("'T_max' must be an integer >= 1")
    classes = meta.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        bad("'classes' must be a list of strings")
    if len(classes) < 2:
        bad("'classes' must name at least 2 classes")
    splits = meta.get("splits")
    if not isinstance(splits, dict) or not splits:
        bad("'splits' must be a non-empty object {split name: number of samples}")
    for split, n in splits.items():
        if not SPLIT_NAME.match(split):
            bad(f"split name {split!r} is not allowed (letters, digits, '_' and '-', max 64)")
        if not _is_int(n) or n < 1:
            bad(f"split '{split}': sample count must be an integer >= 1")
    storage = meta.get("storage")
    if storage not in STORAGES:
        bad(f"'storage' must be one of {', '.join(STORAGES)}")
    if storage == "topk":
        k = meta.get("topk")
        if not _is_int(k) or not 1 <= k <= len(classes):
            bad(f"'topk' must be an integer in 1..{len(classes)}")
        kappas = meta.get("topk_kappas")
        if not isinstance(kappas, list) or not all(_is_number(x) and x > 0 for x in kappas):
            bad("'topk_kappas' must be a list of positive numbers")
    neurons = meta.get("neurons")
    if neurons is not None and (not _is_int(neurons) or neurons < 1):
        bad("'neurons' must be a positive integer")
    created = meta.get("created")
    if created is not None and not isinstance(created, dict):
        bad("'created' must be an object")
    checkpoint = meta.get("checkpoint")
    if checkpoint is not None and (
        not isinstance(checkpoint, str) or not _safe_relative_path(checkpoint)
    ):
        bad("'checkpoint' must be a relative path without '..'")
    for key in ("notes",):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            bad(f"'{key}' must be a string")
    # Accuracy summaries: a number per run, or one per split ({split: ...}).
    ann = meta.get("ann_accuracy")
    if ann is not None and not _numbers(ann, depth=1):
        bad("'ann_accuracy' must be a number or {split: number}")
    by_T = meta.get("snn_accuracy_by_T")
    if by_T is not None and not (isinstance(by_T, dict) and _numbers(by_T, depth=2)):
        bad("'snn_accuracy_by_T' must map step counts (or splits, then steps) to numbers")
    return meta


def _numbers(x, depth: int) -> bool:
    """A number, or (up to depth levels) a JSON object whose values are such."""
    if _is_number(x):
        return True
    return depth > 0 and isinstance(x, dict) and all(_numbers(v, depth - 1) for v in x.values())


def _all_finite(arr: np.ndarray) -> bool:
    """np.isfinite(arr).all() in slices, so a memory-mapped file is never loaded whole."""
    if arr.dtype.kind in "iub":
        return True
    flat = arr.reshape(-1) if arr.flags.c_contiguous else np.ravel(arr)
    return all(
        np.isfinite(flat[i : i + CHUNK_ELEMENTS]).all() for i in range(0, flat.size, CHUNK_ELEMENTS)
    )


def _chunked_min_max(arr: np.ndarray) -> tuple:
    flat = arr.reshape(-1)
    lo, hi = None, None
    for i in range(0, flat.size, CHUNK_ELEMENTS):
        part = flat[i : i + CHUNK_ELEMENTS]
        lo = part.min() if lo is None else min(lo, part.min())
        hi = part.max() if hi is None else max(hi, part.max())
    return lo, hi


def _check_shape(arr: np.ndarray, shape: tuple, where: str, what: str) -> None:
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
    """
    labels = arrays.get("labels")
    if labels is None:
        raise RunFormatError(f"{where['labels']}: labels are missing")
    _check_shape(labels, (N,), where["labels"], "labels")
    N = int(labels.shape[0])
    if N < 1:
        raise RunFormatError(f"{where['labels']}: no samples")
    if labels.dtype.kind not in "iu":
        raise RunFormatError(f"{where['labels']}: labels must be integers, got {labels.dtype}")
    if check_values:
        lo, hi = _chunked_min_max(labels)
        if lo < 0 or hi >= K:
            raise RunFormatError(
                f"{where['labels']}: labels must lie in [0, {K}) for {K} classes, "
                f"found values from {lo} to {hi}"
            )

    def check_float(role: str, shape: tuple, dtypes=None):
        arr = arrays[role]
        _check_shape(arr, shape, where[role], role)
        if arr.dtype.kind != "f" or (dtypes is not None and arr.dtype not in dtypes):
            allowed = ", ".join(str(d) for d in (dtypes or ["a float type"]))
            raise RunFormatError(f"{where[role]}: {role} dtype {arr.dtype} (allowed: {allowed})")
        if check_values and not _all_finite(arr):
            raise RunFormatError(f"{where[role]}: {role} contain NaN or infinite values")

    if "outputs" in arrays:
        check_float("outputs", (T, N, K), OUTPUT_DTYPES)
    if "topk_values" in arrays:
        check_float("topk_values", (T, N, topk), (np.dtype(np.float64),))
        if check_values and T > 0 and topk and topk > 1:
            vals = arrays["topk_values"]
            if np.any(np.diff(np.asarray(vals), axis=2) > 0):
                raise RunFormatError(f"{where['topk_values']}: values are not in descending order")
    if "topk_indices" in arrays:
        idx = arrays["topk_indices"]
        _check_shape(idx, (T, N, topk), where["topk_indices"], "topk_indices")
        if idx.dtype.kind not in "iu":
            raise RunFormatError(f"{where['topk_indices']}: indices must be integers")
        if check_values:
            lo, hi = _chunked_min_max(idx)
            if lo < 0 or hi >= K:
                raise RunFormatError(f"{where['topk_indices']}: class indices outside [0, {K})")
    if "lognorm" in arrays:
        check_float("lognorm", (n_kappas + 1 if n_kappas is not None else None, T, N))
        if check_values and _chunked_min_max(arrays["lognorm"])[0] < 0:
            raise RunFormatError(f"{where['lognorm']}: log-normalisers must be >= 0")
    if arrays.get("spikes") is not None:
        spikes = arrays["spikes"]
        _check_shape(spikes, (T, N), where["spikes"], "spikes")
        if spikes.dtype.kind not in "fiu":
            raise RunFormatError(f"{where['spikes']}: spikes must be numbers, got {spikes.dtype}")
        if check_values:
            if not _all_finite(spikes):
                raise RunFormatError(f"{where['spikes']}: spikes contain NaN or infinite values")
            if _chunked_min_max(spikes)[0] < 0:
                raise RunFormatError(f"{where['spikes']}: spike counts must be >= 0")
    if arrays.get("ids") is not None:
        ids = arrays["ids"]
        _check_shape(ids, (N,), where["ids"], "ids")
        if ids.dtype.kind not in "iu":
            raise RunFormatError(f"{where['ids']}: ids must be integers, got {ids.dtype}")
    return N


# --------------------------------------------------------------------------- loading


def _read_meta(run_dir: Path) -> dict:
    meta_path = run_dir / META_FILE
    if not run_dir.exists():
        raise RunFormatError(f"{run_dir}: run does not exist")
    if not run_dir.is_dir():
        raise RunFormatError(f"{run_dir}: not a directory")
    if not meta_path.is_file():
        raise RunFormatError(f"{meta_path}: missing (not a dynconf run directory?)")
    if meta_path.stat().st_size > MAX_META_BYTES:
        raise RunFormatError(f"{meta_path}: larger than {MAX_META_BYTES >> 20} MiB")
    try:
        text = meta_path.read_text(encoding="utf-8")
        meta = json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise RunFormatError(f"{meta_path}: not valid JSON ({exc})") from None
    return validate_meta(meta, str(meta_path))


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not allowed")


def load_run(run_dir: Path | str, check_values: bool = True) -> Run:
    """Load and validate a run directory. Raises RunFormatError naming the file and problem.

    check_values=False skips the full scans (finite values, label range); shapes, dtypes and
    meta are always checked. Use it only where a run was just validated.
    """
    run_dir = Path(run_dir)
    meta = _read_meta(run_dir)
    T, K = meta["T_max"], len(meta["classes"])
    storage = meta["storage"]
    roles = ["labels", "outputs"] if storage == "full" else ["labels", *TOPK_ROLES]
    splits = {}
    for split, n in meta["splits"].items():
        files = {role: run_dir / f"{split}.{role}.npy" for role in ARRAY_SUFFIXES}
        arrays = {role: read_npy(files[role]) for role in roles}
        for role in ("spikes", "ids"):
            arrays[role] = read_npy(files[role]) if files[role].exists() else None
        check_split_arrays(
            {role: str(path) for role, path in files.items()},
            arrays,
            T,
            K,
            N=n,
            topk=meta.get("topk"),
            n_kappas=len(meta.get("topk_kappas", [])),
            check_values=check_values,
        )
        splits[split] = SplitData(
            name=split,
            num_classes=K,
            topk_kappas=tuple(float(x) for x in meta.get("topk_kappas", [])),
            **arrays,
        )
    return Run(path=run_dir, meta=meta, splits=splits)


TOPK_ROLES = ("topk_values", "topk_indices", "lognorm")


def list_runs(root: Path | str = "cached_runs", check_values: bool = True) -> list[RunListing]:
    """Every directory under root (hidden/temporary ones skipped), valid or not, by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    listings = []
    for path in sorted(root.iterdir()):
        if not path.is_dir() or path.name.startswith("."):
            continue
        try:
            run = load_run(path, check_values=check_values)
            listings.append(RunListing(path.name, path, True, None, run.meta))
        except RunFormatError as exc:
            try:
                meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
                meta = meta if isinstance(meta, dict) else None
            except (OSError, ValueError, UnicodeDecodeError, RecursionError):
                meta = None
            listings.append(RunListing(path.name, path, False, str(exc), meta))
    return listings


# --------------------------------------------------------------------------- preparing arrays


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


def _prepare_split(
    split: str,
    arrays: Mapping[str, np.ndarray | None],
    meta: dict,
    label: str,
) -> dict[str, np.ndarray]:
    """Validate user arrays for one split and convert them to what is stored on disk."""
    if not isinstance(split, str) or not SPLIT_NAME.match(split):
        raise RunFormatError(
            f"split name {split!r} is not allowed (letters, digits, '_' and '-', max 64)"
        )
    unknown = set(arrays) - {"outputs", "labels", "spikes", "ids"}
    if unknown:
        raise RunFormatError(f"{label}: unexpected arrays {sorted(unknown)}")
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
    if meta["storage"] == "full":
        stored["outputs"] = outputs
    else:
        stored.update(topk_arrays(outputs, meta["topk"], meta["topk_kappas"]))
    if "spikes" in given:
        spikes = given["spikes"]
        stored["spikes"] = spikes if spikes.dtype.kind == "f" else spikes.astype(np.float64)
    if "ids" in given:
        stored["ids"] = given["ids"].astype(np.int64)
    return stored


# --------------------------------------------------------------------------- atomic writes


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # some filesystems cannot open directories; rename is still atomic there
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "xb") as f:
        np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:12]}-{path.name}")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def code_version() -> str:
    """dynconf version plus the git commit of the checkout, read from .git without running git."""
    git = Path(__file__).resolve().parents[1] / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            ref_file = git / ref
            if ref_file.is_file():
                head = ref_file.read_text().strip()
            else:
                packed = (git / "packed-refs").read_text().splitlines()
                head = next(line.split()[0] for line in packed if line.endswith(" " + ref))
        return f"{__version__}+g{head[:12]}"
    except (OSError, StopIteration, IndexError):
        return __version__


def make_created(
    command: str | None = None, seed: int | None = None, wall_time_s: float | None = None
) -> dict:
    """The 'created' block of meta.json: how a run was made."""
    return {
        "command": command if command is not None else " ".join(sys.argv),
        "seed": seed,
        "code_version": code_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": wall_time_s,
    }


def _is_run_dir(path: Path) -> bool:
    return (path / META_FILE).is_file()


def save_run(
    run_dir: Path | str,
    meta_or_splits: Mapping,
    splits: Mapping[str, Mapping[str, np.ndarray | None]] | None = None,
    *,
    dataset: str | None = None,
    model: str | None = None,
    classes: list[str] | None = None,
    storage: str | None = None,
    topk: int | None = None,
    topk_kappas: list[float] | None = None,
    neurons: int | None = None,
    created: dict | None = None,
    extra_meta: Mapping | None = None,
    extra_files: Mapping[str, Path | str] | None = None,
    overwrite: bool = False,
) -> Run:
    """Write a new run atomically and return it loaded.

    Two call forms: save_run(run_dir, splits, dataset=..., ...) or save_run(run_dir, meta,
    splits, ...) where meta is a partial meta.json (any field of docs/DESIGN.md; schema and
    the split sizes are filled in, T_max and classes are checked against the arrays).
    splits: {split name: {"outputs": [T, N, K] per-step outputs, "labels": [N],
    optional "spikes": [T, N], "ids": [N]}}. With storage="topk", outputs are reduced to the
    top-`topk` (default 5) accumulated values plus log-normalisers for kappas `topk_kappas`
    (default [T_max]) and for kappa = t. extra_files {file name: source path} are copied in
    (e.g. the checkpoint). The run is built in a hidden temporary directory beside run_dir
    and renamed into place; overwrite=True replaces an existing run (never a directory that
    is not a run).
    """
    start = time.perf_counter()
    run_dir = Path(run_dir)
    if splits is None:
        splits, meta = meta_or_splits, {}
    else:
        try:  # a private copy, and proof that it is JSON
            meta = json.loads(json.dumps(dict(meta_or_splits), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise RunFormatError(f"meta is not JSON-serialisable ({exc})") from None
    if not isinstance(splits, Mapping) or not splits:
        raise RunFormatError("no splits to save")
    if run_dir.exists() and not overwrite:
        raise RunFormatError(f"{run_dir}: already exists (choose another name or overwrite)")
    if run_dir.exists() and not (_is_run_dir(run_dir) or not any(run_dir.iterdir())):
        raise RunFormatError(f"{run_dir}: exists and is not a dynconf run; refusing to replace it")
    fields = {
        "dataset": dataset,
        "model": model,
        "classes": classes,
        "storage": storage,
        "topk": topk,
        "topk_kappas": topk_kappas,
        "neurons": neurons,
        "created": created,
        **dict(extra_meta or {}),
    }
    for key, value in fields.items():
        if value is None:
            continue
        if key in meta and meta[key] != value:
            raise RunFormatError(f"'{key}' given twice with different values")
        meta[key] = value
    for key in ("schema", "splits"):
        if key in meta and key in (extra_meta or {}):
            raise RunFormatError(f"'{key}' is derived from the arrays and cannot be set")
    first = next(iter(splits.values()))
    shape = np.shape(first.get("outputs")) if isinstance(first, Mapping) else ()
    if len(shape) != 3:
        raise RunFormatError(f"outputs must be [T, N, K] (time first), got shape {shape}")
    T, _, K = (int(s) for s in shape)
    if meta.get("T_max", T) != T:
        raise RunFormatError(f"meta says T_max={meta['T_max']} but the outputs have T={T}")
    meta.setdefault("classes", [str(i) for i in range(K)])
    meta["classes"] = [str(c) for c in meta["classes"]]
    if len(meta["classes"]) != K:
        raise RunFormatError(f"{len(meta['classes'])} class names for outputs with K = {K}")
    meta.update(schema=SCHEMA, T_max=T, splits={})
    meta.setdefault("name", run_dir.name)
    meta.setdefault("dataset", "unknown")
    meta.setdefault("model", "unknown")
    meta.setdefault("storage", "full")
    if meta["storage"] not in STORAGES:
        raise RunFormatError(f"storage must be one of {', '.join(STORAGES)}")
    if meta["storage"] == "topk":
        k = meta.get("topk", 5)
        if not _is_int(k) or k < 1:
            raise RunFormatError(f"topk must be a positive integer, got {k!r}")
        meta["topk"] = min(k, K)
        meta["topk_kappas"] = [float(x) for x in meta.get("topk_kappas") or [T]]
    files = {}
    for name, source in (extra_files or {}).items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", name) or name.endswith(".npy"):
            raise RunFormatError(f"extra file name {name!r} is not allowed")
        if name == META_FILE or not Path(source).is_file():
            raise RunFormatError(f"extra file {name!r}: {source} is not a file")
        files[name] = Path(source)
    prepared = {}
    for split, arrays in splits.items():
        if not isinstance(arrays, Mapping):
            raise RunFormatError(f"split {split!r}: expected a mapping of arrays")
        prepared[split] = _prepare_split(split, arrays, meta, f"split '{split}'")
        meta["splits"][split] = int(prepared[split]["labels"].shape[0])
    meta["created"] = dict(meta.get("created") or make_created())
    if meta["created"].get("wall_time_s") is None:
        meta["created"]["wall_time_s"] = round(time.perf_counter() - start, 3)
    validate_meta(meta, "meta to save")

    parent = run_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f"{TMP_PREFIX}{run_dir.name}-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    trash = None
    try:
        for split, stored in prepared.items():
            for role, arr in stored.items():
                _write_npy(tmp / f"{split}.{role}.npy", arr)
        for name, source in files.items():
            shutil.copyfile(source, tmp / name)
            with open(tmp / name, "rb") as f:
                os.fsync(f.fileno())
        _write_json_atomic(tmp / META_FILE, meta)
        _fsync_dir(tmp)
        if run_dir.exists():
            # Checked again here: only ever move aside a run or an empty directory.
            if not (_is_run_dir(run_dir) or not any(run_dir.iterdir())):
                raise RunFormatError(f"{run_dir}: exists and is not a dynconf run")
            trash = parent / f"{TMP_PREFIX}old-{run_dir.name}-{uuid.uuid4().hex[:12]}"
            os.rename(run_dir, trash)
        os.rename(tmp, run_dir)
        _fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if trash is not None and not run_dir.exists():
            os.rename(trash, run_dir)  # put the old run back
            trash = None
        raise
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    return load_run(run_dir, check_values=False)


def add_split(
    run_dir: Path | str,
    split: str,
    outputs: np.ndarray,
    labels: np.ndarray,
    spikes: np.ndarray | None = None,
    ids: np.ndarray | None = None,
    *,
    overwrite: bool = False,
) -> Run:
    """Add a split to an existing run (same T_max and classes; stored like the run's others).

    Atomic: the split's files are written under temporary names, fsynced and renamed; meta.json
    is rewritten last, atomically, so until then the run loads exactly as before. Replacing an
    existing split first drops it from meta.json, so no intermediate state mixes old and new.
    """
    run_dir = Path(run_dir)
    run = load_run(run_dir, check_values=False)
    meta = json.loads(json.dumps(run.meta))  # private deep copy
    arrays = {"outputs": outputs, "labels": labels, "spikes": spikes, "ids": ids}
    shape = np.shape(outputs)
    if len(shape) == 3 and (shape[0] != run.T_max or shape[2] != run.K):
        raise RunFormatError(
            f"{run_dir}: outputs have T={shape[0]}, K={shape[2]} but the run has "
            f"T_max={run.T_max}, K={run.K}"
        )
    stored = _prepare_split(split, arrays, meta, f"split '{split}'")
    if split in meta["splits"]:
        if not overwrite:
            raise RunFormatError(f"{run_dir}: split '{split}' already exists")
        del meta["splits"][split]
        if meta["splits"]:
            _write_json_atomic(run_dir / META_FILE, meta)
        else:  # the only split: leave a meta that fails to load rather than one that lies
            _write_json_atomic(run_dir / META_FILE, {**meta, "splits": {}})
    # Files of this split that meta.json does not reference (leftovers of an interrupted
    # write, or of the split just dropped) are removed so they cannot be mistaken for data.
    for role in ARRAY_SUFFIXES:
        (run_dir / f"{split}.{role}.npy").unlink(missing_ok=True)
    token = uuid.uuid4().hex[:12]
    written = []  # (temporary path, final path)
    try:
        for role, arr in stored.items():
            final = run_dir / f"{split}.{role}.npy"
            tmp = run_dir / f"{TMP_PREFIX}{token}-{final.name}"
            written.append((tmp, final))
            _write_npy(tmp, arr)
        for tmp, final in written:
            os.replace(tmp, final)
        _fsync_dir(run_dir)
    except BaseException:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
        raise
    meta["splits"][split] = int(stored["labels"].shape[0])
    meta.setdefault("history", []).append({"added_split": split, **make_created()})
    _write_json_atomic(run_dir / META_FILE, meta)
    return load_run(run_dir, check_values=False)


def import_outputs(
    source: Path | str,
    run_dir: Path | str,
    *,
    split: str = "test",
    cumulative: bool = False,
    labels_path: Path | str | None = None,
    dataset: str | None = None,
    model: str | None = None,
    classes: list[str] | None = None,
    storage: str = "full",
    topk: int = 5,
    topk_kappas: list[float] | None = None,
    dtype: str | None = None,
    neurons: int | None = None,
    created: dict | None = None,
    overwrite: bool = False,
) -> Run:
    """Import an outputs file (see read_outputs_file) as a split of a new or existing run.

    cumulative=True: the file holds accumulated outputs S_t; they are differenced (in float64,
    stored as float64 unless dtype says otherwise, so S_t is reconstructed exactly).
    dtype: store outputs as float16/float32/float64 (default: keep the file's float type).
    An existing run gets the split added (its storage settings apply; overwrite=True replaces
    a split of the same name); otherwise a new run is created.
    """
    start = time.perf_counter()
    source, run_dir = Path(source), Path(run_dir)
    arrays = read_outputs_file(source, labels_path)
    outputs = arrays["outputs"]
    if outputs.ndim != 3:
        raise RunFormatError(
            f"{source}: outputs must be [T, N, K] (time first), got shape {outputs.shape}"
        )
    if outputs.dtype.kind not in "fiu":
        raise RunFormatError(f"{source}: outputs must be numbers, got {outputs.dtype}")
    if cumulative:
        acc = outputs.astype(np.float64)
        if not np.isfinite(acc).all():
            raise RunFormatError(f"{source}: outputs contain NaN or infinite values")
        outputs = np.diff(acc, axis=0, prepend=np.zeros_like(acc[:1]))
    if dtype is not None:
        if np.dtype(dtype) not in OUTPUT_DTYPES:
            raise RunFormatError(f"dtype must be float16, float32 or float64, got {dtype}")
        with np.errstate(over="ignore"):
            outputs = outputs.astype(dtype)
        if not np.isfinite(outputs).all():
            raise RunFormatError(f"{source}: outputs overflow {dtype} (NaN/inf after conversion)")
    arrays["outputs"] = outputs
    if run_dir.exists() and _is_run_dir(run_dir):
        run = load_run(run_dir, check_values=False)
        for key, given, have in (
            ("dataset", dataset, run.meta["dataset"]),
            ("model", model, run.meta["model"]),
        ):
            if given is not None and given != have:
                raise RunFormatError(f"{run_dir}: run has {key} '{have}', not '{given}'")
        if classes is not None and list(classes) != run.classes:
            raise RunFormatError(f"{run_dir}: class names differ from the run's")
        return add_split(run_dir, split, **arrays, overwrite=overwrite)
    if created is None:
        created = make_created(wall_time_s=None)
    run = save_run(
        run_dir,
        {split: arrays},
        dataset=dataset or "unknown",
        model=model or "unknown",
        classes=classes,
        storage=storage,
        topk=topk,
        topk_kappas=topk_kappas,
        neurons=neurons,
        created={**created, "wall_time_s": round(time.perf_counter() - start, 3)},
        extra_meta={"notes": f"imported from {source.name}"},
    )
    return run


def disk_bytes(run: Run) -> dict[str, int]:
    """Bytes on disk per split (all of its files), for `info`."""
    sizes = {}
    for split in run.splits:
        sizes[split] = sum(
            p.stat().st_size
            for role in ARRAY_SUFFIXES
            if (p := run.path / f"{split}.{role}.npy").exists()
        )
    return sizes
