"""The engine's real early exit runs any causal exit policy of dynconf.core.policies, read
through any decoder, and exits every sample exactly where the cached run says."""

from __future__ import annotations

import numpy as np
import pytest

from dynconf.core.decoders import DECODERS, decode_outputs
from dynconf.core.policies import Patience, Threshold
from dynconf.engine.snn import SpikingNetwork, simulate, simulate_early_exit

T = 20


@pytest.fixture(scope="module")
def cached(digits_checkpoint):
    from dynconf.engine.checkpoint import load_checkpoint, model_from_checkpoint
    from dynconf.engine.data import load_digits

    ann = model_from_checkpoint(load_checkpoint(digits_checkpoint)).eval()
    test = load_digits().splits["test"]
    x, y, _ = next(test.batches(len(test)))
    snn = SpikingNetwork(ann.double())
    x = x[:120].double()
    return snn, x, simulate(snn, x, T=T).outputs, y[:120].numpy()


@pytest.mark.parametrize("decoder", ["paper", "mean", "margin", "gap", "entropy"])
@pytest.mark.parametrize(
    "policy", [Threshold(0.85), Patience(0.7, 3)], ids=["threshold", "patience"]
)
@pytest.mark.parametrize("batch_size", [None, 7])
def test_real_early_exit_equals_the_cached_policy(cached, decoder, policy, batch_size):
    snn, x, outputs, labels = cached
    kappa = 6.0 if DECODERS[decoder].uses_kappa else None
    dec = decode_outputs(outputs, labels, decoder, kappa)
    want = policy.evaluate(dec)
    got = simulate_early_exit(
        snn, x, T_max=T, kappa=kappa, batch_size=batch_size, policy=policy, decoder=decoder
    )
    np.testing.assert_array_equal(got.exit_steps, want.exit_steps)
    np.testing.assert_array_equal(got.predictions, want.predictions)
    assert got.sample_steps == want.exit_steps.sum()
    assert 1 < want.mean_latency < T  # the policy really exits some samples early
