"""Atomic file writes: the one helper every writer in dynconf uses.

A reader (another process, the app, a resumed command) must see a file as the old one or
the new one, never half of it: each write goes to a hidden temporary name beside the target
(`.dynconf-tmp-*`, so it is on the same filesystem and ignored by listings and git), is
flushed and fsynced, renamed over the target with os.replace (atomic on POSIX), and the
directory is fsynced so the rename itself survives a crash. A failed write (full disk,
kill, exception in the writer) removes its temporary file and leaves the target untouched.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

TMP_PREFIX = ".dynconf-tmp-"  # ignored by list_runs and by .gitignore


def temp_name(target: Path, tag: str = "") -> Path:
    """A fresh hidden name beside ``target`` (same directory, so a rename is atomic)."""
    return target.with_name(f"{TMP_PREFIX}{tag}{uuid.uuid4().hex[:12]}-{target.name}")


def fsync_dir(path: Path) -> None:
    """fsync a directory so that renames inside it are durable."""
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


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], Any]) -> Path:
    """Create or replace ``path`` with what ``write(binary_file)`` writes, atomically."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        with open(tmp, "xb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def write_bytes_atomic(path: Path | str, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


def write_json_atomic(path: Path | str, obj: Any, indent: int | None = 2) -> Path:
    """JSON (no NaN or infinity: they are not JSON) followed by a newline."""
    text = json.dumps(obj, indent=indent, allow_nan=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_new_file(path: Path | str, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write a file that must not exist yet (inside a private temporary folder), fsynced.

    Used for the many files of a run being built in a temporary directory, whose final
    rename is what makes them visible.
    """
    path = Path(path)
    try:
        with open(path, "xb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
