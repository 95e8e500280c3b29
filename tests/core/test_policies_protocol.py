"""The one protocol every registered policy follows (scikit-learn style), checked for each
entry of the registry, so a new policy is covered without touching this file; and fitted
policies kept in the analysis cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dynconf.core.analysis_cache import AnalysisCache, cache_key
from dynconf.core.policies import POLICIES
from dynconf.core.policies.base import state_from_json, state_to_json
from dynconf.core.policies.comparison import FitStore, compare_policies, split_decoder
from dynconf.core.store import save_run
from dynconf.errors import DynconfError
from tests.core.test_policies import run_online
from tests.helpers import synthetic_split


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    def part(seed):
        arrays = synthetic_split(300, 12, 10, seed, neurons=100, dtype=np.float32)
        arrays["synops"] = (arrays["spikes"] * 7.0).astype(np.float32)
        return arrays

    folder = tmp_path_factory.mktemp("protocol") / "r"
    return save_run(folder, {"calibration": part(40), "test": part(41)}, neurons=100)


@pytest.mark.parametrize("name", list(POLICIES))
def test_every_registered_policy_follows_the_protocol(run, name):
    cls = POLICIES[name]
    decoder = cls.decoder or "paper"
    cal = split_decoder(run.split("calibration"), 100)(decoder, 5.0)
    test = split_decoder(run.split("test"), 100)(decoder, 5.0)
    policy = cls()
    assert set(policy.get_params()) == set(cls.param_names()) and not policy.is_fitted
    if not policy.ready():
        with pytest.raises(DynconfError, match="not fitted"):
            policy.evaluate(test)
    assert policy.fit(cal, 0.0) is policy
    state = policy.fitted_state()
    assert state and all(key.endswith("_") for key in state)
    res = policy.evaluate(test)
    assert res.policy == name and 1 <= res.mean_latency <= test.T
    # Costs travel with the decoded split: nothing passed, both reported.
    assert res.spikes_per_neuron_at_exit is not None and res.synops_saving is not None
    assert policy.evaluate(cal).n_correct >= 0
    assert json.dumps(res.to_dict(per_sample=False), allow_nan=False)
    # The fitted state survives JSON (the cache's form): a fresh instance exits the same.
    again = json.loads(json.dumps(state_to_json(state), allow_nan=False))
    clone = cls(**policy.get_params()).set_fitted(state_from_json(again))
    np.testing.assert_array_equal(clone.exit_steps(test), res.exit_steps)
    # The online form exits each sample where the cached-run form does.
    outputs = np.asarray(run.split("test").outputs, dtype=np.float64)
    order = np.random.default_rng(0).permutation(test.N)
    online = run_online(policy, outputs, decoder, test.kappa, order)
    np.testing.assert_array_equal(online, res.exit_steps)
    # set_params changes a hyperparameter and forgets the fit.
    first = next(iter(policy.get_params()))
    policy.set_params(**{first: policy.get_params()[first]})
    assert not policy.is_fitted


def test_compare_policies_reuses_fits_kept_in_the_analysis_cache(run, tmp_path, monkeypatch):
    cache = AnalysisCache(tmp_path / "cache")
    store = FitStore(cache, ("stamp", "calibration"))

    def both():
        return (
            split_decoder(run.split("calibration"), 100),
            split_decoder(run.split("test"), 100),
        )

    seen = []
    first = compare_policies(*both(), 0.0, store=store, on_fit=lambda f: seen.append(f.name))
    assert seen[0] == "threshold" and sorted(seen) == sorted(POLICIES)
    assert len(cache.entries()) == len(POLICIES)
    for cls in POLICIES.values():  # a second comparison must not fit anything again
        monkeypatch.setattr(cls, "fit", lambda *a, **k: pytest.fail("fitted again"))
    second = compare_policies(*both(), 0.0, store=store)
    assert json.dumps(second.to_dict()) == json.dumps(first.to_dict())
    for fit in first.fits:  # costs on both splits
        assert fit.calibration.synops_saving is not None and fit.test.spike_saving is not None
    # Another tolerance, calibration split or hyperparameter is another key.
    other = FitStore(cache, ("stamp", "test"))
    dec = split_decoder(run.split("calibration"))("paper", None)
    threshold = POLICIES["threshold"]
    keys = {
        store.key(threshold(), dec, 0.0),
        store.key(threshold(), dec, 0.01),
        other.key(threshold(), dec, 0.0),
        store.key(threshold(0.5), dec, 0.0),
    }
    assert len(keys) == 4


def test_analysis_cache_round_trip_bounds_and_damage(tmp_path, monkeypatch):
    cache = AnalysisCache(tmp_path / "c", max_bytes=6000)
    key = cache_key("x", 1, (2.0, "a"), {"k": np.int64(3)})
    assert key == cache_key("x", 1, [2.0, "a"], {"k": 3}) and key != cache_key("x", 2)
    assert cache.get(key) is None
    assert cache.put(key, {"a": np.arange(5, dtype=np.int16)}, {"v": [1.5, "inf"]})
    entry = cache.get(key)
    assert entry.arrays["a"].tolist() == [0, 1, 2, 3, 4] and entry.meta == {"v": [1.5, "inf"]}
    with pytest.raises(DynconfError, match="object arrays"):
        cache.put(key, {"o": np.array([{}], dtype=object)})
    with pytest.raises(DynconfError, match="hex"):
        cache.get("../../etc/passwd")
    # Bounded: older entries go first.
    for i in range(10):
        cache.put(cache_key(i), {"a": np.zeros(200)})
    assert cache.size_bytes() <= 6000 and cache.get(cache_key(9)) is not None
    assert cache.put(cache_key("big"), {"a": np.zeros(10_000)}) is False  # over the bound
    # A damaged entry is a miss and is removed.
    path = cache.path(cache_key(9))
    path.write_bytes(b"PK\x03\x04 not a zip")
    assert cache.get(cache_key(9)) is None and not path.exists()
    cache.clear()
    assert cache.entries() == []
    # Turned off, or a folder that cannot be written: every put is skipped, nothing raised.
    monkeypatch.setenv("DYNCONF_CACHE_DIR", "off")
    assert AnalysisCache().put(key, {}) is False and AnalysisCache().get(key) is None
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert AnalysisCache(blocker / "sub").put(key, {"a": np.zeros(2)}) is False
