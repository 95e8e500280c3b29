"""One view: everything dynconf shows about one run + split + decoder + kappa, computed once.

A :class:`View` is the single object behind a page of the app, a figure of ``dynconf export``,
the figure pack, the LaTeX table and the notebook API (dynconf/api.py). It decodes its split
once (``decoded``) and keeps what is computed from it: the fixed-T baseline, the threshold
sweep, the oracles, the threshold chosen on a calibration split and the fitted exit
policies. A threshold's own results (``evaluate``, ``capped``, ``classes``) are kept for the
few most recent thresholds only, so moving a slider over a thousand values holds a bounded
amount.

Every number comes from the public functions of dynconf.core (metrics, oracle, selection,
classes, timeline, policies.comparison), so a change there reaches every consumer at once.

Big runs reopen at once: the decoded confidences and the threshold rule's records (the
slider grid's precomputation) are kept in the analysis cache on disk
(dynconf.core.analysis_cache), keyed by the run's stamp, so a second start reads them
instead of recomputing. Small splits never touch the disk (decoding them is cheaper).

Example::

    from dynconf.core.store import load_run
    from dynconf.core.view import View

    view = View(load_run("cached_runs/digits"), "test")
    view.evaluate(0.5).accuracy, view.baseline[-1]
    view.selection("calibration").threshold

Thread-safe: the app shares one view between sessions served in threads. What a view keeps
is read-only (its arrays) and follows from its run, split, decoder and kappa alone
(:meth:`View.shared`), so no session's request reaches another's page.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from dynconf.core import decoders, metrics
from dynconf.core.classes import class_metrics, confusion_at_exit
from dynconf.core.decoders import Decoded, check_kappa
from dynconf.core.policies.comparison import compare_policies, policy_fronts, split_decoder
from dynconf.core.timeline import example_sample, timeline_state
from dynconf.errors import DynconfError

RECENT_THRESHOLDS = 8  # per-threshold results kept per view (a slider visits many)
DISK_MIN_ELEMENTS = 1 << 22  # T * N * K below this decodes faster than a cache read
DISK_FORMAT = 1  # bump when what dynconf.core.viewstate stores changes
_SCALARS = (str, int, float, complex, bool, type(None), type)  # hold no buffer worth counting
# Kept values whose arrays stay writeable: fitted exit policies are estimators, owned by them.
_UNFROZEN = ("policies", "policy_fronts", "sibling")


class View:
    """One run + split + decoder + kappa, with everything computed from it memoized.

    ``kappa`` None means the decoder's default (T_max). ``siblings(split)`` gives the view of
    another split of the same run, decoder and kappa (the app passes its cache's lookup so the
    calibration view is shared); by default the view makes and keeps its own. ``disk`` is an
    AnalysisCache for big runs (default: the user's cache folder; False turns it off).

    Example::

        view = View(run, "test", "paper", kappa=None)
        view.evaluate(0.5).mean_latency, view.sweep.on_front.sum()
    """

    def __init__(
        self,
        run: Any,
        split: str,
        decoder: str = "paper",
        kappa: float | None = None,
        *,
        siblings: Callable[[str], View] | None = None,
        disk: Any = None,
    ) -> None:
        if split not in run.split_names:
            raise DynconfError(
                f"run {run.name} has no split {split!r} (it has {', '.join(run.split_names)})"
            )
        self.run, self.split_name, self.decoder, self.kappa = run, split, decoder, kappa
        self.key_kappa = check_kappa(decoder, kappa, run.T_max)
        self.data = run.split(split)
        self._siblings = siblings
        self._disk = disk
        self._lock = threading.RLock()  # re-entrant: a memoized value may ask for another
        self._memo: dict[tuple, Any] = {}
        self._recent: OrderedDict[tuple, Any] = OrderedDict()

    @classmethod
    def shared(cls, run: Any, split: str, decoder: str = "paper", kappa=None, **kw: Any) -> View:
        """The view a cache keyed by ``check_kappa`` holds for every spelling of one kappa.

        Every attribute of a shared view must follow from its cache key, or what one caller
        passed reaches the next: its kappa is None when the decoder's default is meant (T_max,
        or a decoder without one) however the caller spelled it, else the number. A label that
        names the kappa as a caller asked for it takes that caller's kappa, not the view's."""
        key = check_kappa(decoder, kappa, run.T_max)
        canonical = None if key == check_kappa(decoder, None, run.T_max) else key
        return cls(run, split, decoder, canonical, **kw)

    def __repr__(self) -> str:
        return (
            f"View({self.run.name!r}, split={self.split_name!r}, decoder={self.decoder!r}, "
            f"kappa={self.kappa!r}, N={self.data.N:,}, T={self.run.T_max})"
        )

    # -- memoization

    def _get(self, key: tuple, build: Callable[[], Any]) -> Any:
        """The value under ``key``, built once (kept for the view's life)."""
        with self._lock:
            if key not in self._memo:
                value = build()
                self._memo[key] = value if key[0] in _UNFROZEN else frozen(value)
            return self._memo[key]

    def _recently(self, key: tuple, build: Callable[[], Any]) -> Any:
        """The value under ``key``, kept among the RECENT_THRESHOLDS most recent ones."""
        with self._lock:
            if key in self._recent:
                self._recent.move_to_end(key)
                return self._recent[key]
            value = self._recent[key] = frozen(build())
            while len(self._recent) > RECENT_THRESHOLDS:
                self._recent.popitem(last=False)
            return value

    def nbytes(self) -> int:
        """Bytes this view holds itself, not the run's arrays (the run is counted on its own)."""
        return nbytes_of(self, skip=(self.run, self.data, self._siblings))

    # -- what does not depend on C

    @property
    def decoded(self) -> Decoded:
        """The split decoded (dynconf.core.decoders.decode), with its costs; read from the
        disk cache for big runs."""
        return self._get(("decoded",), self._decode)

    def _decode(self) -> Decoded:
        disk = self.disk_cache()
        key = self.disk_key("view") if disk is not None else None
        if key is None:
            return decode_view(self)
        from dynconf.core import viewstate

        dec = viewstate.restore(self, disk.get(key))
        if dec is None:
            dec = decode_view(self)
            disk.put(key, *viewstate.state(self, dec))
        frozen(self._memo.get(("sweep",)))  # both put the sweep in place, as _get would
        return dec

    def disk_cache(self, small: bool = False) -> Any:
        """The AnalysisCache this view reads and writes (None: off). Decodings of a small
        split (``small`` False) stay off the default cache: decoding them beats a read."""
        if self._disk is False:
            return None
        data = self.data
        if self._disk is None and not small and data.T * data.N * data.K < DISK_MIN_ELEMENTS:
            return None
        from dynconf.core.analysis_cache import AnalysisCache

        cache = AnalysisCache() if self._disk is None else self._disk
        return cache if cache.enabled else None

    def fit_store(self, calibration: str) -> Any:
        """Where fitted exit policies are kept between runs (as ``dynconf policies`` keeps
        them: dynconf.core.policies.comparison.FitStore), None when the cache is off."""
        from dynconf.core.policies.comparison import FitStore

        cache, stamp = self.disk_cache(small=True), self.run_stamp()
        return None if cache is None or stamp is None else FitStore(cache, (stamp, calibration))

    def disk_key(self, what: str, *parts: Any) -> str | None:
        """The analysis-cache key of ``what`` for this view, from the run's stamp (None when
        some run file cannot be read: then nothing is cached)."""
        stamp = self.run_stamp()
        if stamp is None:
            return None
        from dynconf.core.analysis_cache import cache_key

        return cache_key(what, DISK_FORMAT, stamp, self.split_name, self.decoder,
                         self.key_kappa, *parts)  # fmt: skip

    def run_stamp(self) -> tuple | None:
        """dynconf.core.store.run_stamp of the run; None when its folder or meta.json cannot
        be read (a run held only in memory), so nothing is cached under a stamp that does not
        describe it."""
        from dynconf.core.store import run_stamp

        stamp = run_stamp(self.run.path)
        found = dict(stamp)
        return stamp if found.get("dir") and found.get("meta.json") else None

    @property
    def neurons(self) -> int | None:
        value = self.run.meta.get("neurons")
        return None if value is None else int(value)

    @property
    def baseline(self) -> np.ndarray:
        """Accuracy of every sample answering at fixed t, for t = 1..T_max ([T_max])."""
        return self._get(("baseline",), lambda: np.asarray(metrics.baseline_curve(self.decoded)))

    @property
    def sweep(self) -> Any:
        """The threshold rule at the slider grid's thresholds, with its Pareto front."""
        return self._get(("sweep",), lambda: metrics.sweep(self.decoded))

    def oracle_curve(self, variant: str = "first_correct", never_correct: str = "cap") -> Any:
        """The oracle's accuracy and latency with every exit capped at T' = 1..T_max."""
        return self._get(
            ("oracle_curve", variant, never_correct),
            lambda: metrics.oracle_curve(self.decoded, variant, never_correct),
        )

    def oracle(
        self, variant: str = "first_correct", never_correct: str = "cap", cap: int | None = None
    ) -> Any:
        """The oracle exit (dynconf.core.oracle): the earliest step a causal rule could hope for."""
        return self._get(
            ("oracle", variant, never_correct, cap),
            lambda: metrics.oracle(self.decoded, variant, never_correct, cap),
        )

    # -- one threshold

    def evaluate(self, threshold: float) -> Any:
        """Dynamic Confidence at C = ``threshold`` (a PolicyResult with spikes and synops
        where the run holds them)."""
        c = float(threshold)
        return self._recently(
            ("evaluate", c),
            lambda: metrics.evaluate(
                self.decoded,
                threshold=c,
                spikes=self.data.spikes,
                synops=self.data.synops,
                neurons=self.neurons,
            ),
        )

    def capped(self, threshold: float) -> Any:
        """The threshold rule with every exit capped at T' = 1..T_max (a Curve)."""
        c = float(threshold)
        return self._recently(("capped", c), lambda: metrics.capped_curve(self.decoded, c))

    def classes(self, threshold: float) -> Any:
        """Accuracy, latency and exits per true label at C (dynconf.core.classes)."""
        c = float(threshold)
        return self._recently(
            ("classes", c), lambda: class_metrics(self.decoded, self.evaluate(c), self.run.K)
        )

    def confusion(self, threshold: float) -> np.ndarray:
        """[K, K] counts: true label (row) against the answer given at exit (column)."""
        res = self.evaluate(threshold)
        return confusion_at_exit(self.decoded.labels, res.predictions, self.run.K)

    def timeline(self, threshold: float, step: int) -> Any:
        """Where the threshold rule stands after ``step`` (dynconf.core.timeline)."""
        return timeline_state(self.decoded, float(threshold), int(step))

    def example_sample(self, threshold: float) -> int:
        """A sample worth watching step by step (dynconf.core.timeline.example_sample)."""
        return example_sample(self.decoded, float(threshold))

    # -- against a calibration split

    def sibling(self, split: str) -> View:
        """The view of ``split`` of the same run, decoder and kappa."""
        if split == self.split_name:
            return self
        if self._siblings is not None:
            return self._siblings(split)  # not kept here: the lookup's cache owns it
        return self._get(
            ("sibling", split),
            lambda: View(self.run, split, self.decoder, self.kappa, disk=self._disk),
        )

    def _calibration(self, calibration: str) -> View:
        if calibration not in self.run.split_names:
            raise DynconfError(f"run {self.run.name} has no calibration split {calibration!r}")
        if calibration == self.split_name:
            raise DynconfError("the calibration and evaluation splits must differ")
        return self.sibling(calibration)

    def selection(self, calibration: str, tolerance: float = 0.0) -> Any:
        """The threshold chosen on ``calibration`` (the fastest within ``tolerance`` of its
        T_max baseline) and reported on this split, as ``dynconf select`` does."""
        tol = float(tolerance)

        def build():
            cal = self._calibration(calibration)
            return metrics.select_threshold(
                cal.decoded,
                self.decoded,
                tolerance=tol,
                test_spikes=self.data.spikes,
                neurons=self.neurons,
                cal_spikes=cal.data.spikes,
                test_synops=self.data.synops,
                cal_synops=cal.data.synops,
            )

        return self._get(("selection", calibration, tol), build)

    def policy_comparison(
        self,
        calibration: str,
        tolerance: float = 0.0,
        auto_kappa: bool = False,
        names: tuple[str, ...] | None = None,
        **options: Any,
    ) -> Any:
        """Every registered exit policy (or ``names``) fitted on ``calibration`` and reported
        on this split, as ``dynconf policies`` fits them (a PolicyComparison). ``options`` go
        to compare_policies (``store``, ``on_fit``)."""
        tol, names = float(tolerance), None if names is None else tuple(names)

        def build():
            cal = self._calibration(calibration)
            options.setdefault("store", self.fit_store(calibration))
            # Decode functions, not the views' decoded splits: topk_gap reads the gap decoder
            # and conformal the per-class probabilities of the full outputs.
            return compare_policies(
                split_decoder(cal.data, self.neurons),
                split_decoder(self.data, self.neurons),
                tol,
                test_spikes=self.data.spikes,
                neurons=self.neurons,
                names=None if names is None else list(names),
                decoder=self.decoder,
                kappa="auto" if auto_kappa else self.kappa,
                **options,
            )

        return self._get(("policies", calibration, tol, bool(auto_kappa), names), build)

    def policy_fronts(
        self, calibration: str, tolerance: float = 0.0, auto_kappa: bool = False
    ) -> list:
        """Each policy of ``policy_comparison`` swept over its calibration candidates on this
        split, with its Pareto front (dynconf.core.policies.comparison.policy_fronts)."""
        tol = float(tolerance)

        def build():
            comparison = self.policy_comparison(calibration, tol, auto_kappa)
            cal = self._calibration(calibration)
            return policy_fronts(
                comparison,
                split_decoder(cal.data, self.neurons),
                split_decoder(self.data, self.neurons),
            )

        return self._get(("policy_fronts", calibration, tol, bool(auto_kappa)), build)

    def policies(
        self, calibration: str, tolerance: float = 0.0, auto_kappa: bool = False
    ) -> tuple[Any, list]:
        """(comparison, fronts): ``policy_comparison`` and ``policy_fronts`` together."""
        return (
            self.policy_comparison(calibration, tolerance, auto_kappa),
            self.policy_fronts(calibration, tolerance, auto_kappa),
        )


def nbytes_of(value: Any, skip: tuple = (), _depth: int = 0, _seen: set | None = None) -> int:
    """Bytes of the numpy arrays reachable from ``value`` (each buffer counted once).

    Walks dicts, lists, tuples, sets and the attributes of plain objects (``__dict__`` and
    ``__slots__``), to a bounded depth. Views count their base array once; bytes objects (a
    payload for the browser) count their length. Nothing reachable
    from the objects in ``skip`` is counted: a view skips the run it came from, which is
    counted as its own entry.
    """
    if _seen is None:
        _seen = set()
        nbytes_of(list(skip), (), 0, _seen)  # what the skipped objects hold (views too) is seen
    seen = _seen
    if _depth > 12 or id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        root = value
        while isinstance(root.base, np.ndarray):
            root = root.base
        if id(root) in seen and root is not value:
            return 0  # a view of a buffer already counted (or skipped)
        seen.add(id(root))
        return int(root.nbytes)
    if isinstance(value, (bytes, bytearray)):
        return len(value)  # a payload built for the browser (the instant explorer's)
    if isinstance(value, _SCALARS) or (callable(value) and not hasattr(value, "__dict__")):
        return 0
    children = _children(value)
    # (scalars filtered inline: a meta.json with 20,000 class names is walked quickly)
    return sum(nbytes_of(c, (), _depth + 1, seen) for c in children if not isinstance(c, _SCALARS))


def frozen(value: Any, _depth: int = 0) -> Any:
    """``value``, every numpy array it holds made read-only: a view is shared by the app's
    browser sessions, so a page writing into a kept array would show its edit to every other.
    Walks attributes, tuples, lists and dict values a few levels deep; a Decoded (read-only
    already, with policy caches of its own) and other views are left as they are."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
        return value
    if _depth > 3 or isinstance(value, (*_SCALARS, bytes, View, Decoded)) or callable(value):
        return value
    if isinstance(value, dict):
        children = list(value.values())
    elif isinstance(value, (list, tuple)):
        children = list(value)
    else:
        children = list(getattr(value, "__dict__", {}).values())
    for child in children:
        frozen(child, _depth + 1)
    return value


def _children(value: Any) -> list:
    for _ in range(3):  # another thread may grow a dict while it is walked: retry
        try:
            if isinstance(value, dict):
                return [*value.keys(), *value.values()]
            if isinstance(value, (list, tuple, set, frozenset)):
                return list(value)
            children = list(getattr(value, "__dict__", {}).values())
            for slot in getattr(type(value), "__slots__", ()):
                if hasattr(value, slot):
                    children.append(getattr(value, slot))
            return children
        except RuntimeError:
            continue
    return []


def decode_view(view: View) -> Decoded:
    """The split of ``view`` decoded in memory, its costs with it (no disk)."""
    dec = decoders.decode(view.data, view.decoder, view.kappa)  # the module's: patchable
    dec.neurons = view.neurons
    return dec
