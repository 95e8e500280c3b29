"""The one view (dynconf.core.view.View) against plain per-sample loops and against the library
functions it gathers; its disk state (dynconf.core.viewstate) against a fresh decoding."""

from __future__ import annotations

import os

import numpy as np
import pytest

import dynconf.core.decoders
from dynconf.core import metrics
from dynconf.core.analysis_cache import AnalysisCache
from dynconf.core.decoders import decode
from dynconf.core.policies.comparison import compare_policies, split_decoder
from dynconf.core.policies.threshold import ThresholdCache
from dynconf.core.store import load_run
from dynconf.core.view import RECENT_THRESHOLDS, View, nbytes_of
from dynconf.errors import DynconfError
from tests.helpers import build_synthetic_run

THRESHOLDS = (0.0, 0.1, 0.35, 0.5, 0.77, 0.9, 0.999, 1.0)


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNCONF_CACHE_DIR", str(tmp_path / "user-cache"))
    return load_run(build_synthetic_run(tmp_path / "synth").path)


def loop_exits(conf: np.ndarray, C: float) -> list[int]:
    """tau_i = first t with c_t > C, else T: one sample and one step at a time."""
    T, N = conf.shape
    out = []
    for i in range(N):
        tau = T
        for t in range(T):
            if conf[t, i] > C:
                tau = t + 1
                break
        out.append(tau)
    return out


def test_one_threshold_equals_a_per_sample_loop(run):
    view = View(run, "test", "paper", kappa=5.0)
    dec = view.decoded
    for C in THRESHOLDS:
        res = view.evaluate(C)
        steps = loop_exits(dec.confidence, C)
        right = [bool(dec.correct[s - 1, i]) for i, s in enumerate(steps)]
        assert res.exit_steps.tolist() == steps
        assert res.n_correct == sum(right)
        assert res.mean_latency == pytest.approx(sum(steps) / len(steps), abs=1e-12)
        classes = view.classes(C)
        for k in range(run.K):
            members = [i for i in range(dec.N) if dec.labels[i] == k]
            assert classes.n[k] == len(members)
            assert classes.n_correct[k] == sum(right[i] for i in members)
    assert view.baseline.tolist() == pytest.approx(
        [dec.correct[t].sum() / dec.N for t in range(dec.T)]
    )


def test_the_view_returns_what_the_library_functions_return(run):
    view = View(run, "test")
    sp, cal_sp = run.split("test"), run.split("calibration")
    dec, cal = decode(sp), decode(cal_sp)
    neurons = run.meta.get("neurons")
    want = metrics.select_threshold(
        cal, dec, 0.01, test_spikes=sp.spikes, cal_spikes=cal_sp.spikes, neurons=neurons,
        test_synops=sp.synops, cal_synops=cal_sp.synops,
    )  # fmt: skip
    assert view.selection("calibration", 0.01).to_dict() == want.to_dict()
    got = view.policy_comparison("calibration", 0.0)
    ref = compare_policies(split_decoder(cal_sp, neurons), split_decoder(sp, neurons), 0.0,
                           test_spikes=sp.spikes, neurons=neurons, decoder="paper")  # fmt: skip
    assert got.to_dict() == ref.to_dict()
    comparison, fronts = view.policies("calibration")
    assert [f.name for f in fronts] == [fit.name for fit in comparison.fits]
    assert view.sweep.to_dict() == metrics.sweep(dec).to_dict()
    assert view.oracle("stays_correct").to_dict() == metrics.oracle(dec, "stays_correct").to_dict()
    res = metrics.evaluate(dec, 0.5, spikes=sp.spikes, neurons=neurons, synops=sp.synops)
    assert view.evaluate(0.5).to_dict() == res.to_dict()
    now = view.timeline(0.5, 4)
    assert now.n_exited == int((res.exit_steps <= 4).sum())
    counts = view.confusion(0.5)
    assert counts.sum() == dec.N and np.trace(counts) == res.n_correct


def test_bad_splits_are_one_line_errors(run):
    with pytest.raises(DynconfError, match="no split 'nope'"):
        View(run, "nope")
    view = View(run, "test")
    with pytest.raises(DynconfError, match="no calibration split"):
        view.selection("nope")
    with pytest.raises(DynconfError, match="must differ"):
        view.selection("test")


def test_per_threshold_results_are_bounded_and_the_run_is_not_counted(run):
    view = View(run, "test")
    view.sweep  # noqa: B018
    held = view.nbytes()
    for C in np.linspace(0, 1, 200):
        view.evaluate(C)
        view.capped(C)
    assert len(view._recent) <= RECENT_THRESHOLDS
    assert view.nbytes() < held + 4 * RECENT_THRESHOLDS * view.decoded.N * 8 + 10_000
    assert view.nbytes() < nbytes_of(view)  # nbytes_of(view) counts the run's arrays too
    assert view.evaluate(0.5) is view.evaluate(0.5)  # recent: the same object


def test_siblings_come_from_the_lookup_given(run):
    made = []

    def lookup(split):
        made.append(split)
        return View(run, split)

    view = View(run, "test", siblings=lookup)
    view.selection("calibration")
    assert made == ["calibration"]
    assert View(run, "test").sibling("calibration").split_name == "calibration"


# --------------------------------------------------------------------------- disk


def counted_decodes(monkeypatch) -> list:
    calls = []
    original = dynconf.core.decoders.decode

    def counting(split, *args, **kwargs):
        calls.append(split.name)
        return original(split, *args, **kwargs)

    monkeypatch.setattr(dynconf.core.decoders, "decode", counting)
    return calls


def test_a_reopened_view_reads_its_state_and_gives_the_same_numbers(run, tmp_path, monkeypatch):
    cache = AnalysisCache(tmp_path / "cache")
    calls = counted_decodes(monkeypatch)
    fresh = View(run, "test", "paper", 6.0, disk=cache)
    fresh.evaluate(0.5)
    assert calls == ["test"] and len(cache.entries()) == 1
    again = View(run, "test", "paper", 6.0, disk=cache)
    grid = np.linspace(0, 1, 101)
    for C in grid:
        assert again.evaluate(C).to_dict() == fresh.evaluate(C).to_dict()
    assert calls == ["test"]  # read, not decoded
    assert again.sweep.to_dict() == fresh.sweep.to_dict()
    exact = ThresholdCache(fresh.decoded)
    for a, b in zip(again.decoded.cache["threshold"].sweep_counts(exact.exact_thresholds()),
                    exact.sweep_counts(exact.exact_thresholds()), strict=True):  # fmt: skip
        assert np.array_equal(a, b)
    assert np.array_equal(again.decoded.correct, fresh.decoded.correct)
    assert again.decoded.kappa == fresh.decoded.kappa == 6.0
    assert not again.decoded.confidence.flags.writeable
    assert again.selection("calibration").to_dict() == fresh.selection("calibration").to_dict()


def test_a_changed_run_or_a_damaged_entry_is_decoded_again(run, tmp_path, monkeypatch):
    cache = AnalysisCache(tmp_path / "cache")
    View(run, "test", disk=cache).decoded  # noqa: B018
    calls = counted_decodes(monkeypatch)
    labels = run.path / "test.labels.npy"
    st = os.stat(labels)
    os.utime(labels, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the run changed: new stamp
    View(run, "test", disk=cache).decoded  # noqa: B018
    assert calls == ["test"] and len(cache.entries()) == 2
    for _, _, path in cache.entries():  # every entry damaged: a miss, decoded again
        path.write_bytes(path.read_bytes()[: 2000])
    again = View(run, "test", disk=cache)
    assert again.evaluate(0.5).to_dict() == View(run, "test", disk=False).evaluate(0.5).to_dict()
    assert calls == ["test", "test", "test"]


def test_an_entry_with_indices_out_of_range_is_a_miss(run, tmp_path, monkeypatch):
    cache = AnalysisCache(tmp_path / "cache")
    view = View(run, "test", disk=cache)
    view.decoded  # noqa: B018
    key = view.disk_key("view")
    entry = cache.get(key)
    steps = entry.arrays["rec_steps"].copy()
    steps[0] = 10_000
    cache.put(key, {**entry.arrays, "rec_steps": steps}, entry.meta)
    calls = counted_decodes(monkeypatch)
    assert View(run, "test", disk=cache).evaluate(0.3).N == view.decoded.N
    assert calls == ["test"]


def test_small_splits_and_runs_without_a_folder_stay_off_the_disk(run, tmp_path, monkeypatch):
    View(run, "test").decoded  # noqa: B018 - small: decoding is cheaper than a read
    assert not (tmp_path / "user-cache").exists()
    cache = AnalysisCache(tmp_path / "other")
    gone = View(type(run)(tmp_path / "nowhere", run.meta, run.splits), "test", disk=cache)
    gone.decoded  # noqa: B018
    assert cache.entries() == []
    monkeypatch.setenv("DYNCONF_CACHE_DIR", "off")
    assert View(run, "test").disk_cache() is None


def test_threshold_cache_from_records_equals_a_fresh_one(run):
    dec = decode(run.split("test"), "margin")
    fresh = ThresholdCache(dec)
    counts, steps, order = ThresholdCache(dec).records()
    back = ThresholdCache.from_records(dec, counts.astype(np.int16), steps.astype(np.int16),
                                       order.astype(np.int32))  # fmt: skip
    rng = np.random.default_rng(0)
    grid = np.concatenate([rng.uniform(0, 1, 50), fresh.exact_thresholds()])
    for C in grid[:60]:
        assert np.array_equal(back.exit_steps(C), fresh.exit_steps(C))
    for a, b in zip(back.sweep_counts(grid), fresh.sweep_counts(grid), strict=True):
        assert np.array_equal(a, b)
