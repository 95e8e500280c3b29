"""Provenance: which code made a run or a checkpoint, when, and with what command.

One ``code_version`` for everything dynconf writes: the package version plus the first 12
hex digits of the checkout's git commit, read from ``.git`` directly (no subprocess, so it
works where git is not installed), or the bare version outside a checkout.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

from dynconf.core.safeopen import read_regular_text
from dynconf.errors import DynconfError

COMMIT_DIGITS = 12
GIT_FILE_MAX_BYTES = 16 << 20  # HEAD, a ref, packed-refs


def package_version() -> str:
    """dynconf's version. The package is imported before any of its modules, so it is in
    sys.modules here; read from there, the package (whose lazy names import most modules)
    is not imported back from below."""
    return sys.modules["dynconf"].__version__


def _git_text(path: Path) -> str:
    return read_regular_text(path, "git file", GIT_FILE_MAX_BYTES)


def code_version() -> str:
    """The package version, plus "+g" and the checkout's commit when there is one."""
    __version__ = package_version()
    git = Path(__file__).resolve().parents[2] / ".git"
    try:
        head = _git_text(git / "HEAD").strip()
        if head.startswith("ref: "):
            ref = head[5:]
            ref_file = git / ref
            if ref_file.is_file():
                head = _git_text(ref_file).strip()
            else:
                packed = _git_text(git / "packed-refs").splitlines()
                head = next(line.split()[0] for line in packed if line.endswith(" " + ref))
        if len(head) < COMMIT_DIGITS or any(c not in "0123456789abcdef" for c in head):
            return __version__
        return f"{__version__}+g{head[:COMMIT_DIGITS]}"
    except (DynconfError, OSError, StopIteration, IndexError):
        return __version__


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def make_created(
    command: str | None = None, seed: int | None = None, wall_time_s: float | None = None
) -> dict:
    """The 'created' block of meta.json: how a run was made."""
    return {
        "command": command if command is not None else " ".join(sys.argv),
        "seed": seed,
        "code_version": code_version(),
        "date": now_utc(),
        "wall_time_s": wall_time_s,
    }
