"""Encoders are classes with a registry (direct, poisson, sequence) plus a user's callable; each
gives the frames its definition says, and a recording with a callable encoder equals the hand
loop fed with the same frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dynconf.engine.frameworks import ENCODERS, Encoder, Frames, make_encoder, poisson_seed
from dynconf.errors import DynconfError
from dynconf.record import record_run

pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, neuron  # noqa: E402

T = 4


def test_the_registry_names_every_built_in_encoder():
    assert set(ENCODERS) == {"direct", "poisson", "sequence"}
    for name, cls in ENCODERS.items():
        assert issubclass(cls, Encoder) and cls.name == name
        assert isinstance(make_encoder(name), cls)
    custom = make_encoder(lambda x, t: x * t)
    assert custom.name == "callable <lambda>"
    assert make_encoder(custom) is custom
    with pytest.raises(DynconfError, match="unknown encoder 'latency'"):
        make_encoder("latency")


def test_frames_follow_each_definition():
    x = torch.rand(3, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(Frames(x, T, "direct").sequence(), x.expand(T, 3, 5))
    seq = torch.rand(3, T, 5)
    assert torch.equal(Frames(seq, T, "sequence").sequence(), seq.transpose(0, 1))
    seed = poisson_seed(0, "test", 2)
    g = torch.Generator().manual_seed(seed)
    expected = torch.stack([(torch.rand(x.shape, generator=g) < x).float() for _ in range(T)])
    assert torch.equal(Frames(x, T, "poisson", seed=seed).sequence(), expected)
    frames = Frames(x, T, lambda x, t: x + t)
    assert torch.equal(torch.stack([frames.at(t) for t in range(T)]),
                       torch.stack([x + t for t in range(T)]))  # fmt: skip


def test_a_callable_encoder_records_like_the_hand_loop(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), neuron.IFNode(), nn.Linear(8, 3)).eval()
    x, y = torch.rand(6, 1, 4, 4), torch.randint(0, 3, (6,))

    def ramp(x, t):  # a latency-like ramp: the input grows over the steps
        return x * (t + 1) / T

    run = record_run(net, [(x, y)], T=T, out=tmp_path / "r", encoder=ramp, progress=False)
    with torch.no_grad():
        functional.reset_net(net)
        expected = torch.stack([net(ramp(x, t)) for t in range(T)]).numpy()
    np.testing.assert_array_equal(np.asarray(run.split("test").outputs), expected)
    assert run.meta["recording"]["encoder"] == "callable ramp"


def test_a_callable_encoder_that_returns_the_wrong_shape_is_one_line(tmp_path):
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3), neuron.IFNode())
    x, y = torch.rand(6, 1, 4, 4), torch.randint(0, 3, (6,))
    with pytest.raises(DynconfError, match="encoder callable <lambda> returned") as info:
        record_run(net, [(x, y)], T=T, out=tmp_path / "r", encoder=lambda x, t: x[:2],
                   progress=False)  # fmt: skip
    assert "\n" not in str(info.value)
