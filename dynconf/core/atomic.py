"""Atomic file writes and the cleanup of what interrupted writes leave: the one helper every
writer in dynconf uses.

A reader (another process, the app, a resumed command) must see a file as the old one or
the new one, never half of it: each write goes to a hidden temporary name beside the target
(`.dynconf-tmp-<pid>-<random>-<name>`, so it is on the same filesystem and ignored by listings
and git), is flushed and fsynced, renamed over the target with os.replace (atomic on POSIX),
and the directory is fsynced so the rename itself survives a crash. A failed write (full
disk, exception in the writer) removes its temporary file and leaves the target untouched.

A write killed with SIGKILL cannot clean up after itself, so its temporary files and folders
stay behind; the writer's pid is part of every temporary name, and the next write to that
folder removes those whose owner is dead or that are older than STALE_AFTER_S
(remove_stale_temps). A failed write raises DestinationError ("cannot write PATH: reason"),
a DynconfError, so commands report a full or read-only destination as one line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from dynconf.errors import DataError, DynconfError

TMP_PREFIX = ".dynconf-tmp-"  # ignored by list_runs and by .gitignore
# A temporary name: prefix, owner pid, 12 random hex digits, then the target's tag + name.
TMP_NAME = re.compile(r"\.dynconf-tmp-(\d{1,10})-[0-9a-f]{12}-(.*)\Z", re.S)
OLD_TAG = "old-"  # a run moved aside while its replacement is renamed in (store.save_run)
# Temporary names whose owner cannot be told (older dynconf wrote no pid), or whose owner
# looks alive (its pid may have been reused), are removed once they are this old.
STALE_AFTER_S = 24 * 3600.0


class DestinationError(DynconfError, OSError):
    """A file or folder could not be written (full disk, read-only or missing destination).

    Also an OSError, so callers that already handle failed writes as OSError still do."""


def target_path(path: Path | str) -> Path:
    """The path a user asked for, behind any temporary name in ``path``: each
    `.dynconf-tmp-<pid>-<hex>-NAME` part becomes NAME (the file or run being written)."""
    parts = []
    for part in Path(path).parts:
        match = TMP_NAME.match(part)
        parts.append(match.group(2) if match is not None and match.group(2) else part)
    return Path(*parts) if parts else Path(path)


def destination_error(path: Path | str, exc: OSError) -> DestinationError:
    """The one-line message for a failed write of ``path``, naming the target the user asked
    for (target_path), never a hidden temporary name."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno is None and "requested and" in reason:  # numpy's short write: a full disk
        reason += " (no space left on device?)"
    return DestinationError(f"cannot write {target_path(path)}: {reason}")


def temp_name(target: Path, tag: str = "") -> Path:
    """A fresh hidden name beside ``target`` (same directory, so a rename is atomic) that
    records this process's pid, so a later writer can tell a dead writer's leftovers."""
    return target.with_name(f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}-{tag}{target.name}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process (the app) may be writing it now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except (OverflowError, OSError):
        return False
    return True


def is_stale(path: Path, now: float | None = None, max_age_s: float = STALE_AFTER_S) -> bool:
    """Whether a `.dynconf-tmp-*` entry is an abandoned leftover (dead owner or too old)."""
    match = TMP_NAME.match(path.name)
    try:
        age = (time.time() if now is None else now) - path.lstat().st_mtime
    except OSError:
        return False
    if age > max_age_s:
        return True
    return match is not None and not _pid_alive(int(match.group(1)))


def remove_stale_temps(folder: Path | str, max_age_s: float = STALE_AFTER_S) -> list[str]:
    """Remove abandoned temporary files and folders in ``folder``; returns their names.

    A run that an interrupted overwrite left moved aside (`...-old-NAME`) while NAME itself is
    missing is put back instead of deleted: that is the last complete copy of the run.
    Never raises: cleaning up is a courtesy to the next reader, not part of the write.
    """
    folder = Path(folder)
    removed = []
    try:
        entries = [p for p in folder.iterdir() if p.name.startswith(TMP_PREFIX)]
    except OSError:
        return removed
    now = time.time()
    for path in entries:
        if not is_stale(path, now, max_age_s):
            continue
        match = TMP_NAME.match(path.name)
        rest = match.group(2) if match else ""
        try:
            if rest.startswith(OLD_TAG) and path.is_dir() and (path / "meta.json").is_file():
                target = folder / rest[len(OLD_TAG) :]
                if rest[len(OLD_TAG) :] and not os.path.lexists(target):
                    os.rename(path, target)
                    removed.append(path.name)
                    continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path.name)
        except OSError:
            continue
    return removed


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


def _write_fsynced(path: Path, write: Callable[[IO[bytes]], Any], shown: Path) -> None:
    """Create ``path`` (it must not exist), write and fsync it; on any failure remove it, and
    turn an OSError into a DestinationError naming ``shown`` (the file the user asked for)."""
    try:
        with open(path, "xb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException as exc:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, DynconfError):
            raise destination_error(shown, exc) from exc
        raise


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], Any]) -> Path:
    """Create or replace ``path`` with what ``write(binary_file)`` writes, atomically.

    An OSError (full disk, read-only folder, a file where a folder should be) becomes a
    DestinationError naming ``path``; the target is untouched either way.
    """
    path = Path(path)
    tmp = temp_name(path)
    _write_fsynced(tmp, write, path)
    try:
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, DynconfError):
            raise destination_error(path, exc) from exc
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
    rename is what makes them visible. An OSError becomes a DestinationError.
    """
    path = Path(path)
    _write_fsynced(path, write, path)
    return path


def new_folder_atomic(dest: Path | str, fill: Callable[[Path], Any]) -> Any:
    """Make the folder ``dest`` (which must not exist) all at once: ``fill(tmp)`` writes its
    contents into a temporary folder beside it, which is then renamed to ``dest``.

    Anything ``fill`` raises removes the temporary folder and leaves no ``dest``; an OSError
    becomes a DestinationError. Returns what ``fill`` returned.
    """
    dest = Path(dest)
    if os.path.lexists(dest):
        raise DataError(f"{dest} already exists; write into a new folder")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise destination_error(dest.parent, exc) from exc
    tmp = temp_name(dest)
    try:
        tmp.mkdir()
        result = fill(tmp)
        if os.path.lexists(dest):  # (os.rename would replace an empty folder made meanwhile)
            raise DataError(f"{dest} appeared while it was being written")
        os.rename(tmp, dest)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, DestinationError):
            raise destination_error(dest, exc) from exc
        raise
    return result


# errno values that mean "this destination cannot be written", for callers that catch OSError
WRITE_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.ENAMETOOLONG,
        errno.ENOENT,
    }
)
