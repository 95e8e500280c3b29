"""The run format (schema 1): what a run directory holds and the checks that prove it.

A run is what makes every exit rule cheap to study: the SNN is simulated once for T_max steps
per sample and its last-layer output at every step is stored, so any threshold, decoder or
policy is evaluated afterwards without touching the network (docs/METHOD.md).

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

Every array of a run may come from anyone, so everything is checked (types, shapes, ranges,
finite values) before a number is computed from it; a damaged run fails with the file and the
problem named instead of producing wrong numbers. The checks of meta.json are in
meta_checks.py, those of the arrays in array_checks.py (both re-exported here); reading is in
reading.py and npyio.py, writing in store.py.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynconf.core.storage import STORAGES as STORAGE_STRATEGIES
from dynconf.errors import RunFormatError

SCHEMA = 1
META_FILE = "meta.json"
SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")  # no dots, slashes or '..'
# The stem of a replaced split's files: its name, '~' and hex digits (never another split's
# name, since split names have no '~'); no dots or separators, so no path can be formed.
FILE_STEM = re.compile(r"(?P<split>[A-Za-z0-9][A-Za-z0-9_-]{0,63})~[0-9a-f]{4,32}\Z")
RUN_NAME = SPLIT_NAME  # names of runs dynconf creates (check_run_name)
MAX_ACCUMULATED = 1e150  # |S_t| beyond this: sums, margins and squares would overflow
STORAGES = tuple(STORAGE_STRATEGIES)  # names of the strategies in core/storage.py
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

    def __repr__(self) -> str:  # never the arrays: a notebook prints this
        return f"SplitData({self.name!r}, N={self.N:,}, T={self.T}, K={self.K}, {self.storage})"

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

    def __repr__(self) -> str:  # never the arrays: a notebook prints this
        sizes = ", ".join(f"{name}: {sp.N:,}" for name, sp in self.splits.items())
        return f"Run({self.name!r}, T_max={self.meta.get('T_max')}, splits={{{sizes}}})"

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


# The checks live in array_checks.py and meta_checks.py, which import this module's names;
# they are found here too (PEP 562), loaded on first use so either side may be imported first.
_CHECKS = {
    "_all_finite": "array_checks",
    "_chunked_min_max": "array_checks",
    "accumulation_problem": "array_checks",
    "check_shape": "array_checks",
    "check_split_arrays": "array_checks",
    "check_split_inputs": "array_checks",
    "prepare_split": "array_checks",
    "stored_optional": "array_checks",
    "validate_meta": "meta_checks",
}


def __getattr__(name: str):
    if name not in _CHECKS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"dynconf.core.{_CHECKS[name]}"), name)
