"""Run directories on disk: load and list them, write new runs and splits atomically.

Writes go to temporary names beside the target (dynconf/core/atomic.py), are fsynced and then
renamed into place, so a crash or a kill never leaves a half-written run that loads as valid.
Every write holds the run's lock (dynconf/core/locking.py), so concurrent writers serialise,
and first removes what earlier killed writers left behind (atomic.remove_stale_temps).
The default folders (`default_runs_root`, `default_work_root`) are defined here once for the
CLI, the app and the library.

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
    MAX_META_BYTES,
    META_FILE,
    SCHEMA,
    STORAGES,
    TOPK_ROLES,
    Run,
    RunListing,
    SplitData,
    _is_int,
    check_run_name,
    check_split_arrays,
    prepare_split,
    split_files,
    split_stem,
    validate_meta,
)
from dynconf.core.locking import run_lock
from dynconf.core.npyio import is_regular_file, open_regular, read_npy
from dynconf.core.provenance import make_created
from dynconf.errors import DynconfError, RunFormatError

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
    if not os.path.lexists(meta_path):
        raise RunFormatError(f"{meta_path}: missing (not a dynconf run directory?)")
    return validate_meta(_parse_meta_file(meta_path), str(meta_path))


def _parse_meta_file(meta_path: Path):
    """The JSON content of a meta.json (only a regular file is opened, never a FIFO)."""
    with open_regular(meta_path, "meta.json") as f:
        if os.fstat(f.fileno()).st_size > MAX_META_BYTES:
            raise RunFormatError(f"{meta_path}: larger than {MAX_META_BYTES >> 20} MiB")
        data = f.read(MAX_META_BYTES + 1)
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise RunFormatError(f"{meta_path}: not valid JSON ({exc})") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not allowed")


def load_run(run_dir: Path | str, check_values: bool = True, mmap: bool = True) -> Run:
    """Load and validate a run directory. Raises RunFormatError naming the file and problem.

    check_values=False skips the full scans (finite values and sums, label range); shapes,
    dtypes and meta are always checked. Use it only where a run was just validated.
    mmap=False reads every array into memory with plain reads instead of memory-mapping it:
    a long-lived reader (the app) then cannot be killed by SIGBUS when another process
    truncates or rewrites a file it has open.
    """
    run_dir = Path(run_dir)
    meta = _read_meta(run_dir)
    T, K = meta["T_max"], len(meta["classes"])
    storage = meta["storage"]
    roles = ["labels", "outputs"] if storage == "full" else ["labels", *TOPK_ROLES]
    splits = {}
    for split, n in meta["splits"].items():
        files = split_files(run_dir, meta, split)
        arrays = {role: read_npy(files[role], mmap=mmap) for role in roles}
        for role in ("spikes", "synops", "ids"):  # the optional arrays (format.OPTIONAL_ROLES)
            present = os.path.lexists(files[role])
            arrays[role] = read_npy(files[role], mmap=mmap) if present else None
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


def run_stamp(run_dir: Path | str) -> tuple:
    """What changes whenever a run's content may have changed: (size, mtime_ns) of the
    folder, of meta.json and of every array file meta.json names, in a fixed order.

    For cache keys (the app): a split replaced, a file rewritten or truncated, all change it.
    Never raises; a missing or unreadable file contributes None.
    """
    run_dir = Path(run_dir)

    def stat_of(path: Path):
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None
        return (st.st_size, st.st_mtime_ns, st.st_ino)

    stamp = [("dir", stat_of(run_dir)), (META_FILE, stat_of(run_dir / META_FILE))]
    try:
        meta = _read_meta(run_dir)
    except (RunFormatError, OSError):
        return tuple(stamp)
    for split in meta["splits"]:
        for role, path in split_files(run_dir, meta, split).items():
            stamp.append((f"{split}.{role}", stat_of(path)))
    return tuple(stamp)


def list_runs(root: Path | str | None = None, check_values: bool = True) -> list[RunListing]:
    """Every directory under root (default: default_runs_root(); hidden ones, temporary ones
    and lock files skipped), valid or not, by name."""
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
            listings.append(RunListing(path.name, path, False, str(exc), damaged_meta(path)))
    return listings


def damaged_meta(run_dir: Path | str) -> dict | None:
    """What a run's meta.json says without validating it (to describe a damaged run): the
    object if it is a regular, small, parseable JSON file, else None. Never blocks."""
    try:
        meta = _parse_meta_file(Path(run_dir) / META_FILE)
    except (RunFormatError, OSError):
        return None
    return meta if isinstance(meta, dict) else None


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


class NpyWriter:
    """A C-order .npy file of a known shape and dtype written in pieces at given positions,
    with plain positioned writes (a memory map's written pages would count in the writer's
    resident memory until the kernel writes them back): the file is created with its header
    (exactly np.save's), written with write(start, values) and finished with close(), which
    fsyncs it. abort() removes it. Failed writes raise DestinationError naming ``path``."""

    def __init__(self, path: Path | str, shape, dtype):
        self.path, self.dtype = Path(path), np.dtype(dtype)
        self.shape = tuple(int(s) for s in shape)
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": self.shape,
        }
        try:
            self.file = open(self.path, "xb")  # noqa: SIM115 (closed by close/abort)
        except OSError as exc:
            raise destination_error(self.path, exc) from exc
        try:
            np.lib.format.write_array_header_1_0(self.file, header)
            self.file.flush()
            self.offset = self.file.tell()
            size = self.offset + int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
            os.ftruncate(self.file.fileno(), size)  # a sparse file of the final size
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise destination_error(self.path, exc) from exc
            raise

    def write(self, start: int, values: np.ndarray) -> None:
        """Write ``values`` (any shape, converted to the file's dtype) as the flattened
        elements start, start + 1, ... of the array."""
        data = np.ascontiguousarray(values, dtype=self.dtype)
        view, done = memoryview(data.reshape(-1).view(np.uint8)), 0
        position = self.offset + int(start) * self.dtype.itemsize
        try:
            while done < len(view):
                done += os.pwritev(self.file.fileno(), [view[done:]], position + done)
        except OSError as exc:
            self.abort()
            raise destination_error(self.path, exc) from exc

    def close(self) -> Path:
        """Finish the file (fsynced); returns its path."""
        try:
            os.fsync(self.file.fileno())
            self.file.close()
        except OSError as exc:
            self.abort()
            raise destination_error(self.path, exc) from exc
        return self.path

    def abort(self) -> None:
        """Close and remove the file (never raises)."""
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


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
        if name == META_FILE or not is_regular_file(source):
            raise RunFormatError(f"extra file {name!r}: {source} is not a file")
        files[name] = Path(source)
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


def disk_bytes(run: Run) -> dict[str, int]:
    """Bytes on disk per split (all of its files), for `info`."""
    sizes = {}
    for split in run.splits:
        sizes[split] = sum(
            p.stat().st_size for p in split_files(run.path, run.meta, split).values() if p.exists()
        )
    return sizes
