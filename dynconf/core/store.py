"""Run directories on disk: load and list them, write new runs and splits atomically.

Writes go to temporary names beside the target (dynconf/core/atomic.py), are fsynced and then
renamed into place, so a crash or a kill never leaves a half-written run that loads as valid.
The default folders (`default_runs_root`, `default_work_root`) are defined here once for the
CLI, the app and the library.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dynconf.core.atomic import TMP_PREFIX, fsync_dir, write_json_atomic, write_new_file
from dynconf.core.format import (
    ARRAY_SUFFIXES,
    MAX_META_BYTES,
    META_FILE,
    SCHEMA,
    STORAGES,
    TOPK_ROLES,
    Run,
    RunListing,
    SplitData,
    _is_int,
    check_split_arrays,
    prepare_split,
    validate_meta,
)
from dynconf.core.npyio import read_npy
from dynconf.core.provenance import make_created
from dynconf.errors import RunFormatError

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_runs_root() -> Path:
    """Where shipped runs live: $DYNCONF_RUNS, else cached_runs/ of this checkout."""
    return Path(os.environ.get("DYNCONF_RUNS") or REPO_ROOT / "cached_runs")


def default_work_root() -> Path:
    """Where a user's imports and simulations go: $DYNCONF_WORK, else work_runs/."""
    return Path(os.environ.get("DYNCONF_WORK") or REPO_ROOT / "work_runs")


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


def list_runs(root: Path | str | None = None, check_values: bool = True) -> list[RunListing]:
    """Every directory under root (default: default_runs_root(); hidden and temporary ones
    skipped), valid or not, by name."""
    root = default_runs_root() if root is None else Path(root)
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


def write_npy(path: Path, arr: np.ndarray) -> None:
    """One array into a fresh file (inside a temporary name or folder), fsynced."""
    write_new_file(
        path,
        lambda fh: np.lib.format.write_array(fh, np.ascontiguousarray(arr), allow_pickle=False),
    )


def is_run_dir(path: Path) -> bool:
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
    if run_dir.exists() and not (is_run_dir(run_dir) or not any(run_dir.iterdir())):
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
        prepared[split] = prepare_split(split, arrays, meta, f"split '{split}'")
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
                write_npy(tmp / f"{split}.{role}.npy", arr)
        for name, source in files.items():
            shutil.copyfile(source, tmp / name)
            with open(tmp / name, "rb") as f:
                os.fsync(f.fileno())
        write_json_atomic(tmp / META_FILE, meta)
        fsync_dir(tmp)
        if run_dir.exists():
            # Checked again here: only ever move aside a run or an empty directory.
            if not (is_run_dir(run_dir) or not any(run_dir.iterdir())):
                raise RunFormatError(f"{run_dir}: exists and is not a dynconf run")
            trash = parent / f"{TMP_PREFIX}old-{run_dir.name}-{uuid.uuid4().hex[:12]}"
            os.rename(run_dir, trash)
        os.rename(tmp, run_dir)
        fsync_dir(parent)
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
    stored = prepare_split(split, arrays, meta, f"split '{split}'")
    if split in meta["splits"]:
        if not overwrite:
            raise RunFormatError(f"{run_dir}: split '{split}' already exists")
        del meta["splits"][split]
        if meta["splits"]:
            write_json_atomic(run_dir / META_FILE, meta)
        else:  # the only split: leave a meta that fails to load rather than one that lies
            write_json_atomic(run_dir / META_FILE, {**meta, "splits": {}})
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
            write_npy(tmp, arr)
        for tmp, final in written:
            os.replace(tmp, final)
        fsync_dir(run_dir)
    except BaseException:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
        raise
    meta["splits"][split] = int(stored["labels"].shape[0])
    meta.setdefault("history", []).append({"added_split": split, **make_created()})
    write_json_atomic(run_dir / META_FILE, meta)
    return load_run(run_dir, check_values=False)


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
