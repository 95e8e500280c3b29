"""What the app computes once and keeps: run listings, loaded runs, analyses, selections.

Every cache is keyed on the run's stamp (``dynconf.core.store.run_stamp``: size and
modification time of meta.json and of every array file), so a run that is replaced, imported,
finishes simulating, or has a file truncated under it, is loaded and validated again on the
next rerun, without a server restart. Runs are read into memory (``load_run(mmap=False)``):
a file changed after loading can then never reach a memory-mapped read (truncating a mapped
file makes the next read of it a SIGBUS that kills the whole server).

One ``Run`` per run directory and stamp, and one view (dynconf.core.view.View, also named
``Analysis`` here) per run + split + decoder + kappa, shared by every page and session: moving
the threshold recomputes only that threshold's own policy result; the threshold chosen on
calibration and the fitted exit policies are kept on the evaluation split's view. They live in
one ``MemoryCache`` bounded by the bytes they hold (``DYNCONF_CACHE_MB``, default 512), least
recently used first out, whose evictions are handed back to the system at once. That cache
is the only strong holder: what a session keeps between reruns (its state, the download
builders of its last rerun, both kept by Streamlit for minutes after the tab closed) holds a
run or view only through dynconf.app.state.Context, weakly, so the server's memory is the
budget plus a constant however many sessions come and go (benchmarks/bench_app_memory.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from dynconf import inputs
from dynconf.app.memcache import MemoryCache, tune_allocator
from dynconf.core.decoders import check_kappa
from dynconf.core.roots import listing_roots
from dynconf.core.store import damaged_meta, load_run, run_stamp
from dynconf.core.view import View
from dynconf.errors import DynconfError

tune_allocator()  # large arrays unmapped when freed, few arenas (dynconf/app/memcache.py)
CACHE = MemoryCache()  # runs and their views, bounded by DYNCONF_CACHE_MB (dynconf/app/memcache.py)


def settle() -> None:
    """After each script run: measure what grew and evict down to the memory budget."""
    CACHE.settle()


# --------------------------------------------------------------------------- stamps


def stamp(path: Path | str) -> tuple:
    """The run's stamp (every file that loading reads: size and mtime); () when unreadable."""
    try:
        return tuple(run_stamp(Path(path)))
    except (OSError, DynconfError, ValueError):
        return ()


def _run_dirs(root: Path) -> list[Path]:
    """Visible subdirectories (job folder, uploads and atomic-write temp dirs are hidden)."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return []
    return [Path(e.path) for e in entries if not e.name.startswith(".") and _is_dir(e)]


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows symlinks; never opens anything
    except OSError:
        return False


def _root_stamp(root: Path) -> tuple:
    return tuple((path.name, stamp(path)) for path in _run_dirs(root))


# --------------------------------------------------------------------------- run listing


@dataclass(frozen=True)
class Listing:
    """One run directory as the app lists it (``error`` set when it is damaged)."""

    name: str
    path: str
    ok: bool
    error: str | None
    meta: dict
    source: str  # "shipped", "demo" (bundled), "mine" (the work root) or "opened" (by path)


def _short_error(exc: BaseException, root: Path) -> str:
    """The library's message with the runs root cut off ("broken/test.outputs.npy: ...")."""
    return str(exc).replace(f"{root}{os.sep}", "")


@st.cache_data(show_spinner="Checking runs...", max_entries=8)
def _list_root(root: str, root_stamp: tuple, source: str) -> list[Listing]:
    out = []
    for path in _run_dirs(Path(root)):
        try:
            run = _get_run(str(path), stamp(path), cold=True)
        except DynconfError as exc:
            out.append(
                Listing(
                    path.name,
                    str(path),
                    False,
                    _short_error(exc, Path(root)),
                    damaged_meta(path) or {},
                    source,
                )
            )
        else:
            out.append(Listing(path.name, str(path), True, None, dict(run.meta), source))
    return out


OPENED_KEY = "_opened_runs"  # run folders opened by path on the Runs page, per browser tab


def run_listing() -> list[Listing]:
    """Runs opened by path in this browser tab, then every runs folder in order, then the user's
    (dynconf.core.roots.listing_roots); a name listed earlier hides a later run of that name."""
    seen: set[str] = set()
    out = [_opened_listing(Path(p)) for p in st.session_state.get(OPENED_KEY, ())]
    seen.update(item.name for item in out)
    for root, source in listing_roots():
        if not root.is_dir():
            continue
        for item in _list_root(str(root), _root_stamp(root), source):
            if item.name not in seen:
                seen.add(item.name)
                out.append(item)
    return out


def _opened_listing(path: Path) -> Listing:
    """One run folder opened by path, listed like a folder's runs (source "opened")."""
    try:
        run = _get_run(str(path), stamp(path), cold=True)
    except DynconfError as exc:
        meta = damaged_meta(path) or {}
        return Listing(path.name, str(path), False, _short_error(exc, path.parent), meta, "opened")
    return Listing(path.name, str(path), True, None, dict(run.meta), "opened")


# --------------------------------------------------------------------------- runs & analyses


def _get_run(path: str, run_stamp_: tuple, cold: bool = False):
    # A run that changed on disk: its old copy and everything computed from it go now.
    CACHE.drop_where(lambda group: group[0] == path and group[1] != run_stamp_)
    return CACHE.get(
        ("run", path, run_stamp_),
        lambda: load_run(path, check_values=True, mmap=False),
        group=(path, run_stamp_),
        anchor=True,
        cold=cold,
    )


def get_run(path: str | Path):
    """The run at ``path``, loaded into memory and validated once per stamp.

    Raises the library's RunFormatError (a DynconfError) when it is damaged.
    """
    return _get_run(str(path), stamp(path))


Analysis = View  # the app's older name for the one view (dynconf.core.view.View)


def _in_script_run() -> bool:
    """True on a script run's thread (a deferred download builds on another: no spinner)."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    return get_script_run_ctx(suppress_warning=True) is not None


def _with_spinner(text: str, fn):
    def build():
        if not _in_script_run():
            return fn()
        with st.spinner(text):
            return fn()

    return build


def _analysis(path: str, run_stamp_: tuple, split: str, decoder: str, kappa) -> View:
    run = _get_run(path, run_stamp_)
    # kappa None means T_max: one view whether the box is empty or says T_max.
    key_kappa = check_kappa(decoder, kappa, run.T_max)

    def build() -> View:
        view = View.shared(  # its kappa follows from the key, not from the first caller
            run,
            split,
            decoder,
            kappa,
            siblings=lambda other: _analysis(path, run_stamp_, other, decoder, kappa),
        )
        view.decoded  # noqa: B018 - decode now, under the spinner, so a bad one fails here
        return view

    return CACHE.get(
        ("analysis", path, run_stamp_, split, decoder, key_kappa),
        _with_spinner("Decoding confidences...", build),
        group=(path, run_stamp_),
        measure=View.nbytes,
    )


def get_analysis(path: str | Path, split: str, decoder: str, kappa: float | None) -> View:
    """The shared view of one run + split + decoder + kappa (cached, bounded in bytes)."""
    return _analysis(str(path), stamp(path), split, decoder, kappa)


def _held(view: View, key: tuple) -> bool:
    return key in view._memo


def _spinning(text: str, fn):
    if not _in_script_run():
        return fn()
    with st.spinner(text):
        return fn()


def get_selection(path, cal: str, split: str, decoder: str, kappa, tolerance: float) -> Any:
    """The threshold chosen on ``cal`` and reported on ``split`` (kept on the split's view)."""
    view = get_analysis(path, split, decoder, kappa)
    get_analysis(path, cal, decoder, kappa)  # decoded first, under its own spinner
    if _held(view, ("selection", cal, float(tolerance))):
        return view.selection(cal, tolerance)
    return _spinning(
        "Choosing a threshold on the calibration split...",
        lambda: view.selection(cal, tolerance),
    )


def get_policy_comparison(
    path, cal: str, split: str, decoder: str, kappa, tolerance: float, auto_kappa: bool = False
):
    """Every registered policy fitted on ``cal`` and reported on ``split`` (kept on the
    split's view); with ``auto_kappa`` the decoder's kappa is chosen on calibration too."""
    view = get_analysis(path, split, decoder, kappa)
    get_analysis(path, cal, decoder, kappa)
    return _spinning(
        "Fitting every exit policy on the calibration split...",
        lambda: view.policy_comparison(cal, tolerance, auto_kappa),
    )


def get_policy_fronts(
    path, cal: str, split: str, decoder: str, kappa, tolerance: float, auto_kappa: bool = False
):
    """Each policy of get_policy_comparison swept over its calibration candidates on
    ``split``, with its Pareto front (dynconf.core.policies.comparison.policy_fronts)."""
    from dynconf.report.front_cache import fronts_of

    view = get_analysis(path, split, decoder, kappa)
    comparison = get_policy_comparison(path, cal, split, decoder, kappa, tolerance, auto_kappa)
    # Read back from the run's analysis cache when a page or an export swept them before.
    return _spinning(
        "Sweeping every exit policy's candidates on the evaluation split...",
        lambda: fronts_of(view, cal, tolerance, comparison, auto_kappa),
    )


# --------------------------------------------------------------------------- input images


@st.cache_data(show_spinner=False, max_entries=64)
def _sample_image(meta: dict, split: str, sample_id: int | None, data_root: str | None):
    return inputs.sample_image(meta, split, sample_id, data_root)


def sample_image(run: Any, split: str, sample_id: int | None) -> tuple[np.ndarray | None, str]:
    """The input image behind a sample id (see dynconf/inputs.py), for the Samples page."""
    root = inputs.default_data_root()
    return _sample_image(run.meta, split, sample_id, None if root is None else str(root))
