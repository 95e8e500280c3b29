"""Reading run directories: load, list, stamp and describe them (store.py re-exports these).

A reader never sees half a write: writers rename whole files into place and switch
meta.json last (store.py). A reader can still read meta.json just before a split is
replaced and then find the files it names removed; load_run then reads meta.json again and
retries, so a reader racing any number of overwrites sees the old split or the new one,
never "file is missing". Once an array is open, removing its file does not disturb it.

Every file is opened through the regular-file check (safeopen), so a FIFO in a run never
blocks a reader; meta.json is size-, depth- and NaN-checked JSON (safeopen.read_json_file).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from dynconf.core.format import (
    MAX_META_BYTES,
    META_FILE,
    Run,
    RunListing,
    SplitData,
    check_split_arrays,
    split_files,
    validate_meta,
)
from dynconf.core.npyio import read_npy
from dynconf.core.roots import default_runs_root
from dynconf.core.safeopen import read_json_file
from dynconf.core.storage import storage_of
from dynconf.errors import RunFormatError

# How often load_run reads meta.json again when a file it named was replaced meanwhile.
RELOAD_TRIES = 20
RELOAD_PAUSE_S = 0.01


def is_run_dir(path: Path) -> bool:
    return (path / META_FILE).is_file()


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
    return read_json_file(meta_path, "meta.json", MAX_META_BYTES)


def _meta_identity(run_dir: Path):
    """What changes when meta.json is replaced (an atomic rename gives a new inode)."""
    try:
        st = os.stat(run_dir / META_FILE)
    except (OSError, ValueError):
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def load_run(run_dir: Path | str, check_values: bool = True, mmap: bool = True) -> Run:
    """Load and validate a run directory. Raises RunFormatError naming the file and problem.

    check_values=False skips the full scans (finite values and sums, label range); shapes,
    dtypes and meta are always checked. Use it only where a run was just validated.
    mmap=False reads every array into memory with plain reads instead of memory-mapping it:
    a long-lived reader (the app) then cannot be killed by SIGBUS when another process
    truncates or rewrites a file it has open. A split replaced while it is read is read
    again from the new meta.json (see the module docstring).
    """
    run_dir = Path(run_dir)
    for attempt in range(RELOAD_TRIES):
        before = _meta_identity(run_dir)
        meta = _read_meta(run_dir)
        try:
            splits = _load_splits(run_dir, meta, check_values, mmap)
            return Run(path=run_dir, meta=meta, splits=splits)
        except RunFormatError:
            if attempt + 1 == RELOAD_TRIES or _meta_identity(run_dir) == before:
                raise  # the run did not change under us: the damage is real
            time.sleep(RELOAD_PAUSE_S)
    raise AssertionError("unreachable")


def _load_splits(run_dir: Path, meta: dict, check_values: bool, mmap: bool) -> dict:
    T, K = meta["T_max"], len(meta["classes"])
    roles = ["labels", *storage_of(meta).roles]
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
    return splits


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


def disk_bytes(run: Run) -> dict[str, int]:
    """Bytes on disk per split (all of its files), for `info`."""
    sizes = {}
    for split in run.splits:
        sizes[split] = sum(
            p.stat().st_size for p in split_files(run.path, run.meta, split).values() if p.exists()
        )
    return sizes
