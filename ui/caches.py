"""What the app computes once and keeps: run listings, loaded runs, analyses, selections.

Every cache is keyed on the run's stamp (``dynconf.core.store.run_stamp``: size and
modification time of meta.json and of every array file), so a run that is replaced, imported,
finishes simulating, or has a file truncated under it, is loaded and validated again on the
next rerun, without a server restart. Runs are read into memory (``load_run(mmap=False)``):
a file changed after loading can then never reach a memory-mapped read (truncating a mapped
file makes the next read of it a SIGBUS that kills the whole server).

One ``Run`` per run directory and stamp, and one :class:`Analysis` per run + split + decoder
+ kappa, shared by every page and session: moving the threshold recomputes only that
threshold's own policy result. They live in one :class:`~ui.memcache.MemoryCache` bounded by
the bytes they hold (``DYNCONF_CACHE_MB``, default 512), least recently used first out.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from dynconf import inputs
from dynconf.core import decoders, metrics
from dynconf.core.decoders import check_kappa
from dynconf.core.policies.comparison import compare_policies, policy_fronts, split_decoder
from dynconf.core.store import (
    damaged_meta,
    default_runs_root,
    default_work_root,
    load_run,
    run_stamp,
)
from dynconf.errors import DynconfError
from ui.memcache import MemoryCache, nbytes_of

CACHE = MemoryCache()  # runs, analyses, selections, policy comparisons (see ui/memcache.py)


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
    source: str  # "shipped" or "mine"


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


def run_listing() -> list[Listing]:
    """Shipped runs first, then the user's; a name clash hides the user's copy."""
    seen: set[str] = set()
    out: list[Listing] = []
    for root, source in ((default_runs_root(), "shipped"), (default_work_root(), "mine")):
        if not root.is_dir():
            continue
        for item in _list_root(str(root), _root_stamp(root), source):
            if item.name not in seen:
                seen.add(item.name)
                out.append(item)
    return out


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


class Analysis:
    """Everything about one run + split + decoder + kappa that does not depend on C.

    Built once per combination (cached); the threshold-dependent parts are the only
    computation a threshold move triggers.
    """

    def __init__(self, run: Any, split: str, decoder: str, kappa: float | None) -> None:
        self.run, self.split_name, self.decoder, self.kappa = run, split, decoder, kappa
        self.data = run.split(split)
        self.decoded = decoders.decode(self.data, decoder=decoder, kappa=kappa)
        self._lock = threading.Lock()  # one server serves many sessions in threads
        self._memo: dict[tuple, Any] = {}

    def nbytes(self) -> int:
        """Bytes this analysis holds itself (not the run's arrays: the run is its own entry)."""
        return nbytes_of(self, skip=(self.run, self.data))

    def _get(self, key: tuple, fn):
        with self._lock:
            if key not in self._memo:
                self._memo[key] = fn()
            return self._memo[key]

    @cached_property
    def baseline(self) -> np.ndarray:
        return np.asarray(metrics.baseline_curve(self.decoded))

    @cached_property
    def sweep(self) -> Any:
        return metrics.sweep(self.decoded)

    def oracle_curve(self, variant: str = "first_correct", never_correct: str = "cap") -> Any:
        return self._get(
            ("oracle_curve", variant, never_correct),
            lambda: metrics.oracle_curve(
                self.decoded, variant=variant, never_correct=never_correct
            ),
        )

    def oracle(self, variant: str = "first_correct", never_correct: str = "cap") -> Any:
        return self._get(
            ("oracle", variant, never_correct),
            lambda: metrics.oracle(self.decoded, variant=variant, never_correct=never_correct),
        )

    def evaluate(self, threshold: float) -> Any:
        return metrics.evaluate(
            self.decoded,
            threshold=threshold,
            spikes=self.data.spikes,
            synops=self.data.synops,
            neurons=self.run.meta.get("neurons"),
        )

    def capped(self, threshold: float) -> Any:
        return metrics.capped_curve(self.decoded, threshold)


def _with_spinner(text: str, fn):
    def build():
        with st.spinner(text):
            return fn()

    return build


def _analysis(path: str, run_stamp_: tuple, split: str, decoder: str, kappa) -> Analysis:
    run = _get_run(path, run_stamp_)
    # kappa None means T_max: one analysis whether the box is empty or says T_max.
    key_kappa = check_kappa(decoder, kappa, run.T_max)
    return CACHE.get(
        ("analysis", path, run_stamp_, split, decoder, key_kappa),
        _with_spinner("Decoding confidences...", lambda: Analysis(run, split, decoder, kappa)),
        group=(path, run_stamp_),
        measure=Analysis.nbytes,
    )


def get_analysis(path: str | Path, split: str, decoder: str, kappa: float | None) -> Analysis:
    return _analysis(str(path), stamp(path), split, decoder, kappa)


def _pair(path: str, cal: str, split: str, decoder: str, kappa) -> tuple:
    run_stamp_ = stamp(path)
    cal_a = _analysis(path, run_stamp_, cal, decoder, kappa)
    test_a = _analysis(path, run_stamp_, split, decoder, kappa)
    key = (path, run_stamp_, cal, split, decoder, check_kappa(decoder, kappa, cal_a.run.T_max))
    # A result refers to both analyses and their run: count only what is its own.
    skip = (cal_a, test_a, cal_a.decoded, test_a.decoded, cal_a.run, test_a.run)
    return run_stamp_, cal_a, test_a, key, lambda value: nbytes_of(value, skip=skip)


def get_selection(path, cal: str, split: str, decoder: str, kappa, tolerance: float) -> Any:
    path = str(path)
    run_stamp_, cal_a, test_a, key, measure = _pair(path, cal, split, decoder, kappa)
    return CACHE.get(
        ("selection", *key, float(tolerance)),
        _with_spinner(
            "Choosing a threshold on the calibration split...",
            lambda: metrics.select_threshold(cal_a.decoded, test_a.decoded, tolerance=tolerance),
        ),
        group=(path, run_stamp_),
        measure=measure,
    )


def get_policy_comparison(
    path, cal: str, split: str, decoder: str, kappa, tolerance: float, auto_kappa: bool = False
):
    """Every registered policy fitted on ``cal`` and reported on ``split`` (cached); with
    ``auto_kappa`` the decoder's kappa is chosen on calibration too."""
    path = str(path)
    run_stamp_, cal_a, test_a, key, measure = _pair(path, cal, split, decoder, kappa)
    return CACHE.get(
        ("policies", *key, float(tolerance), bool(auto_kappa)),
        _with_spinner(
            "Fitting every exit policy on the calibration split...",
            # Decode functions, not the view's decoded splits: topk_gap reads the gap decoder
            # and conformal the per-class probabilities of the full outputs.
            lambda: compare_policies(
                split_decoder(cal_a.data),
                split_decoder(test_a.data),
                tolerance,
                test_spikes=test_a.data.spikes,
                neurons=test_a.run.meta.get("neurons"),
                decoder=decoder,
                kappa="auto" if auto_kappa else kappa,
            ),
        ),
        group=(path, run_stamp_),
        measure=measure,
    )


def get_policy_fronts(
    path, cal: str, split: str, decoder: str, kappa, tolerance: float, auto_kappa: bool = False
):
    """Each policy of get_policy_comparison swept over its calibration candidates on
    ``split``, with its Pareto front (dynconf.core.policies.comparison.policy_fronts; cached).
    """
    path = str(path)
    run_stamp_, cal_a, test_a, key, _ = _pair(path, cal, split, decoder, kappa)
    comparison = get_policy_comparison(path, cal, split, decoder, kappa, tolerance, auto_kappa)
    # The fronts refer to the comparison's fits (their own cache entry): count only the rest.
    skip = (comparison, cal_a, test_a, cal_a.run)

    def build():
        # Decode functions again (at the decoders and kappa each fit read): they are cheap next
        # to evaluating every candidate, and the comparison keeps none of its decodings.
        return policy_fronts(comparison, split_decoder(cal_a.data), split_decoder(test_a.data))

    return CACHE.get(
        ("policy_fronts", *key, float(tolerance), bool(auto_kappa)),
        _with_spinner("Sweeping every exit policy's candidates on the evaluation split...", build),
        group=(path, run_stamp_),
        measure=lambda value: nbytes_of(value, skip=skip),
    )


# --------------------------------------------------------------------------- input images


@st.cache_data(show_spinner=False, max_entries=64)
def _sample_image(meta: dict, split: str, sample_id: int | None, data_root: str | None):
    return inputs.sample_image(meta, split, sample_id, data_root)


def sample_image(run: Any, split: str, sample_id: int | None) -> tuple[np.ndarray | None, str]:
    """The input image behind a sample id (see dynconf/inputs.py), for the Samples page."""
    root = inputs.default_data_root()
    return _sample_image(run.meta, split, sample_id, None if root is None else str(root))
