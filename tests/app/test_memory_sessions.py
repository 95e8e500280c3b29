"""What a session keeps after its rerun holds no run or view: the app's cache alone does.

Streamlit keeps a disconnected session (its session state and the deferred download
builders of its last rerun) for minutes; the app's memory is bounded by DYNCONF_CACHE_MB only
if nothing kept there holds a view or a run the cache has evicted. Checked with weak
references and the cycle collector, not with timings or RSS
(benchmarks/bench_app_memory.py measures the real server).
"""

from __future__ import annotations

import gc
import weakref

import pytest
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dynconf.app import caches, charts, instant, state
from dynconf.core.view import View
from tests.app.helpers import app

pytestmark = pytest.mark.filterwarnings("ignore")


def _digits_context() -> state.Context:
    listing = next(item for item in caches.run_listing() if item.name == "digits")
    run = caches.get_run(listing.path)
    return state.Context(listing, run, "test", "paper", None, 0.9)


def _live_views() -> list[View]:
    gc.collect()
    return [obj for obj in gc.get_objects() if type(obj) is View]


def _views_since(before: list[View]) -> list[weakref.ref]:
    """Weak references to the views alive now that were not in ``before`` (other tests'
    views, held by their own fixtures, are not this test's concern)."""
    old = {id(v) for v in before}
    return [weakref.ref(v) for v in _live_views() if id(v) not in old]


def _alive(refs: list[weakref.ref]) -> list[View]:
    gc.collect()
    return [v for v in (ref() for ref in refs) if v is not None]


def test_a_session_state_keeps_no_view_once_the_cache_evicted_it():
    caches.CACHE.clear()
    before = _live_views()
    at = app("explorer", run="digits")
    ctx = at.session_state[state._CTX_KEY]
    assert ctx.analysis.run is ctx.run  # the page's view, read through the context
    made = _views_since(before)
    del before
    assert _alive(made), "the explorer's view is cached"
    caches.CACHE.clear()  # as an eviction by other views would
    assert _alive(made) == [], "a view outlived its eviction from the app's cache"
    assert ctx.analysis.decoded.N == ctx.run.split("test").N  # fetched again on demand
    caches.CACHE.clear()


def test_a_context_holds_its_run_and_view_weakly_and_fetches_them_again():
    caches.CACHE.clear()
    ctx = _digits_context()
    view = weakref.ref(ctx.analysis)
    run = weakref.ref(ctx.run)
    assert view() is not None and view().run is run()
    caches.CACHE.clear()
    gc.collect()
    assert view() is None and run() is None
    assert ctx.analysis.run is ctx.run  # both from the cache again, one run
    assert ctx.kappa_label
    caches.CACHE.clear()


def test_deferred_download_builders_keep_no_view_alive(monkeypatch):
    """The explorer's pack, LaTeX and report buttons build on click, from what they hold:
    Streamlit keeps those builders as long as the session, so they hold the context."""
    kept: dict[str, object] = {}

    def spy(self_or_label, *args, **kwargs):
        label = self_or_label if isinstance(self_or_label, str) else args[0]
        kept[label] = kwargs.get("data", args[1] if len(args) > 1 else None)

    monkeypatch.setattr(DeltaGenerator, "download_button", spy)
    monkeypatch.setattr(st, "download_button", spy)
    caches.CACHE.clear()
    before = _live_views()
    ctx = _digits_context()
    res = ctx.analysis.evaluate(ctx.threshold)
    charts.pack_buttons(ctx, key="memory", res=res)
    instant.report_download(ctx, key="memory-report")
    assert {"Figure pack (ZIP)", "LaTeX table", "Download interactive report"} <= set(kept)
    assert all(callable(build) for build in kept.values())
    made = _views_since(before)
    del res, before
    assert _alive(made)
    caches.CACHE.clear()
    assert _alive(made) == [], "a download builder keeps an evicted view alive"
    tex = kept["LaTeX table"]()
    assert "tabular" in tex  # the builder still works: it fetches the view again
    caches.CACHE.clear()
