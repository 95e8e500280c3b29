"""One writer at a time per run: an advisory lock file beside each run directory.

Two processes writing the same run (two imports creating it, two imports adding splits, an
import racing a simulation's final write) would otherwise each build their version from what
they read before the other finished, and the later rename would silently drop the other's
split. Every writer of a run (store.save_run, store.add_split, importing.import_outputs,
engine/simulate.py's final write) holds ``run_lock(run_dir)`` while it decides and writes;
the second one waits up to LOCK_TIMEOUT_S (environment DYNCONF_LOCK_TIMEOUT overrides) and
then fails with a clear message, so writers serialise and nothing is lost.

The lock is fcntl.flock on `<parent>/.<name>.lock`: hidden, so no listing shows it; released by
the kernel when its holder dies (a kill -9 never leaves a run locked); never deleted, because
deleting a lock file while another process waits on it would let a third one lock a new file
of the same name. Readers take no lock: writes are atomic renames, so a reader sees the old
or the new state. The lock is re-entrant within a process (import_outputs holds it around
save_run / add_split, which take it again), and threads of one process serialise too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from dynconf.core.atomic import destination_error
from dynconf.errors import DynconfError

LOCK_TIMEOUT_S = 60.0
POLL_S = 0.02


class RunLockedError(DynconfError):
    """Another process kept a run locked for longer than the lock timeout."""


def lock_path(run_dir: Path | str) -> Path:
    run_dir = Path(run_dir)
    return run_dir.with_name(f".{run_dir.name}.lock")


def lock_timeout() -> float:
    try:
        return float(os.environ.get("DYNCONF_LOCK_TIMEOUT", LOCK_TIMEOUT_S))
    except ValueError:
        return LOCK_TIMEOUT_S


class _Held:
    """A lock this process holds: the open file, its depth and the owning thread."""

    def __init__(self, fd: int, owner: int):
        self.fd, self.owner, self.depth = fd, owner, 1


_held: dict[str, _Held] = {}
_guard = threading.Condition()


@contextlib.contextmanager
def run_lock(run_dir: Path | str, timeout: float | None = None) -> Iterator[Path]:
    """Hold the write lock of ``run_dir`` (its parent folder is created if missing)."""
    run_dir = Path(run_dir)
    path = lock_path(run_dir.absolute())
    key = str(path)
    timeout = lock_timeout() if timeout is None else timeout
    deadline = time.monotonic() + timeout
    me = threading.get_ident()
    with _guard:
        while key in _held and _held[key].owner != me:  # another thread of this process
            if not _guard.wait(max(0.0, deadline - time.monotonic())):
                raise _locked(run_dir, timeout)
        if key in _held:
            _held[key].depth += 1
            reentered = True
        else:
            reentered = False
    if not reentered:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:  # e.g. the parent is a file, or read-only
            raise destination_error(run_dir, exc) from exc
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise _locked(run_dir, timeout) from None
                    time.sleep(POLL_S)
        except BaseException:
            os.close(fd)
            raise
        with _guard:
            _held[key] = _Held(fd, me)
    try:
        yield path
    finally:
        with _guard:
            held = _held[key]
            held.depth -= 1
            if held.depth == 0:
                del _held[key]
                os.close(held.fd)  # closing the descriptor releases the flock
                _guard.notify_all()


def _locked(run_dir: Path, timeout: float) -> RunLockedError:
    return RunLockedError(
        f"{run_dir}: another process is writing this run (waited {timeout:g} s); "
        "try again when it has finished"
    )
