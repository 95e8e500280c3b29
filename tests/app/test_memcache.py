"""dynconf/app/memcache.py: a cache bounded by bytes, least recently used out, groups, threads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from dynconf.app.memcache import MemoryCache, budget_bytes, nbytes_of

MB = 1_000_000


def blob(mb: float) -> np.ndarray:
    return np.zeros(int(mb * MB), np.uint8)


def test_nbytes_counts_each_buffer_once_and_skips_what_it_is_told():
    a = blob(2)

    class Holder:
        def __init__(self):
            self.a, self.view, self.more = a, a[:10], {"x": [blob(1), (a,)]}

    h = Holder()
    assert nbytes_of(h) == 3 * MB  # the view and the second reference add nothing
    assert nbytes_of(h, skip=(a,)) == 1 * MB
    assert nbytes_of([h, a]) == 3 * MB


def test_least_recently_used_goes_first_and_total_stays_in_budget():
    cache = MemoryCache(budget=10 * MB)
    for key in "abcd":
        cache.get(key, lambda: blob(3))
        assert cache.nbytes <= 10 * MB
    assert cache.ordered_keys() == ["b", "c", "d"]
    cache.get("b", lambda: pytest.fail("b is cached"))  # touch b: c is now the oldest
    cache.get("e", lambda: blob(3))
    assert cache.ordered_keys() == ["d", "b", "e"]


def test_evicting_a_run_evicts_what_was_computed_from_it():
    cache = MemoryCache(budget=10 * MB)
    cache.get("run1", lambda: blob(4), group="r1", anchor=True)
    cache.get("an1", lambda: blob(1), group="r1")
    cache.get("run2", lambda: blob(4), group="r2", anchor=True)
    cache.get("an2", lambda: blob(2), group="r2")  # 11 MB: run1 is oldest and goes, with an1
    assert cache.ordered_keys() == ["run2", "an2"]


def test_the_value_asked_for_is_kept_even_alone_over_budget():
    cache = MemoryCache(budget=5 * MB)
    cache.get("run", lambda: blob(2), group="g", anchor=True)
    big = cache.get("huge", lambda: blob(8), group="g")
    assert big.nbytes == 8 * MB
    assert set(cache.ordered_keys()) == {"run", "huge"}  # its own run stays: the page needs both
    cache.get("small", lambda: blob(1))
    assert cache.ordered_keys() == ["small"] and cache.nbytes <= 5 * MB


def test_cold_values_are_evicted_before_anything_in_use():
    cache = MemoryCache(budget=10 * MB)
    cache.get("used", lambda: blob(4))
    cache.get("listed", lambda: blob(4), cold=True)
    cache.get("new", lambda: blob(4))
    assert cache.ordered_keys() == ["used", "new"]


def test_settle_measures_growth_and_evicts():
    cache = MemoryCache(budget=10 * MB)
    grows = cache.get("grows", lambda: {"parts": [blob(1)]})
    cache.get("other", lambda: blob(4))
    grows["parts"] += [blob(4), blob(4)]  # the value grew to 9 MB while it was used
    assert cache.nbytes == 5 * MB  # as measured when stored
    cache.settle()
    assert cache.ordered_keys() == ["other"] and cache.nbytes == 4 * MB


def test_a_value_is_built_once_across_threads_and_failures_are_not_cached():
    cache = MemoryCache(budget=100 * MB)
    calls = []

    def build():
        calls.append(1)
        time.sleep(0.2)
        return blob(1)

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("k", build))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(calls) == 1 and len(results) == 8 and all(r is results[0] for r in results)

    def fail():
        raise ValueError("no")

    for _ in range(2):
        with pytest.raises(ValueError):
            cache.get("bad", fail)
    assert "bad" not in cache.ordered_keys()


def test_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DYNCONF_CACHE_MB", "64")
    assert budget_bytes() == 64 * MB
    for bad in ("lots", "nan", "-5"):
        monkeypatch.setenv("DYNCONF_CACHE_MB", bad)
        assert budget_bytes() == 512 * MB
    monkeypatch.delenv("DYNCONF_CACHE_MB")
    assert budget_bytes() == 512 * MB


def test_payload_bytes_are_counted():
    payload = bytes(3 * MB)
    assert nbytes_of({"instant_payload": ("id", payload), "again": payload}) == 3 * MB
    cache = MemoryCache(budget=5 * MB)
    cache.get("a", lambda: ("id", bytes(3 * MB)))
    cache.get("b", lambda: ("id", bytes(3 * MB)))
    assert cache.ordered_keys() == ["b"] and cache.nbytes == 3 * MB


class Cyclic:
    """A value that refers to itself through what it holds, as a decoded split and its
    threshold precomputation do: only the cycle collector frees it."""

    def __init__(self, mb: float):
        self.data = blob(mb)
        self.cache = {"owner": self}


def test_an_evicted_value_in_a_reference_cycle_is_freed_at_once():
    import gc
    import weakref

    gc.disable()  # the collector would run by object counts, maybe never: the cache must
    try:
        cache = MemoryCache(budget=5 * MB)
        first = weakref.ref(cache.get("a", lambda: Cyclic(3)))
        cache.get("b", lambda: Cyclic(3))  # evicts a
        assert first() is None
        second = weakref.ref(cache.get("b", lambda: None))
        cache.clear()
        assert second() is None
    finally:
        gc.enable()


def test_the_allocator_is_tuned_where_the_c_library_is_glibc():
    import platform

    from dynconf.app.memcache import release_memory, tune_allocator

    if platform.libc_ver()[0] == "glibc":
        assert tune_allocator() is True
    release_memory()  # never fails, glibc or not
