"""IF neurons and ANN-to-SNN conversion, against hand-computed sequences and QCFS theory."""

import numpy as np
import pytest
import torch
from torch import nn

from dynconf.engine.models import QCFS, build_model
from dynconf.engine.snn import IFNeurons, SpikingNetwork, simulate, simulate_early_exit


def run_if(currents, threshold, steps_at_once=1):
    """Drive one IF neuron with a sequence of currents; return its theta-weighted spikes."""
    layer = IFNeurons(threshold)
    out = []
    for start in range(0, len(currents), steps_at_once):
        chunk = torch.tensor(currents[start : start + steps_at_once], dtype=torch.float64)
        layer.steps, layer.batch = len(chunk), 1
        out += layer(chunk.view(-1, 1)).flatten().tolist()
    return out


def test_if_neuron_hand_computed_sequence():
    # theta = 1, v0 = 0.5:  v = 0.8 | 1.1 -> fire, 0.1 | 0.4 | 1.3 -> fire, 0.3 | 0.3 |
    # 2.8 -> fire, 1.8 (soft reset keeps the surplus) | 1.8 -> fire, 0.8 | 0.8 - 0.5 = 0.3
    currents = [0.3, 0.3, 0.3, 0.9, 0.0, 2.5, 0.0, -0.5]
    expected = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    assert run_if(currents, 1.0) == expected
    # the same sequence fed in multi-step chunks gives the same spikes
    assert run_if(currents, 1.0, steps_at_once=3) == expected
    # spikes carry the threshold as their value
    assert run_if([1.5, 1.0], 2.0) == [2.0, 0.0]  # v: 1 + 1.5 = 2.5 -> fire, 0.5; 1.5


def test_if_neuron_counts_and_state():
    layer = IFNeurons(1.0)
    layer.steps, layer.batch = 4, 2
    current = torch.tensor([[0.6, 0.0], [0.6, 0.0], [0.6, 3.0], [0.6, 0.0]], dtype=torch.float64)
    spikes = layer(current.reshape(8, 1)).view(4, 2)
    assert spikes[:, 0].tolist() == [1.0, 0.0, 1.0, 0.0]  # 0.5+0.6=1.1 fire; 0.7; 1.3 fire; 0.9
    assert spikes[:, 1].tolist() == [0.0, 0.0, 1.0, 1.0]  # 3.5 -> 2.5 -> 1.5 -> 0.5
    assert layer.last_counts.tolist() == [[1, 0], [0, 0], [1, 1], [0, 1]]


@pytest.mark.parametrize("levels", [1, 2, 3, 4, 8])
def test_constant_current_for_L_steps_reproduces_qcfs_exactly(levels):
    """QCFS theory: IF (v0 = theta/2, soft reset) over T = L steps == quantised activation."""
    torch.manual_seed(levels)
    act = QCFS(levels, init_threshold=1.7).double()
    z = torch.randn(5000, dtype=torch.float64) * 2
    layer = IFNeurons(1.7)
    layer.steps, layer.batch = levels, z.shape[0]
    spikes = layer(z.view(-1, 1)).view(levels, -1)
    assert torch.allclose(spikes.sum(0) / levels, act(z).detach(), atol=1e-12)


def test_one_hidden_layer_network_is_exact_at_T_equals_L():
    """With one spiking layer driven by a constant image, S_L / L equals the ANN output."""
    torch.manual_seed(0)
    levels = 4
    ann = nn.Sequential(nn.Linear(20, 64), QCFS(levels, 1.5), nn.Linear(64, 5)).double().eval()
    x = torch.randn(300, 20, dtype=torch.float64)
    result = simulate(SpikingNetwork(ann), x, T=levels, chunk=levels)
    with torch.no_grad():
        expected = ann(x).numpy()
    # outputs are recorded in float32; one spike more or less would move them by ~1e-2
    np.testing.assert_allclose(result.outputs.sum(0) / levels, expected, rtol=0, atol=1e-6)


def test_conversion_leaves_the_ann_untouched(trained_digits):
    ann, _ = trained_digits
    snn = SpikingNetwork(ann)
    assert any(isinstance(m, QCFS) for m in ann.modules())
    assert not any(isinstance(m, QCFS) for m in snn.modules())
    assert len(snn.layers) == 3
    assert [layer.threshold.item() for layer in snn.layers] == [
        m.threshold.item() for m in ann.modules() if isinstance(m, QCFS)
    ]


def test_no_qcfs_layer_is_an_error():
    with pytest.raises(ValueError, match="no QCFS layer"):
        SpikingNetwork(nn.Linear(3, 2))


def test_multi_step_equals_step_by_step(trained_digits):
    ann, (x, _) = trained_digits
    snn = SpikingNetwork(ann.double())
    x = x[:200].double()
    reference = simulate(snn, x, T=20, chunk=1)
    for chunk in (4, 7, 20):
        got = simulate(snn, x, T=20, chunk=chunk)
        np.testing.assert_array_equal(got.outputs, reference.outputs)
        np.testing.assert_array_equal(got.spikes, reference.spikes)
    assert snn.neurons == 16 * 64 + 32 * 64 + 64 * 16


def test_snn_accuracy_approaches_ann_as_T_grows(trained_digits):
    ann, (x, y) = trained_digits
    with torch.no_grad():
        ann_accuracy = (ann(x).argmax(1) == y).float().mean().item()
    result = simulate(SpikingNetwork(ann), x, T=64)
    accuracy = (result.outputs.cumsum(0).argmax(2) == y.numpy()).mean(1)
    assert ann_accuracy > 0.85
    assert accuracy[0] < accuracy[63]
    assert accuracy[63] >= ann_accuracy - 0.02
    assert np.mean(accuracy[32:]) >= np.mean(accuracy[:8])


def reference_exits(outputs, threshold, kappa):
    """Per-sample loop over the cached outputs: the paper's strict-threshold exit rule."""
    T, N, _ = outputs.shape
    steps, answers = np.full(N, T), np.zeros(N, dtype=int)
    for i in range(N):
        s = np.zeros(outputs.shape[2])
        for t in range(T):
            s = s + outputs[t, i]
            p = np.exp((s - s.max()) / kappa)
            p /= p.sum()
            if p.max() > threshold or t == T - 1:
                steps[i], answers[i] = t + 1, int(np.argmax(s))
                break
    return steps, answers


@pytest.mark.parametrize("batch_size", [None, 32, 5])
def test_early_exit_matches_the_cached_run(trained_digits, batch_size):
    """Dropping (and refilling) samples mid-run changes nothing for the samples that stay."""
    ann, (x, _) = trained_digits
    snn = SpikingNetwork(ann.double())
    x = x[:150].double()
    cached = simulate(snn, x, T=24)
    want_steps, want_answers = reference_exits(cached.outputs, 0.8, kappa=24)
    got = simulate_early_exit(snn, x, T_max=24, threshold=0.8, batch_size=batch_size)
    np.testing.assert_array_equal(got.exit_steps, want_steps)
    np.testing.assert_array_equal(got.predictions, want_answers)
    assert got.sample_steps == want_steps.sum()
    assert 1 < want_steps.mean() < 24  # the threshold really exits some samples early
    if batch_size == 5:
        assert got.steps_run < want_steps.sum()  # refilled batches: far fewer network steps


def test_randomly_initialised_resnet_converts_and_runs():
    torch.manual_seed(0)
    snn = SpikingNetwork(build_model("resnet20", 2, 10).eval())
    result = simulate(snn, torch.randn(3, 3, 32, 32), T=4, chunk=2)
    assert result.outputs.shape == (4, 3, 10) and result.spikes.shape == (4, 3)
    assert np.isfinite(result.outputs).all() and (result.spikes >= 0).all()


def test_exact_float32_turns_tf32_off_and_restores_it():
    from dynconf.engine.snn import exact_float32

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with exact_float32():
            assert not torch.backends.cuda.matmul.allow_tf32
            assert not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
