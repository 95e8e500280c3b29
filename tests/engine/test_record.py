"""record_run on real SpikingJelly and snnTorch networks equals a loop written by hand here.

Each test builds a tiny network with the installed framework, runs the plain loop a user
would write (reset, step T times, keep each step's output, count the spikes of every hidden
neuron layer by walking the layers), and compares every array of the recorded run with it,
exactly, in float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dynconf.core.store import load_run
from dynconf.engine.frameworks import poisson_seed
from dynconf.errors import DynconfError
from dynconf.record import record_run

sj = pytest.importorskip("spikingjelly.activation_based")
snn = pytest.importorskip("snntorch")
from snntorch import utils as snn_utils  # noqa: E402
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402

T = 6


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def digits_like(n=45, seed=0, shape=(1, 8, 8)):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *shape), generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return x, y


def batched(x, y, size=16):
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(y), size)]


def hand_loop(net, batches, step, is_hidden, reset, frames=None):
    """The user's loop: per batch reset, T steps through the layers one by one."""
    outputs, spikes = [], []
    for b, (x, _) in enumerate(batches):
        reset(net)
        out_b, spk_b = [], []
        inputs = frames(x, b) if frames else [x] * T
        for t in range(T):
            z, count = inputs[t], torch.zeros(len(x), dtype=torch.int64)
            for module in net:
                z = module(z)
                if is_hidden(module):
                    s = z[0] if isinstance(z, tuple) else z
                    count += (s != 0).reshape(len(x), -1).sum(1)
            out_b.append(step(z).clone())
            spk_b.append(count)
        outputs.append(torch.stack(out_b))
        spikes.append(torch.stack(spk_b))
        reset(net)
    return torch.cat(outputs, 1).numpy(), torch.cat(spikes, 1).numpy().astype(np.float32)


def assert_same_run(run, split, outputs, spikes, labels):
    sp = run.split(split)
    assert np.asarray(sp.outputs).dtype == np.float32
    np.testing.assert_array_equal(np.asarray(sp.outputs), outputs)
    np.testing.assert_array_equal(np.asarray(sp.spikes), spikes)
    np.testing.assert_array_equal(np.asarray(sp.labels), labels)
    np.testing.assert_array_equal(np.asarray(sp.ids), np.arange(len(labels)))


# --------------------------------------------------------------------------- SpikingJelly


def sj_single_step_net():
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 40),
        neuron.IFNode(v_threshold=0.5),
        nn.Linear(40, 24),
        neuron.LIFNode(tau=2.0, v_threshold=0.3),
        nn.Linear(24, 10),
    )


def test_spikingjelly_single_step_equals_the_hand_loop(tmp_path, capfd):
    net = sj_single_step_net()
    x, y = digits_like()
    batches = batched(x, y)
    run = record_run(net, batches, T=T, out=tmp_path / "sj", dataset="digits-like")

    with torch.no_grad():
        outputs, spikes = hand_loop(
            net.eval(),
            batches,
            step=lambda z: z,
            is_hidden=lambda m: isinstance(m, neuron.BaseNode),
            reset=functional.reset_net,
        )
    assert_same_run(run, "test", outputs, spikes, y.numpy())
    assert spikes.sum() > 0, "the test network must spike"
    assert run.T_max == T and run.K == 10 and run.meta["neurons"] == 40 + 24
    rec = run.meta["recording"]
    assert rec["framework"] == "spikingjelly" and rec["framework_version"] == "2.0.0"
    assert rec["step_mode"] == "single-step" and rec["encoder"] == "direct"
    assert rec["spike_layers"] == {"2": 40, "4": 24} and rec["output_layers"] == []
    said = capfd.readouterr().err
    assert "record: SpikingJelly 2.0.0, single-step network" in said
    # the same run reads back from disk as it was returned
    assert load_run(run.path).meta == run.meta


def sj_multi_step_net():
    torch.manual_seed(2)
    net = nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1),
        neuron.IFNode(v_threshold=0.4),
        layer.AvgPool2d(2),
        layer.Flatten(),
        layer.Linear(4 * 4 * 4, 10),
        neuron.LIFNode(tau=2.0, v_threshold=0.2),  # output neuron: its spikes are the scores
    )
    functional.set_step_mode(net, "m")
    return net


@pytest.mark.parametrize("encoder", ["direct", "poisson"])
def test_spikingjelly_multi_step_equals_the_hand_loop(tmp_path, encoder):
    net = sj_multi_step_net()
    x, y = digits_like(40, seed=3)
    batches = batched(x, y, 16)
    run = record_run(net, batches, T=T, out=tmp_path / "m", encoder=encoder, seed=5)

    def sequence(xb, b):
        if encoder == "direct":
            return xb.unsqueeze(0).repeat(T, 1, 1, 1, 1)
        g = torch.Generator().manual_seed(poisson_seed(5, "test", b))
        return torch.stack([(torch.rand(xb.shape, generator=g) < xb).float() for _ in range(T)])

    outputs, spikes = [], []
    with torch.no_grad():
        for b, (xb, _) in enumerate(batches):
            functional.reset_net(net)
            z = sequence(xb, b)
            count = torch.zeros((T, len(xb)), dtype=torch.int64)
            for i, module in enumerate(net):
                z = module(z)
                if isinstance(module, neuron.BaseNode) and i < len(net) - 1:
                    count += (z != 0).reshape(T, len(xb), -1).sum(2)
            outputs.append(z.clone())
            spikes.append(count)
    outputs = torch.cat(outputs, 1).numpy()
    spikes = torch.cat(spikes, 1).numpy().astype(np.float32)
    assert_same_run(run, "test", outputs, spikes, y.numpy())
    assert outputs.sum() > 0 and spikes.sum() > 0
    rec = run.meta["recording"]
    assert rec["step_mode"] == "multi-step" and rec["encoder"] == encoder
    assert rec["output_layers"] == ["5"] and rec["spike_layers"] == {"1": 4 * 8 * 8}
    assert run.meta["neurons"] == 4 * 8 * 8


def test_poisson_frames_are_rate_coded_and_seeded(tmp_path):
    """Rate coding: a pixel of intensity p spikes in about p of the steps; same seed, same
    draws; another seed, other draws."""

    class Echo:  # a 'callable' network that returns its input frame as 2 class scores
        def reset(self):
            pass

        def step(self, x_t):
            return x_t.reshape(len(x_t), 2)

    x = torch.tensor([[0.0, 1.0]] * 8 + [[0.25, 0.75]] * 8)
    y = torch.zeros(16, dtype=torch.int64)
    T_long = 400
    runs = [
        record_run(Echo(), [(x, y)], T=T_long, out=tmp_path / f"p{i}", encoder="poisson", seed=s)
        for i, s in enumerate((1, 1, 2))
    ]
    frames = [np.asarray(r.split("test").outputs) for r in runs]
    assert set(np.unique(frames[0])) <= {0.0, 1.0}
    np.testing.assert_array_equal(frames[0], frames[1])
    assert not np.array_equal(frames[0], frames[2])
    rate = frames[0].mean(0)  # [N, 2]
    assert (rate[:8, 0] == 0).all() and (rate[:8, 1] == 1).all()
    assert abs(rate[8:, 0].mean() - 0.25) < 0.03 and abs(rate[8:, 1].mean() - 0.75) < 0.03
    assert runs[0].meta["recording"]["framework"] == "callable"


# --------------------------------------------------------------------------- snnTorch


def snntorch_net(output=True):
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 32),
        snn.Leaky(beta=0.8, threshold=0.5, init_hidden=True),
        nn.Linear(32, 10),
        snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True, output=output),
    )


@pytest.mark.parametrize("readout", [None, "membrane", "spikes"])
def test_snntorch_equals_the_hand_loop(tmp_path, readout):
    net = snntorch_net()
    x, y = digits_like(40, seed=4)
    batches = batched(x, y, 16)
    run = record_run(net, batches, T=T, out=tmp_path / "snt", readout=readout)
    last = net[-1]
    pick = (lambda z: z[0]) if readout == "spikes" else (lambda z: z[1])
    with torch.no_grad():
        outputs, spikes = hand_loop(
            net.eval(),
            batches,
            step=pick,
            is_hidden=lambda m: isinstance(m, snn.SpikingNeuron) and m is not last,
            reset=snn_utils.reset,
        )
    assert_same_run(run, "test", outputs, spikes, y.numpy())
    assert spikes.sum() > 0
    rec = run.meta["recording"]
    assert rec["framework"] == "snntorch" and rec["framework_version"] == "1.0.0"
    assert rec["readout"] == (readout or "membrane")
    assert rec["output_layers"] == ["4"] and run.meta["neurons"] == 32


def test_snntorch_nested_neurons_are_reset_between_batches(tmp_path):
    """snntorch.utils.reset only looks at a network's top-level children: neurons inside a
    sub-module keep their state into the next batch of a hand-written loop. The recorder
    also resets every neuron itself, so the same batch twice gives the same outputs."""

    class Nested(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = snntorch_net(output=False)  # returns the output neuron's spikes

        def forward(self, x):
            return self.body(x)

    torch.manual_seed(0)
    net = Nested()
    x, y = digits_like(16, seed=6)
    x = x * 3
    with torch.no_grad():  # the trap, reproduced: utils.reset alone leaks state
        snn_utils.reset(net)
        first = [net(x).clone() for _ in range(T)]
        snn_utils.reset(net)
        second = [net(x).clone() for _ in range(T)]
    assert not all(torch.equal(a, b) for a, b in zip(first, second, strict=True))

    run = record_run(net, [(x, y), (x, y)], T=T, out=tmp_path / "nested", readout="spikes")
    outputs = np.asarray(run.split("test").outputs)
    np.testing.assert_array_equal(outputs[:, :16], outputs[:, 16:])
    np.testing.assert_array_equal(outputs[:, :16], torch.stack(first).numpy())


# --------------------------------------------------------------------------- callable


class Counter:
    """A 'callable' network: a leaky sum of its frames, with spikes of its own."""

    def __init__(self):
        self.seen = []
        self.resets = 0
        self.v = None

    def reset(self):
        self.v = None
        self.resets += 1

    def step(self, x_t):
        self.seen.append(x_t.clone())
        flat = x_t.reshape(len(x_t), -1)
        self.v = flat if self.v is None else 0.5 * self.v + flat
        return self.v[:, :3].clone(), (self.v > 0.5).sum(1)


def test_callable_with_sequence_inputs_is_fed_step_by_step(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.rand((10, T, 4), generator=g)  # [B, T, features]: already a sequence
    y = torch.randint(0, 3, (10,), generator=g)
    ids = torch.arange(100, 110)
    model = Counter()
    run = record_run(
        model, [(x[:6], y[:6], ids[:6]), (x[6:], y[6:], ids[6:])], T=T, out=tmp_path / "c",
        encoder="sequence", neurons=4, classes=["a", "b", "c"],
    )  # fmt: skip
    assert len(model.seen) == 2 * T and model.resets == 4  # before and after each batch
    np.testing.assert_array_equal(torch.stack(model.seen[:T], 1).numpy(), x[:6].numpy())
    v, expected, spikes = None, [], []
    for t in range(T):
        v = x[:, t] if v is None else 0.5 * v + x[:, t]
        expected.append(v[:, :3])
        spikes.append((v > 0.5).sum(1))
    # batch 2 starts from a reset state, as batch 1 did
    v2 = None
    for t in range(T):
        v2 = x[6:, t] if v2 is None else 0.5 * v2 + x[6:, t]
        expected[t][6:] = v2[:, :3]
        spikes[t][6:] = (v2 > 0.5).sum(1)
    sp = run.split("test")
    np.testing.assert_array_equal(np.asarray(sp.outputs), torch.stack(expected).numpy())
    np.testing.assert_array_equal(np.asarray(sp.spikes), torch.stack(spikes).numpy())
    np.testing.assert_array_equal(np.asarray(sp.ids), ids.numpy())
    assert run.classes == ["a", "b", "c"] and run.meta["neurons"] == 4


def test_several_splits_in_one_call(tmp_path):
    net = sj_single_step_net()
    x, y = digits_like(60, seed=7)
    run = record_run(
        net,
        {"calibration": batched(x[:30], y[:30]), "test": batched(x[30:], y[30:])},
        T=T,
        out=tmp_path / "two",
        progress=False,
    )
    assert run.split_names == ("calibration", "test")
    assert run.meta["splits"] == {"calibration": 30, "test": 30}
    alone = record_run(net, batched(x[30:], y[30:]), T=T, out=tmp_path / "one", progress=False)
    np.testing.assert_array_equal(
        np.asarray(run.split("test").outputs), np.asarray(alone.split("test").outputs)
    )
    assert set(run.meta["snn_accuracy_by_T"]) == {"calibration", "test"}


def test_model_mode_and_hooks_are_restored(tmp_path):
    net = sj_single_step_net().train()
    x, y = digits_like(8)
    record_run(net, [(x, y)], T=2, out=tmp_path / "r", progress=False)
    assert net.training
    assert all(not m._forward_hooks for m in net.modules())
    assert getattr(net[2], "v", 0.0) == 0.0  # state reset after the last batch


# --------------------------------------------------------------------------- bad input


class NoNeurons(nn.Module):
    def forward(self, x):
        return x


# name -> (what differs from a good call, the message expected)
ERROR_CASES = {
    "unknown framework": ({"framework": "brian2"}, "unknown framework"),
    "T < 1": ({"T": 0}, "T must be"),
    "not [B, K]": ({"model": "wide"}, r"shape \(8, 10, 2\), expected \[B, K\] = \[8, K\]"),
    "no framework": ({"model": "no neurons"}, "cannot tell which framework NoNeurons"),
    "poisson range": ({"encoder": "poisson", "scale": 4}, r"in \[0, 1\]"),
    "sequence T": ({"encoder": "sequence"}, "sequence inputs must be"),
    "encoder": ({"encoder": "latency"}, "unknown encoder"),
    "classes": ({"classes": ["a", "b"]}, "2 class names given"),
    "init_hidden": ({"model": "stateless snntorch"}, "init_hidden=False"),
    "labels": ({"labels": 5}, "5 labels for inputs of shape"),
    "split name": ({"split": "../x"}, "split name"),
    "readout": ({"readout": "membrane"}, "readout 'membrane'"),
    "exists": ({"out": "existing"}, "already exists"),
}


def bad_model(kind):
    if kind == "wide":
        return nn.Sequential(
            nn.Flatten(), nn.Linear(64, 20), neuron.IFNode(), nn.Unflatten(1, (10, 2))
        )
    if kind == "no neurons":
        return NoNeurons()
    if kind == "stateless snntorch":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 10), snn.Leaky(beta=0.5))
    return sj_single_step_net()


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_bad_input_gives_one_line_errors_and_writes_nothing(tmp_path, case):
    options, message = dict(ERROR_CASES[case][0]), ERROR_CASES[case][1]
    x, y = digits_like(8)
    model = bad_model(options.pop("model", None))
    x = x * options.pop("scale", 1)
    y = y[: options.pop("labels", len(y))]
    out = tmp_path / "bad"
    target = tmp_path if options.pop("out", None) == "existing" else out
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(DynconfError, match=message) as info:
        record_run(model, [(x, y)], out=target, T=options.pop("T", 4), progress=False, **options)
    assert "\n" not in str(info.value)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no work folder either


# --------------------------------------------------------------------------- resume


def test_interrupted_recording_resumes_to_the_same_run(tmp_path):
    net = sj_single_step_net()
    x, y = digits_like(80, seed=8)
    batches = batched(x, y, 16)
    whole = record_run(net, batches, T=T, out=tmp_path / "whole", progress=False)

    def interrupted():
        yield from batches[:3]
        raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        record_run(net, interrupted(), T=T, out=out, progress=False)
    work = tmp_path / ".resumed.partial"
    assert not out.exists() and len(list(work.glob("test-*.npz"))) == 3

    # other settings, or other batches at a recorded position, are refused, never spliced
    with pytest.raises(DynconfError, match="other settings"):
        record_run(net, batches, T=T + 1, out=out, progress=False)
    shuffled = [batches[1], batches[0], *batches[2:]]
    with pytest.raises(DynconfError, match="batch 1 is not the batch recorded"):
        record_run(net, shuffled, T=T, out=out, progress=False)

    resumed = record_run(net, batches, T=T, out=out, progress=False)
    assert not work.exists()
    for role in ("outputs", "spikes", "labels", "ids"):
        np.testing.assert_array_equal(
            np.asarray(getattr(resumed.split("test"), role)),
            np.asarray(getattr(whole.split("test"), role)),
        )
