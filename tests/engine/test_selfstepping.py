"""A model whose forward loops over time itself (SpikingJelly's CSNN style: repeat the input T
times, run a multi-step body, return the mean) is refused with one line naming the fix, and
records exactly through ``steps_itself=True``; so does a single-step body called T times."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dynconf.errors import DynconfError
from dynconf.record import record_run

pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402

T = 5


class CSNN(nn.Module):
    """Like SpikingJelly's conv_fashion_mnist CSNN: forward repeats x T times, returns the
    mean firing rate of the output neurons."""

    def __init__(self, T: int):
        super().__init__()
        self.T = T
        self.conv_fc = nn.Sequential(
            layer.Conv2d(1, 4, 3, padding=1), neuron.IFNode(v_threshold=0.5),
            layer.Flatten(), layer.Linear(4 * 8 * 8, 10), neuron.IFNode(v_threshold=0.2),
        )  # fmt: skip
        functional.set_step_mode(self, "m")

    def forward(self, x):
        x_seq = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        return self.conv_fc(x_seq).mean(0)


class LoopingMLP(nn.Module):
    """A single-step body called T times inside forward, outputs averaged."""

    def __init__(self, T: int):
        super().__init__()
        self.T = T
        self.body = nn.Sequential(layer.Flatten(), layer.Linear(64, 32), neuron.IFNode(),
                                  layer.Linear(32, 10))  # fmt: skip

    def forward(self, x):
        return torch.stack([self.body(x) for _ in range(self.T)]).mean(0)


def data(n: int = 12):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_csnn_without_the_mode_gets_one_line_naming_the_fix(tmp_path):
    torch.manual_seed(0)
    x, y = data()
    with pytest.raises(DynconfError, match="steps_itself=True") as info:
        record_run(CSNN(T), [(x, y)], T=T, out=tmp_path / "r", progress=False)
    assert "\n" not in str(info.value) and "conv_fc" in str(info.value)
    assert not (tmp_path / "r").exists()


def test_csnn_records_its_per_step_outputs_through_the_hook(tmp_path):
    torch.manual_seed(0)
    net = CSNN(T).eval()
    x, y = data()
    run = record_run(net, [(x[:8], y[:8]), (x[8:], y[8:])], T=T, out=tmp_path / "r",
                     steps_itself=True, progress=False)  # fmt: skip
    outputs = np.asarray(run.split("test").outputs)
    with torch.no_grad():
        expected = []
        for part in (x[:8], x[8:]):
            functional.reset_net(net)
            expected.append(net.conv_fc(part.unsqueeze(0).repeat(T, 1, 1, 1, 1)))
            functional.reset_net(net)
            mean = net(part)
            np.testing.assert_allclose(expected[-1].mean(0).numpy(), mean.numpy(), rtol=1e-6)
        expected = torch.cat(expected, dim=1).numpy()
    np.testing.assert_array_equal(outputs, expected)
    recording = run.meta["recording"]
    assert recording["steps_itself"] is True
    # the output neurons are not hidden; the first IF layer is (4 x 8 x 8 neurons)
    assert recording["output_layers"] == ["conv_fc.4"] and run.meta["neurons"] == 256
    assert recording["synops"] == "recorded"


def test_a_single_step_body_called_T_times_is_stacked_in_order(tmp_path):
    torch.manual_seed(0)
    net = LoopingMLP(T).eval()
    x, y = data()
    run = record_run(net, [(x, y)], T=T, out=tmp_path / "r", steps_itself=True, progress=False)
    with torch.no_grad():
        functional.reset_net(net)
        expected = torch.stack([net.body(x) for _ in range(T)]).numpy()
    np.testing.assert_array_equal(np.asarray(run.split("test").outputs), expected)
    assert run.meta["neurons"] == 32


def test_the_models_own_T_must_be_the_recordings(tmp_path):
    x, y = data()
    with pytest.raises(DynconfError, match="ran 5 steps, but T = 7") as info:
        record_run(CSNN(T), [(x, y)], T=7, out=tmp_path / "r", steps_itself=True,
                   progress=False)  # fmt: skip
    assert "\n" not in str(info.value)
