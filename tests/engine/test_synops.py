"""Synaptic operations: the hooks' counts equal a plain per-sample, per-step loop over every
input spike and every connection it travels (stride, padding, groups, pooling, linear),
in dynconf's SNN (bulk and real early exit) and in SpikingJelly / snnTorch recordings; runs
with and without synops load and evaluate."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from dynconf.core.decoders import decode
from dynconf.core.metrics import evaluate
from dynconf.core.store import load_run, save_run
from dynconf.engine.models.qcfs import QCFS
from dynconf.engine.snn import SpikingNetwork, simulate, simulate_early_exit
from dynconf.engine.synops import conv_fanout
from dynconf.errors import RunFormatError

# --------------------------------------------------------------------------- the reference


def ref_layer_synops(layer: nn.Module, x: np.ndarray) -> int:
    """SynOps of one sample's input ``x`` (no batch axis) into ``layer``: for every non-zero
    element, every output element it is connected to, found by walking the kernel."""
    if isinstance(layer, nn.Linear):
        return int(np.count_nonzero(x)) * layer.out_features
    C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.dilation,
    )
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    per_group_out = layer.out_channels // layer.groups
    total = 0
    for _channel, i, j in zip(*np.nonzero(x), strict=True):
        # output positions (p, q) that read input (i, j): p * s - pad + k * d == i for a k
        positions = 0
        for p in range(Ho):
            for q in range(Wo):
                rows = any(p * sh - ph + a * dh == i for a in range(kh))
                cols = any(q * sw - pw + b * dw == j for b in range(kw))
                positions += rows and cols
        total += positions * per_group_out  # channel c feeds the out-channels of its group
    return total


def dyadic(shape, scale, gen) -> torch.Tensor:
    """Small multiples of 1/8: every sum the tiny networks form is exact in float32, so the
    per-sample reference fires exactly the same spikes as the batched simulation."""
    return torch.randint(-4, 6, shape, generator=gen).float() * scale / 8


class TinyQCFS(nn.Module):
    """Stride 1 and 2 convolutions, groups, padding, average pooling and a linear head."""

    def __init__(self, gen):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.act1 = QCFS(4, 1.0)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False)
        self.act2 = QCFS(4, 1.0)
        self.pool = nn.AvgPool2d(2)
        self.conv3 = nn.Conv2d(6, 4, 3, padding=1, bias=False)
        self.act3 = QCFS(4, 1.0)
        self.fc = nn.Linear(16, 5, bias=False)
        with torch.no_grad():
            for m in (self.conv1, self.conv2, self.conv3, self.fc):
                m.weight.copy_(dyadic(m.weight.shape, 1.0, gen))

    def forward(self, x):
        x = self.act1(self.conv1(x))
        x = self.act2(self.conv2(x))
        x = self.act3(self.conv3(self.pool(x)))
        return self.fc(torch.flatten(x, 1))


def ref_qcfs_synops(net: TinyQCFS, images: torch.Tensor, T: int) -> np.ndarray:
    """[T, N] by hand: each sample alone, IF neurons (v0 = theta/2, soft reset) step by step;
    conv1 reads the analog image (not counted), every later layer reads spikes."""
    theta = 1.0

    def fire(v: dict, k: int, current: torch.Tensor) -> torch.Tensor:
        if k not in v:
            v[k] = torch.full_like(current, theta / 2)
        v[k] += current
        s = (v[k] >= theta).float() * theta
        v[k] -= s
        return s

    out = np.zeros((T, len(images)), dtype=np.int64)
    with torch.no_grad():
        for n, image in enumerate(images):
            v = {}  # membranes of this sample, per layer
            for t in range(T):
                s1 = fire(v, 0, net.conv1(image[None]))
                s2 = fire(v, 1, net.conv2(s1))
                pooled = net.pool(s2)
                s3 = fire(v, 2, net.conv3(pooled))
                out[t, n] = (
                    ref_layer_synops(net.conv2, s1[0].numpy())
                    + ref_layer_synops(net.conv3, pooled[0].numpy())
                    + ref_layer_synops(net.fc, torch.flatten(s3, 1)[0].numpy())
                )
    return out


@pytest.fixture
def tiny():
    gen = torch.Generator().manual_seed(3)
    net = TinyQCFS(gen).eval()
    images = torch.randint(0, 9, (7, 2, 8, 8), generator=gen).float() / 8
    return net, images


# --------------------------------------------------------------------------- tests


def test_conv_fanout_counts_the_outputs_each_input_feeds():
    conv = nn.Conv2d(1, 1, 3, stride=2, padding=1, dilation=1)
    fan = conv_fanout(conv, (5, 6), "cpu")
    for i in range(5):
        for j in range(6):
            x = np.zeros((1, 5, 6))
            x[0, i, j] = 1
            assert fan[i, j] == ref_layer_synops(conv, x)
    # interior at stride 1: kernel area; a corner of a zero-padded 3x3: 4 positions
    fan1 = conv_fanout(nn.Conv2d(1, 1, 3, padding=1), (5, 5), "cpu")
    assert fan1[2, 2] == 9 and fan1[0, 0] == 4


@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_simulate_synops_equal_a_per_sample_loop(tiny, chunk):
    net, images = tiny
    T = 8
    got = simulate(SpikingNetwork(net), images, T, chunk=chunk)
    want = ref_qcfs_synops(net, images, T)
    assert got.synops.dtype == np.int64 and got.synops.shape == (T, len(images))
    assert want.sum() > 0 and (want > 0).mean() > 0.5  # spikes in most steps: a real test
    np.testing.assert_array_equal(got.synops, want)


@pytest.mark.parametrize("batch_size", [None, 3])
def test_early_exit_synops_are_those_spent_up_to_each_exit(tiny, batch_size):
    net, images = tiny
    T = 10
    snn = SpikingNetwork(net)
    full = simulate(snn, images, T)
    got = simulate_early_exit(snn, images, T, threshold=0.6, kappa=2.0, batch_size=batch_size)
    cumulative = np.cumsum(ref_qcfs_synops(net, images, T), axis=0)
    assert got.exit_steps.min() < T  # some samples exit early
    spent = cumulative[got.exit_steps - 1, np.arange(len(images))].sum()
    assert got.synops == spent < full.synops.sum()


def test_synops_saving_at_exit_from_a_run_and_a_run_without_synops(tmp_path):
    rng = np.random.default_rng(0)
    T, N, K = 6, 40, 3
    outputs = rng.normal(0, 1, (T, N, K)).astype(np.float32)
    labels = rng.integers(0, K, N)
    spikes = rng.integers(0, 50, (T, N)).astype(np.float32)
    synops = rng.integers(0, 10**9, (T, N)).astype(np.int64)
    run = save_run(tmp_path / "with", {"test": {"outputs": outputs, "labels": labels,
                                                "spikes": spikes, "synops": synops}})  # fmt: skip
    bare = save_run(tmp_path / "without", {"test": {"outputs": outputs, "labels": labels}})
    assert load_run(run.path).split("test").synops.dtype == np.int64

    sp = load_run(run.path).split("test")
    dec = decode(sp, "paper", kappa=float(T))
    res = evaluate(dec, 0.5, spikes=sp.spikes, synops=sp.synops)
    cum = np.cumsum(synops.astype(np.float64), axis=0)
    at_exit = cum[res.exit_steps - 1, np.arange(N)]
    assert res.exit_steps.min() < T
    assert res.synops_per_sample_at_exit == pytest.approx(at_exit.mean(), rel=1e-15)
    assert res.synops_per_sample_full == pytest.approx(cum[-1].mean(), rel=1e-15)
    assert res.synops_saving == pytest.approx(1 - at_exit.mean() / cum[-1].mean(), rel=1e-12)
    assert res.to_dict()["synops_saving"] == res.synops_saving

    sp0 = load_run(bare.path).split("test")
    assert sp0.synops is None
    res0 = evaluate(decode(sp0, "paper", kappa=float(T)), 0.5, synops=sp0.synops)
    assert res0.synops_saving is None and res0.synops_per_sample_full is None

    for path, has in ((run.path, True), (bare.path, False)):
        done = subprocess.run(
            [sys.executable, "-m", "dynconf", "evaluate", str(path),
             "--split", "test", "--threshold", "0.5"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert ("; synops -" in done.stdout) == has, done.stdout
        if has:
            assert f"synops -{100 * res.synops_saving:.1f} %" in done.stdout
        done = subprocess.run(
            [sys.executable, "-m", "dynconf", "evaluate", str(path),
             "--split", "test", "--threshold", "0.5", "--json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        saving = json.loads(done.stdout)["synops_saving"]
        assert saving == (pytest.approx(res.synops_saving) if has else None)


def test_bad_synops_arrays_are_refused(tmp_path):
    outputs = np.zeros((4, 5, 3), np.float32)
    labels = np.zeros(5, np.int64)
    for synops, problem in (
        (np.zeros((4, 4), np.int64), "synops has shape"),
        (-np.ones((4, 5), np.int64), "synops must be >= 0"),
        (np.full((4, 5), np.nan), "synops contain NaN"),
    ):
        with pytest.raises(RunFormatError, match=problem):
            save_run(tmp_path / "bad", {"test": {"outputs": outputs, "labels": labels,
                                                 "synops": synops}})  # fmt: skip


# --------------------------------------------------------------------------- the recorder


def ref_sequential_synops(net: nn.Sequential, frames: torch.Tensor, reset, is_neuron):
    """[T, N] by hand for a Sequential network stepped one sample and one step at a time:
    a Linear/Conv layer's input counts when a neuron came before it, or when it is 0/1."""
    T, N = frames.shape[:2]
    out = np.zeros((T, N), dtype=np.int64)
    with torch.no_grad():
        for n in range(N):
            reset(net)
            for t in range(T):
                h, fired = frames[t, n : n + 1], False
                for child in net:
                    if isinstance(child, (nn.Linear, nn.Conv2d)):
                        binary = bool(((h == 0) | (h == 1)).all())
                        if fired or binary:
                            out[t, n] += ref_layer_synops(child, h[0].numpy())
                    h = child(h)
                    h = h[0] if isinstance(h, tuple) else h
                    fired = fired or is_neuron(child)
            reset(net)
    return out


def set_dyadic(net: nn.Module, gen) -> None:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.copy_(dyadic(m.weight.shape, 1.0, gen))
                if m.bias is not None:
                    m.bias.zero_()


def digits_like(gen, n=6):
    return torch.randint(0, 9, (n, 1, 8, 8), generator=gen).float() / 8, torch.arange(n) % 3


@pytest.mark.parametrize("mode,encoder", [("s", "poisson"), ("m", "direct"), ("m", "poisson")])
def test_spikingjelly_recording_synops_equal_a_per_sample_loop(tmp_path, mode, encoder):
    sj = pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import functional, layer, neuron

    from dynconf.engine.frameworks import Frames, poisson_seed
    from dynconf.record import record_run

    gen = torch.Generator().manual_seed(5)
    net = nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1, bias=False),
        neuron.IFNode(v_threshold=1.0),
        layer.AvgPool2d(2),
        layer.Conv2d(4, 4, 3, stride=2, padding=1, groups=2, bias=False),
        neuron.IFNode(v_threshold=1.0),
        layer.Flatten(),
        layer.Linear(16, 3, bias=False),
    )
    set_dyadic(net, gen)
    functional.set_step_mode(net, mode)
    x, y = digits_like(gen)
    T = 6
    run = record_run(net, [(x, y)], T=T, out=tmp_path / "run", encoder=encoder, progress=False)
    assert sj is not None and run.meta["recording"]["synops"] == "recorded"

    frames = Frames(x, T, encoder, seed=poisson_seed(0, "test", 0)).sequence()
    reference = __import__("copy").deepcopy(net)
    functional.set_step_mode(reference, "s")
    want = ref_sequential_synops(
        reference, frames, functional.reset_net, lambda m: isinstance(m, neuron.BaseNode)
    )
    got = np.asarray(run.split("test").synops)
    assert want.sum() > 0 and (want[:, :] > 0).mean() > 0.5
    np.testing.assert_array_equal(got, want)
    # poisson input is spikes: the first layer's input counts; direct input is analog: it does not
    first = "0" in run.meta["recording"]["synops_layers"]
    assert first == (encoder == "poisson")


def test_snntorch_recording_synops_equal_a_per_sample_loop(tmp_path):
    snn = pytest.importorskip("snntorch")
    from snntorch import utils

    from dynconf.engine.frameworks import Frames
    from dynconf.record import record_run

    gen = torch.Generator().manual_seed(7)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False),
        snn.Leaky(beta=0.5, init_hidden=True),
        nn.AvgPool2d(2),
        nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2, bias=False),
        snn.Leaky(beta=0.5, init_hidden=True),
        nn.Flatten(),
        nn.Linear(16, 3, bias=False),
    )
    set_dyadic(net, gen)
    x, y = digits_like(gen)
    T = 6
    run = record_run(net, [(x, y)], T=T, out=tmp_path / "run", progress=False)

    def reset(model):
        utils.reset(model)
        for m in model.modules():
            if isinstance(m, snn.SpikingNeuron):
                m.reset_mem()

    frames = Frames(x, T, "direct").sequence()
    want = ref_sequential_synops(net, frames, reset, lambda m: isinstance(m, snn.SpikingNeuron))
    assert want.sum() > 0
    np.testing.assert_array_equal(np.asarray(run.split("test").synops), want)


def test_a_recording_without_synops_loads_and_evaluates(tmp_path):
    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import neuron

    from dynconf.record import record_run

    gen = torch.Generator().manual_seed(1)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), neuron.IFNode(), nn.Linear(8, 3))
    x, y = digits_like(gen)
    run = record_run(net, [(x, y)], T=4, out=tmp_path / "run", progress=False,
                     count_synops=False)  # fmt: skip
    sp = load_run(run.path).split("test")
    assert sp.synops is None and sp.spikes is not None
    assert run.meta["recording"]["synops"] == "not recorded"
    res = evaluate(decode(sp, "paper"), 0.5, spikes=sp.spikes, synops=sp.synops)
    assert res.synops_saving is None and res.spike_saving is not None
