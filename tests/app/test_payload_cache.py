"""The explorer's payload kept in the analysis cache on disk (dynconf.app.instant.payload):
a new view of the same run reads back the very bytes instead of building the figures."""

from __future__ import annotations

import pytest

from dynconf.app import instant
from dynconf.core.analysis_cache import AnalysisCache
from dynconf.core.store import load_run
from dynconf.core.view import View


@pytest.fixture
def run(env):
    return load_run(env / "synth")


def view(run, cache) -> View:
    return View(run, "test", "paper", None, disk=cache)


def test_a_new_view_reads_the_payload_back(run, tmp_path, monkeypatch):
    cache = AnalysisCache(tmp_path / "cache")
    first = view(run, cache)
    built = instant.payload(first, first.evaluate(0.5), list(run.classes))
    calls = []
    original = instant.build_payload
    monkeypatch.setattr(instant, "build_payload", lambda *a: calls.append(a) or original(*a))
    again = view(run, cache)
    assert instant.payload(again, again.evaluate(0.5), list(run.classes)) == built
    assert not calls  # read back, not built
    # Another threshold built other figures: it is built, not read back.
    other = view(run, cache)
    pid, blob = instant.payload(other, other.evaluate(0.8), list(run.classes))
    assert len(calls) == 1
    assert (pid, blob) == original(other, other.evaluate(0.8), list(run.classes),
                                   other.oracle_curve())  # fmt: skip


def test_no_cache_builds_every_time(run, monkeypatch):
    calls = []
    original = instant.build_payload
    monkeypatch.setattr(instant, "build_payload", lambda *a: calls.append(a) or original(*a))
    for _ in range(2):
        v = view(run, False)
        instant.payload(v, v.evaluate(0.5), list(run.classes))
    assert len(calls) == 2
