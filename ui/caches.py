"""What the app computes once and keeps: run listings, loaded runs, analyses, selections.

Every cache is keyed on folder stamps (modification times of a run directory and its
meta.json), so a run that is replaced, imported or finishes simulating is seen on the next
rerun without a server restart. One ``Run`` per run directory and one :class:`Analysis` per
run + split + decoder + kappa (``st.cache_resource``): moving the threshold recomputes only
that threshold's own policy result; curves and sweeps are computed once.
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
from dynconf.core.policies.comparison import compare_policies
from dynconf.core.store import default_runs_root, default_work_root, list_runs, load_run

# --------------------------------------------------------------------------- folder stamps


def _stamp(path: Path) -> tuple[int, int]:
    """Changes whenever a run directory is replaced or gains a file (cache key)."""
    try:
        meta = (path / "meta.json").stat().st_mtime_ns
    except OSError:
        meta = 0
    try:
        return path.stat().st_mtime_ns, meta
    except OSError:
        return 0, meta


def _root_stamp(root: Path) -> tuple:
    try:
        entries = sorted(
            (e.name, _stamp(Path(e.path)))
            for e in os.scandir(root)
            if e.is_dir() and not e.name.startswith(".")
        )
    except OSError:
        return ()
    return tuple(entries)


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


@st.cache_data(show_spinner="Checking runs...", max_entries=8)
def _list_root(root: str, stamp: tuple, source: str) -> list[Listing]:
    out = []
    for item in list_runs(root):
        if Path(item.path).name.startswith("."):
            continue  # the job folder and temp dirs of atomic writes
        out.append(
            Listing(
                item.name, str(item.path), bool(item.ok), item.error, dict(item.meta or {}), source
            )
        )
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


@st.cache_resource(show_spinner=False, max_entries=16)
def _load_run(path: str, stamp: tuple):
    return load_run(path)


def get_run(path: str | Path):
    return _load_run(str(path), _stamp(Path(path)))


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
            neurons=self.run.meta.get("neurons"),
        )

    def capped(self, threshold: float) -> Any:
        return metrics.capped_curve(self.decoded, threshold)


@st.cache_resource(show_spinner="Decoding confidences...", max_entries=32)
def _analysis(path: str, stamp: tuple, split: str, decoder: str, kappa: float | None) -> Analysis:
    return Analysis(_load_run(path, stamp), split, decoder, kappa)


def get_analysis(path: str | Path, split: str, decoder: str, kappa: float | None) -> Analysis:
    return _analysis(str(path), _stamp(Path(path)), split, decoder, kappa)


@st.cache_resource(show_spinner="Choosing a threshold on the calibration split...", max_entries=32)
def _selection(
    path: str,
    stamp: tuple,
    cal: str,
    split: str,
    decoder: str,
    kappa: float | None,
    tolerance: float,
) -> Any:
    cal_a = _analysis(path, stamp, cal, decoder, kappa)
    test_a = _analysis(path, stamp, split, decoder, kappa)
    return metrics.select_threshold(cal_a.decoded, test_a.decoded, tolerance=tolerance)


def get_selection(path, cal: str, split: str, decoder: str, kappa, tolerance: float) -> Any:
    return _selection(str(path), _stamp(Path(path)), cal, split, decoder, kappa, tolerance)


@st.cache_resource(
    show_spinner="Fitting every exit policy on the calibration split...", max_entries=16
)
def _policy_comparison(path, stamp, cal, split, decoder, kappa, tolerance) -> Any:
    cal_a = _analysis(path, stamp, cal, decoder, kappa)
    test_a = _analysis(path, stamp, split, decoder, kappa)
    return compare_policies(
        cal_a.decoded,
        test_a.decoded,
        tolerance,
        test_spikes=test_a.data.spikes,
        neurons=test_a.run.meta.get("neurons"),
    )


def get_policy_comparison(path, cal: str, split: str, decoder: str, kappa, tolerance: float):
    """Every registered policy fitted on ``cal`` and reported on ``split`` (cached)."""
    return _policy_comparison(str(path), _stamp(Path(path)), cal, split, decoder, kappa, tolerance)


# --------------------------------------------------------------------------- input images


@st.cache_data(show_spinner=False, max_entries=64)
def _sample_image(meta: dict, split: str, sample_id: int | None, data_root: str | None):
    return inputs.sample_image(meta, split, sample_id, data_root)


def sample_image(run: Any, split: str, sample_id: int | None) -> tuple[np.ndarray | None, str]:
    """The input image behind a sample id (see dynconf/inputs.py), for the Samples page."""
    root = inputs.default_data_root()
    return _sample_image(run.meta, split, sample_id, None if root is None else str(root))
