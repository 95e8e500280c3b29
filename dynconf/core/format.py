"""The run format (schema 1): what a run directory holds and the checks that prove it.

A run is what makes every exit rule cheap to study: the SNN is simulated once for T_max steps
per sample and its last-layer output at every step is stored, so any threshold, decoder or
policy is evaluated afterwards without touching the network (method.md section 1).

Layout of `<runs root>/<name>/`:
  meta.json                    what the run is and how it was made (validate_meta)
  <split>.labels.npy           [N] integer class labels in [0, K)
  <split>.outputs.npy          [T_max, N, K] per-step outputs, NOT accumulated   (storage "full")
  <split>.topk_values.npy      [T_max, N, k] float64 top-k of S_t, descending    (storage "topk")
  <split>.topk_indices.npy     [T_max, N, k] int16/int32 their class indices     (storage "topk")
  <split>.lognorm.npy          [M+1, T_max, N] float64 log sum_k exp((S_t[k] - max S_t) / s)
                               for s in meta["topk_kappas"] and a last row for s = t  ("topk")
  <split>.spikes.npy           optional [T_max, N] hidden spikes per step and image
  <split>.synops.npy           optional [T_max, N] synaptic operations per step and image,
                               int64 (or float), per step like spikes, not accumulated
                               (definition: dynconf/engine/synops.py)
  <split>.ids.npy              optional [N] int64 sample ids

A split's files may carry another stem than the split's name: meta.json's optional "files"
maps a split to its stem (`"files": {"test": "test~3f2a9c0d"}`); a split not listed there uses
its own name. Replacing a split writes the new arrays under a fresh stem and then switches
meta.json, so at every instant the run loads as the old split or the new one (store.add_split).

Every array of a run may come from anyone, so everything here is checked (types, shapes,
ranges, finite values) before a number is computed from it; a damaged run fails with the file
and the problem named instead of producing wrong numbers. Reading is in npyio.py, writing in
store.py.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynconf.core.topk import topk_arrays
from dynconf.errors import RunFormatError

SCHEMA = 1
META_FILE = "meta.json"
SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")  # no dots, slashes or '..'
# The stem of a replaced split's files: its name, '~' and hex digits (never another split's
# name, since split names have no '~'); no dots or separators, so no path can be formed.
FILE_STEM = re.compile(r"(?P<split>[A-Za-z0-9][A-Za-z0-9_-]{0,63})~[0-9a-f]{4,32}\Z")
RUN_NAME = SPLIT_NAME  # names of runs dynconf creates (check_run_name)
MAX_ACCUMULATED = 1e150  # |S_t| beyond this: sums, margins and squares would overflow
STORAGES = ("full", "topk")
OUTPUT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
MAX_META_BYTES = 64 << 20  # room for ImageNet-21k class lists, not for a hostile giant
CHUNK_ELEMENTS = 1 << 24  # arrays are checked / converted in slices of this many elements

# Files of one split: stored name suffix -> role. Only these names are ever written or removed.
# What a user hands in for one split: the required arrays, then the optional ones.
OPTIONAL_ROLES = ("spikes", "synops", "ids")
INPUT_ROLES = ("outputs", "labels", *OPTIONAL_ROLES)
ARRAY_SUFFIXES = (
    "labels",
    "outputs",
    "topk_values",
    "topk_indices",
    "lognorm",
    "spikes",
    "ids",
    "synops",
)

TOPK_ROLES = ("topk_values", "topk_indices", "lognorm")

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
    synops: np.ndarray | None = None
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


# --------------------------------------------------------------------------- validation


def check_run_name(name: str) -> str:
    """The name of a run to create: 1-64 letters, digits, '_' or '-', starting with a letter
    or digit (so it is a plain folder name on every filesystem). Returns it; raises
    RunFormatError otherwise. Existing runs with other names still load."""
    if not isinstance(name, str) or not RUN_NAME.match(name):
        shown = name if isinstance(name, str) and len(name) <= 40 else f"{str(name)[:40]}..."
        length = f" ({len(name)} characters)" if isinstance(name, str) and len(name) > 64 else ""
        raise RunFormatError(
            f"run name {shown!r}{length} is not allowed: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def split_stem(meta: Mapping, split: str) -> str:
    """The file stem of a split's arrays (meta["files"], default the split's name)."""
    return (meta.get("files") or {}).get(split, split)


def split_files(run_dir: Path, meta: Mapping, split: str) -> dict[str, Path]:
    """{role: path} of every array file a split may have (ARRAY_SUFFIXES)."""
    stem = split_stem(meta, split)
    return {role: run_dir / f"{stem}.{role}.npy" for role in ARRAY_SUFFIXES}


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
    for key in ("notes", "id_scheme", "arch"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            bad(f"'{key}' must be a string")
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
    levels = meta.get("levels")
    if levels is not None and (not _is_int(levels) or levels < 1):
        bad("'levels' must be a positive integer")
    _check_files(meta.get("files"), splits, bad)
    _check_created(meta.get("created"), bad)
    history = meta.get("history")
    if history is not None and not (
        isinstance(history, list) and all(isinstance(h, dict) for h in history)
    ):
        bad("'history' must be a list of objects")
    checkpoint = meta.get("checkpoint")
    if checkpoint is not None and (
        not isinstance(checkpoint, str) or not checkpoint or not _safe_relative_path(checkpoint)
    ):
        bad("'checkpoint' must be a relative path without '..'")
    id_source = meta.get("id_source")
    if id_source is not None and not (
        isinstance(id_source, dict) and all(isinstance(v, str) for v in id_source.values())
    ):
        bad("'id_source' must map split names to strings")
    # Accuracy summaries: a fraction per run, or one per split ({split: ...}).
    ann = meta.get("ann_accuracy")
    if ann is not None and not (
        _is_fraction(ann) or (isinstance(ann, dict) and all(_is_fraction(v) for v in ann.values()))
    ):
        bad("'ann_accuracy' must be a number in [0, 1] or {split: number in [0, 1]}")
    by_T = meta.get("snn_accuracy_by_T")
    if by_T is not None and not _accuracy_by_steps(by_T, T_max):
        bad(
            "'snn_accuracy_by_T' must map step counts 1..T_max to numbers in [0, 1] "
            "(or splits to such objects)"
        )
    return meta


STEP_KEY = re.compile(r"[1-9][0-9]{0,8}\Z")


def _is_fraction(x) -> bool:
    return _is_number(x) and 0 <= x <= 1


def _accuracy_by_steps(by_T, T_max: int) -> bool:
    """{"1": acc, ...} with step counts 1..T_max, or {split: that}; never the two mixed."""

    def steps(d) -> bool:
        return isinstance(d, dict) and all(
            isinstance(k, str) and STEP_KEY.match(k) and int(k) <= T_max and _is_fraction(v)
            for k, v in d.items()
        )

    if not isinstance(by_T, dict):
        return False
    if all(isinstance(v, dict) for v in by_T.values()) and by_T:
        return all(SPLIT_NAME.match(k) and steps(v) for k, v in by_T.items())
    return steps(by_T)


def _check_files(files, splits: dict, bad) -> None:
    if files is None:
        return
    if not isinstance(files, dict):
        bad("'files' must map split names to file stems")
    for split, stem in files.items():
        if split not in splits:
            bad(f"'files' names split {split!r}, which 'splits' does not list")
        match = FILE_STEM.match(stem) if isinstance(stem, str) else None
        if stem != split and (match is None or match.group("split") != split):
            bad(f"'files': stem {stem!r} of split {split!r} must be '{split}' or '{split}~<hex>'")


# Fields of "created" that pages show, and the types they must have when present.
_CREATED_TYPES = {
    "command": str,
    "code_version": str,
    "date": str,
    "device": str,
    "seed": int,
    "limit": int,
    "wall_time_s": (int, float),
    "simulation_seconds": (int, float),
}


def _check_created(created, bad) -> None:
    if created is None:
        return
    if not isinstance(created, dict):
        bad("'created' must be an object")
    for key, kind in _CREATED_TYPES.items():
        value = created.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, kind):
            bad(f"'created.{key}' has the wrong type ({type(value).__name__})")
        if isinstance(value, float) and not math.isfinite(value):
            bad(f"'created.{key}' must be finite")
    commands = created.get("training_commands")
    if commands is not None and not (
        isinstance(commands, list) and all(isinstance(c, str) for c in commands)
    ):
        bad("'created.training_commands' must be a list of strings")


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
    """
    labels = arrays.get("labels")
    if labels is None:
        raise RunFormatError(f"{where['labels']}: labels are missing")
    check_shape(labels, (N,), where["labels"], "labels")
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

    def check_float(role: str, shape: tuple, dtypes=None, scan: bool = True):
        arr = arrays[role]
        check_shape(arr, shape, where[role], role)
        if arr.dtype.kind != "f" or (dtypes is not None and arr.dtype not in dtypes):
            allowed = ", ".join(str(d) for d in (dtypes or ["a float type"]))
            raise RunFormatError(f"{where[role]}: {role} dtype {arr.dtype} (allowed: {allowed})")
        if check_values and scan and not _all_finite(arr):
            raise RunFormatError(f"{where[role]}: {role} contain NaN or infinite values")

    if "outputs" in arrays:
        check_float("outputs", (T, N, K), OUTPUT_DTYPES, scan=False)
        problem = accumulation_problem(arrays["outputs"]) if check_values else None
        if problem:
            raise RunFormatError(f"{where['outputs']}: the accumulated outputs S_t are {problem}")
    if "topk_values" in arrays:
        check_float("topk_values", (T, N, topk), (np.dtype(np.float64),))
        largest = np.abs(_chunked_min_max(arrays["topk_values"])).max() if check_values else 0
        if largest > MAX_ACCUMULATED:
            raise RunFormatError(
                f"{where['topk_values']}: the accumulated outputs S_t are not finite in "
                f"practice (|S_t| exceeds {MAX_ACCUMULATED:g})"
            )
        if check_values and T > 0 and topk and topk > 1:
            vals = arrays["topk_values"]
            if np.any(np.diff(np.asarray(vals), axis=2) > 0):
                raise RunFormatError(f"{where['topk_values']}: values are not in descending order")
    if "topk_indices" in arrays:
        idx = arrays["topk_indices"]
        check_shape(idx, (T, N, topk), where["topk_indices"], "topk_indices")
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
    for role in ("spikes", "synops"):  # per-step counts [T, N]
        if arrays.get(role) is None:
            continue
        counts = arrays[role]
        check_shape(counts, (T, N), where[role], role)
        if counts.dtype.kind not in "fiu":
            raise RunFormatError(f"{where[role]}: {role} must be numbers, got {counts.dtype}")
        if check_values:
            if not _all_finite(counts):
                raise RunFormatError(f"{where[role]}: {role} contain NaN or infinite values")
            if _chunked_min_max(counts)[0] < 0:
                raise RunFormatError(f"{where[role]}: {role} must be >= 0 (they are counts)")
    if arrays.get("ids") is not None:
        ids = arrays["ids"]
        check_shape(ids, (N,), where["ids"], "ids")
        if ids.dtype.kind not in "iu":
            raise RunFormatError(f"{where['ids']}: ids must be integers, got {ids.dtype}")
    return N


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
    if meta["storage"] == "full":
        stored["outputs"] = outputs
    else:
        stored.update(topk_arrays(outputs, meta["topk"], meta["topk_kappas"]))
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
