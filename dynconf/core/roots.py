"""Where runs live: the folders the CLI, the app and the library look in for runs.

Nothing here depends on where dynconf itself is installed except the bundled demo runs
(``dynconf/demo_runs/``, package data), so a wheel installed anywhere and a clone behave the
same from any directory:

- ``DYNCONF_RUNS``: folders of runs, several joined by ``os.pathsep`` (``:`` on Linux). When
  it is unset: the current directory's ``runs/`` and ``cached_runs/``, then the bundled demo
  runs. ``dynconf app --runs DIR`` puts DIR first in that list.
- ``DYNCONF_WORK``: where a user's imports and simulations are written (and renamed or
  deleted by the app), else the current directory's ``work_runs/``.

A bare run name (``digits``) is looked up in those folders in that order, so the first
folder holding a run of that name wins.
"""

from __future__ import annotations

import os
from pathlib import Path

RUNS_ENV = "DYNCONF_RUNS"
WORK_ENV = "DYNCONF_WORK"
DEMO_RUNS = ("digits", "noisy_digits")  # bundled with the package


def bundled_runs_root() -> Path:
    """The demo runs installed with the package (``dynconf/demo_runs``)."""
    return Path(__file__).resolve().parents[1] / "demo_runs"


def split_paths(value: str | None) -> list[Path]:
    """``DYNCONF_RUNS``-style text: paths joined by ``os.pathsep``, empty parts dropped."""
    return [Path(part) for part in (value or "").split(os.pathsep) if part.strip()]


def default_run_roots() -> list[Path]:
    """The folders searched when ``DYNCONF_RUNS`` is unset, in order."""
    cwd = Path.cwd()
    return [cwd / "runs", cwd / "cached_runs", bundled_runs_root()]


def runs_roots() -> list[Path]:
    """Every folder runs are listed from (not the work root), first wins, no repeats."""
    roots = split_paths(os.environ.get(RUNS_ENV)) or default_run_roots()
    return unique_paths(roots)


def unique_paths(paths: list[Path]) -> list[Path]:
    """``paths`` in order without repeats (two spellings of one folder count once)."""
    seen: set[str] = set()
    out = []
    for path in paths:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            out.append(Path(path))
    return out


def default_runs_root() -> Path:
    """The first folder of :func:`runs_roots` that exists (else the first one): the one
    folder a caller that takes a single root gets."""
    roots = runs_roots()
    return next((root for root in roots if root.is_dir()), roots[0])


def default_work_root() -> Path:
    """Where a user's imports and simulations go: $DYNCONF_WORK, else ./work_runs."""
    return Path(os.environ.get(WORK_ENV) or Path.cwd() / "work_runs")


def listing_roots() -> list[tuple[Path, str]]:
    """(folder, source) for every folder runs are listed from: the runs folders ("shipped";
    "demo" for the bundled ones), then the work root ("mine"), without repeats."""
    bundled = os.path.realpath(bundled_runs_root())
    out = []
    seen: set[str] = set()
    for root in runs_roots():
        real = os.path.realpath(root)
        seen.add(real)
        out.append((root, "demo" if real == bundled else "shipped"))
    work = default_work_root()
    if os.path.realpath(work) not in seen:
        out.append((work, "mine"))
    return out


def find_run(value: str | os.PathLike) -> Path:
    """A run directory from a path or a bare run name.

    An existing path is used as given; a bare name (no separator) that is not a folder here
    is looked up in :func:`runs_roots`, then the work root. Anything else comes back as
    given, so the caller's loader reports it as missing.
    """
    path = Path(value)
    if path.exists() or len(path.parts) != 1:
        return path
    for root in [*runs_roots(), default_work_root()]:
        if (root / path).is_dir():
            return root / path
    return path
