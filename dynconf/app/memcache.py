"""A cache bounded by the bytes its values hold, not by how many there are.

The app keeps loaded runs and their decoded analyses between reruns and across sessions. One
analysis of the CIFAR-10 run (both splits decoded, the threshold policy's sort) holds tens of
megabytes, so an entry-count bound (32 entries) let a user cycling through kappa values grow
the server by gigabytes. :class:`MemoryCache` counts the numpy bytes each value holds
(:func:`nbytes_of`) and evicts the least recently used entries once the total passes the
budget (``DYNCONF_CACHE_MB``, default 512 MB).

Entries belong to a *group* (the run they were computed from): evicting a group's ``anchor``
(the loaded run, which every analysis of it refers to) evicts the whole group, so no analysis
keeps an uncounted run alive; a value's size is measured when it is stored and again by
:meth:`MemoryCache.settle` (after every script run), because analyses grow as pages ask them
for more (sweeps, oracles, the policy's sort). The value just asked for, and its group's
anchor, are never evicted to make room: a value larger than the whole budget is returned and
kept (with its run) until the next store, so the page that asked for it works.

What is evicted is given back to the system at once: a decoded split and the threshold
rule's precomputation refer to each other (a reference cycle), so dropping the last reference
frees nothing until Python's cycle collector runs, which it does by object counts, not bytes;
a few hundred megabytes of evicted arrays could then wait for it indefinitely.
:func:`release_memory` runs the collector after every eviction and hands the freed heap back
(glibc's ``malloc_trim``); :func:`tune_allocator` makes glibc serve large arrays from their
own mappings (returned on free) and keeps the number of malloc arenas small, so the server's
resident size stays near the budget plus a constant (benchmarks/bench_app_memory.py).

Thread-safe: one server runs many sessions in threads; a value being built is built once,
others asking for the same key wait for it. No Streamlit here (tested directly).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from dynconf.core.view import nbytes_of

DEFAULT_BUDGET_MB = 512.0


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc mallopt parameters
MMAP_THRESHOLD = 1 << 20  # arrays from 1 MiB up get their own mapping, unmapped when freed
ARENA_MAX = 2


def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "malloc_trim") or not hasattr(libc, "mallopt"):
        return None  # not glibc: nothing to tune
    return libc


_LIBC = _libc()


def tune_allocator() -> bool:
    """Fixed mmap and trim thresholds and at most ARENA_MAX arenas (glibc; module doc).
    A fixed threshold also stops glibc from raising it after each large free, which would
    put later arrays on a heap that fragments. False where the C library is not glibc."""
    if _LIBC is None:
        return False
    ok = _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    ok &= _LIBC.mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD)
    ok &= _LIBC.mallopt(M_ARENA_MAX, ARENA_MAX)
    return bool(ok)


def release_memory() -> None:
    """Free what evicted entries held now (cycle collector) and give the heap's free pages
    back to the system (glibc's malloc_trim)."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def budget_bytes() -> int:
    """``DYNCONF_CACHE_MB`` (megabytes, default 512) in bytes; bad values use the default."""
    try:
        mb = float(os.environ.get("DYNCONF_CACHE_MB", DEFAULT_BUDGET_MB))
    except ValueError:
        mb = DEFAULT_BUDGET_MB
    if not mb >= 0:  # also NaN
        mb = DEFAULT_BUDGET_MB
    return int(mb * 1e6)


@dataclass
class _Entry:
    value: Any
    nbytes: int
    group: Hashable | None
    anchor: bool
    measure: Callable[[Any], int]


class MemoryCache:
    """Least-recently-used cache whose values together hold at most ``budget`` bytes."""

    def __init__(self, budget: int | Callable[[], int] = budget_bytes) -> None:
        self._budget = budget
        self._lock = threading.RLock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        self._dropped = False  # entries left since the memory was last released

    @property
    def budget(self) -> int:
        return self._budget() if callable(self._budget) else int(self._budget)

    @property
    def nbytes(self) -> int:
        """Bytes held by all entries, as last measured."""
        with self._lock:
            return sum(e.nbytes for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def ordered_keys(self) -> list[Hashable]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._entries)

    def values(self) -> list[Any]:
        """Values from least to most recently used."""
        with self._lock:
            return [e.value for e in self._entries.values()]

    def get(
        self,
        key: Hashable,
        build: Callable[[], Any],
        *,
        group: Hashable | None = None,
        anchor: bool = False,
        measure: Callable[[Any], int] = nbytes_of,
        cold: bool = False,
    ) -> Any:
        """The value for ``key``, built with ``build()`` (once, even across threads) if absent.

        ``anchor``: this value is what the rest of ``group`` refers to; evicting it evicts the
        group. ``cold``: a newly built value goes to the least-recently-used end (a listing
        that validates every run should not push out what the user is looking at).
        Exceptions from ``build`` propagate and nothing is stored.
        """
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    return entry.value
                building = self._building.setdefault(key, threading.Lock())
            with building:
                with self._lock:
                    if self._building.get(key) is not building:
                        continue  # built (or failed) meanwhile: look again
                    entry = self._entries.get(key)
                    if entry is not None:
                        self._entries.move_to_end(key)
                        return entry.value
                try:
                    value = build()
                    size = measure(value)
                    with self._lock:
                        self._entries[key] = _Entry(value, size, group, anchor, measure)
                        if cold:
                            self._entries.move_to_end(key, last=False)
                        self._shrink(keep=None if cold else key)
                    self._release_dropped()
                    return value
                finally:
                    with self._lock:
                        self._building.pop(key, None)

    def _release_dropped(self) -> None:
        """After entries left: give their memory back now (release_memory), outside the lock."""
        with self._lock:
            dropped, self._dropped = self._dropped, False
        if dropped:
            release_memory()

    def drop_group(self, group: Hashable) -> None:
        with self._lock:
            for key in [k for k, e in self._entries.items() if e.group == group]:
                del self._entries[key]
                self._dropped = True

    def drop_where(self, predicate: Callable[[Hashable], bool]) -> None:
        """Remove the groups for which ``predicate(group)`` is true (e.g. a replaced run)."""
        with self._lock:
            groups = {e.group for e in self._entries.values() if e.group is not None}
            for group in groups:
                if predicate(group):
                    self.drop_group(group)
        self._release_dropped()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._dropped = True
        self._release_dropped()

    def settle(self) -> None:
        """Measure every value again (they grow as they are used) and evict to the budget."""
        with self._lock:
            items = list(self._entries.items())
        sizes = {key: entry.measure(entry.value) for key, entry in items}
        with self._lock:
            for key, size in sizes.items():
                if key in self._entries:
                    self._entries[key].nbytes = size
            newest = next(reversed(self._entries), None)
            self._shrink(keep=newest)
        self._release_dropped()

    def _shrink(self, keep: Hashable | None) -> None:
        """Evict least recently used entries (and the groups of evicted anchors) to budget.

        ``keep`` (the value just asked for) and the anchor of its group are never evicted:
        the page that asked needs them, even when they alone are over the budget.
        """
        budget = self.budget
        protected = set() if keep is None else {keep}
        kept = self._entries.get(keep) if keep is not None else None
        if kept is not None and kept.group is not None:
            protected |= {k for k, e in self._entries.items() if e.group == kept.group and e.anchor}
        while sum(e.nbytes for e in self._entries.values()) > budget:
            victim = next((k for k in self._entries if k not in protected), None)
            if victim is None:
                return
            entry = self._entries.pop(victim)
            self._dropped = True
            if entry.anchor and entry.group is not None:
                for key in [k for k, e in self._entries.items() if e.group == entry.group]:
                    del self._entries[key]
