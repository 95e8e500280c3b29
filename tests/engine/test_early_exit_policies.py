"""The engine's real early exit runs any causal exit policy of dynconf.core.policies, read
through any decoder, and exits every sample exactly where the cached run says."""

from __future__ import annotations

import numpy as np
import pytest

from dynconf.core.decoders import DECODERS, decode_outputs
from dynconf.core.policies import (
    Conformal,
    Learned,
    Patience,
    Schedule,
    Threshold,
    TopkGap,
    attach_outputs,
)
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


def fitted(name, outputs, labels, decoder, kappa):
    """The policy lab's policies, calibrated on the first half of the cached run. The digits
    SNN is right at step 1 for most samples, so a fitted operating point would exit nearly
    all of them there; the operating points here are set to spread the exits instead."""
    half = len(labels) // 2
    use = "gap" if name == "topk_gap" else decoder
    cal = decode_outputs(outputs[:, :half], labels[:half], use, kappa if use == decoder else 6.0)
    attach_outputs(cal, outputs[:, :half])
    per_step = tuple(float(c) for c in np.quantile(cal.confidence, 0.8, axis=1))
    if name == "schedule":
        return Schedule(thresholds=per_step)
    if name == "topk_gap":
        return TopkGap(thresholds=per_step, kappa=cal.kappa)
    if name.startswith("conformal"):
        return Conformal(0.5, name.split("_")[1], (2, 5, 10, 20)).fit(cal)
    model = Learned().fit(cal, 0.0)
    cut = float(np.quantile(model.scored(cal).confidence, 0.7))
    return Learned(cut).fit(cal)


LAB = ["schedule", "topk_gap", "conformal_bonferroni", "conformal_simes", "learned"]


@pytest.mark.parametrize("decoder", ["paper", "mean", "margin", "gap", "entropy"])
@pytest.mark.parametrize(
    "policy", [Threshold(0.85), Patience(0.7, 3), *LAB], ids=["threshold", "patience", *LAB]
)
@pytest.mark.parametrize("batch_size", [None, 7])
def test_real_early_exit_equals_the_cached_policy(cached, decoder, policy, batch_size):
    snn, x, outputs, labels = cached
    kappa = 6.0 if DECODERS[decoder].uses_kappa else None
    if isinstance(policy, str):
        policy = fitted(policy, outputs, labels, decoder, kappa)
        # Compare on the samples it was not calibrated on: a calibration sample's own score
        # is a cut, a knife edge that the SNN's last-bit differences between batch shapes
        # (full batch cached, shrinking batch live) may tip either way.
        half = len(labels) // 2
        x, outputs, labels = x[half:], outputs[:, half:], labels[half:]
    use = policy.decoder or decoder
    dec = decode_outputs(outputs, labels, use, 6.0 if policy.decoder else kappa)
    attach_outputs(dec, outputs)
    want = policy.evaluate(dec)
    got = simulate_early_exit(
        snn, x, T_max=T, kappa=kappa, batch_size=batch_size, policy=policy, decoder=decoder
    )
    np.testing.assert_array_equal(got.exit_steps, want.exit_steps)
    np.testing.assert_array_equal(got.predictions, want.predictions)
    assert got.sample_steps == want.exit_steps.sum()
    assert 1 < want.mean_latency < T  # the policy really exits some samples early
