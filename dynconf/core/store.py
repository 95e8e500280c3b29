"""Run directories on disk: write new runs and splits atomically (loading and listing are
in reading.py, re-exported here).

Writes go to temporary names beside the target (dynconf/core/atomic.py), are fsynced and then
renamed into place, so a crash or a kill never leaves a half-written run that loads as valid.
Every write holds the run's lock (dynconf/core/locking.py), so concurrent writers serialise,
and first removes what earlier killed writers left behind (atomic.remove_stale_temps).
The folders runs live in (`default_runs_root`, `default_work_root`, `runs_roots`) are defined
once in dynconf/core/roots.py and re-exported here.

A writer whose arrays do not fit in memory (the streaming import) passes its own ``prepare``
to save_run / add_split: it writes each stored array with NpyWriter into a temporary file
beside the destination and returns that file's Path, which is then renamed into place like
the arrays written here, so the atomic and locking rules are the same.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from dynconf.core.atomic import (
    OLD_TAG,
    TMP_PREFIX,  # noqa: F401  (re-exported: callers and tests name leftovers by it)
    destination_error,
    fsync_dir,
    remove_stale_temps,
    temp_name,
    write_json_atomic,
    write_new_file,
)
from dynconf.core.format import (
    ARRAY_SUFFIXES,
    FILE_STEM,
    META_FILE,
    SCHEMA,
    Run,
    check_run_name,
    prepare_split,
    split_stem,
    validate_meta,
)
from dynconf.core.locking import run_lock
from dynconf.core.npyio import is_regular_file, open_regular
from dynconf.core.npywriter import NpyWriter  # noqa: F401  (re-exported: the streaming import)
from dynconf.core.provenance import make_created
from dynconf.core.reading import (  # noqa: F401  (re-exported: where callers find them)
    damaged_meta,
    disk_bytes,
    is_run_dir,
    list_runs,
    load_run,
    run_stamp,
)
from dynconf.core.roots import (  # noqa: F401  (re-exported: the folders runs live in)
    default_runs_root,
    default_work_root,
    runs_roots,
)
from dynconf.core.storage import storage_of
from dynconf.errors import DynconfError, RunFormatError


def write_npy(path: Path, arr: np.ndarray) -> None:
    """One array into a fresh file (inside a temporary name or folder), fsynced."""
    write_new_file(
        path,
        lambda fh: np.lib.format.write_array(fh, np.ascontiguousarray(arr), allow_pickle=False),
    )


# What prepare returns for a split: {role: array to write, or the Path of a finished .npy file
# (fsynced, on the destination's filesystem, a temporary name) that the store renames into
# place}. After a failure, the caller removes those still there (import_outputs does).
Prepare = Callable[[str, Mapping, dict, str], Mapping[str, np.ndarray | Path]]


def _place(target: Path, arr: np.ndarray | Path) -> None:
    """Put a stored array at target (which must not exist): write it, or rename the file
    that prepare wrote."""
    if isinstance(arr, Path):
        try:
            os.rename(arr, target)
        except OSError as exc:
            raise destination_error(target, exc) from exc
    else:
        write_npy(target, arr)


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
    prepare: Prepare = prepare_split,
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
    is not a run). prepare (default format.prepare_split) checks each split's arrays and
    returns what is stored (see Prepare).
    """
    start = time.perf_counter()
    run_dir = Path(run_dir)
    if not os.path.lexists(run_dir):  # (lexists: a too-long name is an error, not a crash)
        check_run_name(run_dir.name)
    if splits is None:
        splits, meta = meta_or_splits, {}
    else:
        try:  # a private copy, and proof that it is JSON
            meta = json.loads(json.dumps(dict(meta_or_splits), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise RunFormatError(f"meta is not JSON-serialisable ({exc})") from None
    if not isinstance(splits, Mapping) or not splits:
        raise RunFormatError("no splits to save")
    _check_replaceable(run_dir, overwrite)
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
    _merge_fields(meta, fields, extra_meta)
    _complete_meta(meta, splits, run_dir.name)
    files = _extra_files(extra_files)
    prepared = {}
    for split, arrays in splits.items():
        if not isinstance(arrays, Mapping):
            raise RunFormatError(f"split {split!r}: expected a mapping of arrays")
        prepared[split] = prepare(split, arrays, meta, f"split '{split}'")
        meta["splits"][split] = int(prepared[split]["labels"].shape[0])
    meta["created"] = dict(meta.get("created") or make_created())
    if meta["created"].get("wall_time_s") is None:
        meta["created"]["wall_time_s"] = round(time.perf_counter() - start, 3)
    validate_meta(meta, "meta to save")
    return _install_run(run_dir, prepared, files, meta, overwrite)


def _merge_fields(meta: dict, fields: Mapping, extra_meta: Mapping | None) -> None:
    """save_run's keyword fields into meta (a field given twice must agree)."""
    for key, value in fields.items():
        if value is None:
            continue
        if key in meta and meta[key] != value:
            raise RunFormatError(f"'{key}' given twice with different values")
        meta[key] = value
    for key in ("schema", "splits"):
        if key in meta and key in (extra_meta or {}):
            raise RunFormatError(f"'{key}' is derived from the arrays and cannot be set")
    meta.pop("files", None)  # a new run's files always carry their split's name


def _complete_meta(meta: dict, splits: Mapping, name: str) -> None:
    """schema, T_max and classes from the first split's outputs, and the defaults."""
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
    meta.setdefault("name", name)
    meta.setdefault("dataset", "unknown")
    meta.setdefault("model", "unknown")
    meta.setdefault("storage", "full")
    storage_of(meta).normalise(meta, T, K)  # (an unknown storage: a one-line error)


def _extra_files(extra_files: Mapping[str, Path | str] | None) -> dict[str, Path]:
    """The files to copy into a new run, their names and sources checked."""
    files = {}
    for name, source in (extra_files or {}).items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", name) or name.endswith(".npy"):
            raise RunFormatError(f"extra file name {name!r} is not allowed")
        if name == META_FILE or not is_regular_file(source):
            raise RunFormatError(f"extra file {name!r}: {source} is not a file")
        files[name] = Path(source)
    return files


def _install_run(run_dir: Path, prepared: dict, files: dict, meta: dict, overwrite: bool) -> Run:
    """Build the run in a temporary folder beside run_dir and rename it into place, with the
    run's lock held; an old run (overwrite) is moved aside first and put back on failure.
    Returns the run as loaded before the lock is released."""
    parent = run_dir.parent
    with run_lock(run_dir):
        remove_stale_temps(parent)
        # Checked again with the lock held: another writer may have created the run since.
        _check_replaceable(run_dir, overwrite)
        if not run_dir.exists():
            check_run_name(run_dir.name)
        tmp = temp_name(run_dir)
        trash = None
        try:
            tmp.mkdir()
            for split, stored in prepared.items():
                for role, arr in stored.items():
                    _place(tmp / f"{split}.{role}.npy", arr)
            for name, source in files.items():
                _copy_fsynced(source, tmp / name)
            write_json_atomic(tmp / META_FILE, meta)
            fsync_dir(tmp)
            if run_dir.exists():
                trash = temp_name(run_dir, tag=OLD_TAG)
                os.rename(run_dir, trash)
            os.rename(tmp, run_dir)
            fsync_dir(parent)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if trash is not None and not run_dir.exists():
                os.rename(trash, run_dir)  # put the old run back
                trash = None
            if isinstance(exc, OSError) and not isinstance(exc, DynconfError):
                raise destination_error(run_dir, exc) from exc
            raise
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        return load_run(run_dir, check_values=False)


def _check_replaceable(run_dir: Path, overwrite: bool) -> None:
    """A run may be written to run_dir: it is free, or overwrite is set and it holds a run
    (or an empty folder). Never replace anything else."""
    if not os.path.lexists(run_dir):
        return
    if not overwrite:
        raise RunFormatError(f"{run_dir}: already exists (choose another name or overwrite)")
    if run_dir.is_symlink() or not run_dir.is_dir():
        raise RunFormatError(f"{run_dir}: exists and is not a dynconf run; refusing to replace it")
    if not (is_run_dir(run_dir) or not any(run_dir.iterdir())):
        raise RunFormatError(f"{run_dir}: exists and is not a dynconf run; refusing to replace it")


def _copy_fsynced(source: Path, target: Path) -> None:
    with open_regular(source, "file") as src, open(target, "xb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())


def add_split(
    run_dir: Path | str,
    split: str,
    outputs: np.ndarray,
    labels: np.ndarray,
    spikes: np.ndarray | None = None,
    ids: np.ndarray | None = None,
    synops: np.ndarray | None = None,
    *,
    overwrite: bool = False,
    prepare: Prepare = prepare_split,
) -> Run:
    """Add a split to an existing run (same T_max and classes; stored like the run's others).

    Atomic, and so is replacing a split (overwrite=True): the new arrays are written under
    temporary names, fsynced and renamed to a stem that meta.json does not reference yet
    (the split's name, or `<split>~<hex>` when that name holds the current files); then
    meta.json is switched atomically to the new stem; only then are the old files removed.
    At every instant the run loads with the old split or with the new one, whatever kills
    the writer. Holds the run's lock throughout. prepare: as for save_run.
    """
    run_dir = Path(run_dir)
    with run_lock(run_dir):
        remove_stale_temps(run_dir)
        run = load_run(run_dir, check_values=False)
        meta = json.loads(json.dumps(run.meta))  # private deep copy
        arrays = {"outputs": outputs, "labels": labels, "spikes": spikes, "ids": ids}
        if synops is not None:  # (a format without the role refuses it as unexpected)
            arrays["synops"] = synops
        shape = np.shape(outputs)
        if len(shape) == 3 and (shape[0] != run.T_max or shape[2] != run.K):
            raise RunFormatError(
                f"{run_dir}: outputs have T={shape[0]}, K={shape[2]} but the run has "
                f"T_max={run.T_max}, K={run.K}"
            )
        stored = prepare(split, arrays, meta, f"split '{split}'")
        replacing = split in meta["splits"]
        if replacing and not overwrite:
            raise RunFormatError(f"{run_dir}: split '{split}' already exists")
        old_stem = split_stem(meta, split) if replacing else None
        new_stem = split if old_stem != split else f"{split}~{uuid.uuid4().hex[:8]}"
        # Files of this split that meta.json does not reference (leftovers of an interrupted
        # write) are removed so they cannot be mistaken for data or block the new names.
        _remove_split_files(run_dir, split, keep=old_stem)
        written = []  # (temporary path, final path)
        try:
            for role, arr in stored.items():
                final = run_dir / f"{new_stem}.{role}.npy"
                tmp = arr if isinstance(arr, Path) else temp_name(final)
                written.append((tmp, final))
                if not isinstance(arr, Path):
                    write_npy(tmp, arr)
            for tmp, final in written:
                os.replace(tmp, final)
            fsync_dir(run_dir)
            meta["splits"][split] = int(stored["labels"].shape[0])
            stems = {s: stem for s, stem in (meta.get("files") or {}).items() if s != split}
            if new_stem != split:
                stems[split] = new_stem
            if stems:
                meta["files"] = stems
            else:
                meta.pop("files", None)
            meta.setdefault("history", []).append(
                {("replaced_split" if replacing else "added_split"): split, **make_created()}
            )
            validate_meta(meta, "meta to save")
            write_json_atomic(run_dir / META_FILE, meta)  # the switch: old split -> new split
        except BaseException as exc:
            for tmp, final in written:
                for path in (tmp, final):
                    with contextlib.suppress(OSError):
                        path.unlink(missing_ok=True)
            if isinstance(exc, OSError) and not isinstance(exc, DynconfError):
                raise destination_error(run_dir, exc) from exc
            raise
        _remove_split_files(run_dir, split, keep=new_stem)  # the replaced split's files
        fsync_dir(run_dir)
        return load_run(run_dir, check_values=False)


_SPLIT_FILE = re.compile(rf"(?P<stem>[^.]+)\.(?:{'|'.join(ARRAY_SUFFIXES)})\.npy\Z")


def _remove_split_files(run_dir: Path, split: str, keep: str | None) -> None:
    """Remove the array files of ``split`` (stem `split` or `split~hex`) except stem keep."""
    try:
        names = [p.name for p in run_dir.iterdir()]
    except OSError:
        return
    for name in names:
        match = _SPLIT_FILE.match(name)
        if match is None or match["stem"] == keep:
            continue
        stem = match["stem"]
        owner = FILE_STEM.match(stem)
        if stem == split or (owner is not None and owner["split"] == split):
            with contextlib.suppress(FileNotFoundError):
                (run_dir / name).unlink()
