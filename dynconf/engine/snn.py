"""ANN-to-SNN conversion of QCFS networks and their simulation, in bulk or with real early exit.

Conversion (docs/METHOD.md section 6) copies the trained network and swaps every QCFS layer for a
layer of integrate-and-fire neurons with threshold ``theta = lambda``. Everything else (conv,
batch norm in eval mode, average pooling, residual additions, the linear head) is linear and
is applied to theta-weighted spikes as it is. Each IF neuron follows, per time step t:

    v_t   = v_{t-1} + I_t                    (integrate; v_0 = theta / 2)
    s_t   = theta * [v_t >= theta]           (fire)
    v_t   = v_t - s_t                        (soft reset: keep the surplus)

The output layer does not spike: its per-step output ``z_t`` is recorded, and the prediction
at step t is ``argmax(z_1 + ... + z_t)``. The same analog image drives the first layer at every
step (direct encoding).

Two ways to run the same network, which give the same outputs (tests check it):

* ``simulate`` (multi-step): time is folded into the batch. Every stateless layer processes a
  chunk of ``steps`` time steps of the whole batch in one call, and each IF layer loops over
  time only for its cheap elementwise update. The first layer's input is constant over time,
  so it is computed once per chunk instead of once per step. This is the fast path used to
  cache full-length runs (per-step outputs and hidden spike counts).
* ``simulate_early_exit`` (step by step): one step of the whole network at a time; after each
  step the confidence of every active sample is decoded and the samples that pass the
  threshold leave the batch (their membrane state is dropped), so fewer samples cost less
  compute and latency savings become wall-clock savings.

Both count synaptic operations too (dynconf/engine/synops.py has the exact definition: each
spike entering a conv or linear layer costs its fan-out; the analog image entering the first
layer is not counted): ``simulate`` per step and sample, ``simulate_early_exit`` in total, for
the samples while they run.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dynconf.engine.models.qcfs import QCFS
from dynconf.engine.synops import SynopsCounter


@contextlib.contextmanager
def exact_float32():
    """Run convolutions and matrix products in true float32 on CUDA: no TF32.

    An IF neuron's threshold test turns a tiny rounding difference into a spike one step
    earlier or later, and the change travels through every later layer. TF32 (PyTorch's
    default for cuDNN convolutions) keeps a 10-bit mantissa, enough to move the per-step
    outputs of a deep network far from the CPU's float32 ones (same weights, same images), so
    a run simulated on a GPU must not depend on that setting. Training keeps TF32: speed
    matters there, and the weights it produces are then simulated here in float32.
    """
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


class IFNeurons(nn.Module):
    """A layer of integrate-and-fire neurons with soft reset (replaces one QCFS layer).

    Before each call the owner sets ``steps`` (time steps in this call) and ``batch`` (samples).
    Input is ``[steps * batch, ...]`` ordered time-major, or ``[batch, ...]`` for a current that
    is constant over the ``steps``. Output spikes (theta-weighted) are ``[steps * batch, ...]``.
    ``last_counts`` holds the spikes each sample emitted at each step of the call,
    ``[steps, batch]``.
    """

    def __init__(self, threshold: float):
        super().__init__()
        self.register_buffer("threshold", torch.tensor(float(threshold)))
        self.steps = 1
        self.batch = 0
        self.v: torch.Tensor | None = None
        self.last_counts: torch.Tensor | None = None

    def reset(self) -> None:
        self.v = None
        self.last_counts = None

    def keep(self, index: torch.Tensor) -> None:
        """Drop the state of samples that left the batch (``index``: the ones that stay)."""
        if self.v is not None:
            self.v = self.v[index]

    def refill(self, rows: torch.Tensor) -> None:
        """Give ``rows`` of the batch to new samples: their membrane restarts at theta / 2."""
        if self.v is not None:
            self.v[rows] = 0.5 * float(self.threshold)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        steps, batch = self.steps, self.batch
        constant = current.shape[0] == batch and steps > 1
        per_step = current if constant else current.view(steps, batch, *current.shape[1:])
        theta = self.threshold.to(current.dtype)
        sample_shape = current.shape[1:]
        # Keep the caller's memory layout (channels_last convolutions are ~3x faster on CPU).
        layout = (
            torch.channels_last
            if current.dim() == 4
            and not current.is_contiguous()
            and current.is_contiguous(memory_format=torch.channels_last)
            else torch.contiguous_format
        )
        if self.v is None:
            self.v = torch.full(
                (batch, *sample_shape),
                0.5 * float(theta),
                dtype=current.dtype,
                device=current.device,
            ).contiguous(memory_format=layout)
        out = torch.empty(
            (steps * batch, *sample_shape),
            dtype=current.dtype,
            device=current.device,
            memory_format=layout,
        )
        out_steps = out.view(steps, batch, *sample_shape)
        counts = torch.empty((steps, batch), dtype=torch.float32, device=current.device)
        sample_dims = tuple(range(1, current.dim()))
        # In-place updates writing straight into the output: this loop is memory-bound, and
        # every temporary tensor (or bool-to-float conversion) is another pass over the state.
        v = self.v
        for t in range(steps):
            v.add_(current if constant else per_step[t])
            spikes = out_steps[t]
            torch.ge(v, theta, out=spikes)  # 1.0 where the neuron fires, else 0.0
            torch.sum(spikes, dim=sample_dims, out=counts[t])
            spikes.mul_(theta)
            v.sub_(spikes)
        self.last_counts = counts
        return out


@dataclass
class SimulationResult:
    outputs: np.ndarray  # [T, N, K] per-step output of the last layer (not accumulated)
    spikes: np.ndarray  # [T, N] hidden spikes emitted at each step by each sample
    synops: np.ndarray | None = None  # [T, N] int64 synaptic operations at each step


@dataclass
class EarlyExitResult:
    exit_steps: np.ndarray  # [N] 1-based
    predictions: np.ndarray  # [N]
    steps_run: int  # network steps executed (batch refills make this less than N * T_max)
    sample_steps: int  # sum over steps of the active batch size: the compute actually spent
    synops: int | None = None  # synaptic operations of every sample up to its exit, in total


class SpikingNetwork(nn.Module):
    """The IF-neuron version of a trained QCFS network (the input model is left untouched)."""

    def __init__(self, ann: nn.Module):
        super().__init__()
        # channels_last: CPU convolutions on NHWC run about 3x faster than on NCHW here.
        self.net = copy.deepcopy(ann).eval().to(memory_format=torch.channels_last)
        self.layers: list[IFNeurons] = []
        self._convert(self.net)
        if not self.layers:
            raise ValueError("the network has no QCFS layer to convert into IF neurons")
        self.neurons: int | None = None  # hidden IF neurons per sample, known after a forward
        self.synops = SynopsCounter(self.net, self.layers)
        self.last_synops: torch.Tensor | None = None  # [steps, B] int64 of the last step()

    def _convert(self, module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, QCFS):
                neuron = IFNeurons(child.threshold.detach().item())
                setattr(module, name, neuron)
                self.layers.append(neuron)
            else:
                self._convert(child)

    def reset(self) -> None:
        for layer in self.layers:
            layer.reset()

    def keep(self, index: torch.Tensor) -> None:
        for layer in self.layers:
            layer.keep(index)

    def refill(self, rows: torch.Tensor) -> None:
        for layer in self.layers:
            layer.refill(rows)

    @torch.no_grad()
    def step(self, x: torch.Tensor, steps: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance every sample of ``x`` by ``steps`` time steps from the current state.

        Returns per-step outputs ``[steps, B, K]`` and hidden spike counts ``[steps, B]``;
        the synaptic operations of the call, int64 ``[steps, B]``, are left in ``last_synops``.
        """
        batch = x.shape[0]
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        for layer in self.layers:
            layer.steps, layer.batch = steps, batch
        self.synops.begin(steps, batch)
        with exact_float32():
            out = self.net(x)
        self.last_synops = self.synops.take()
        if out.shape[0] == batch and steps > 1:  # no spiking layer on the path: constant output
            out = out.unsqueeze(0).expand(steps, *out.shape)
        out = out.reshape(steps, batch, *out.shape[1:])
        counts = torch.stack([layer.last_counts for layer in self.layers]).sum(0)
        if self.neurons is None:
            self.neurons = sum(int(np.prod(layer.v.shape[1:])) for layer in self.layers)
        return out, counts


@torch.no_grad()
def simulate(snn: SpikingNetwork, x: torch.Tensor, T: int, chunk: int = 4) -> SimulationResult:
    """Run a batch for T steps in multi-step chunks; record per-step outputs and spike counts.

    ``chunk`` trades per-call overhead against cache use: on CPU, 2 to 4 steps of a batch of
    64 keep each layer's activations near the cache, while 8 spill to memory and run slower
    (benchmarks/bench_snn.py measures it).
    """
    snn.reset()
    outputs, spikes, synops = [], [], []
    done = 0
    while done < T:
        steps = min(chunk, T - done)
        out, counts = snn.step(x, steps)
        outputs.append(out.float().cpu())
        spikes.append(counts.cpu())
        synops.append(snn.last_synops.cpu())
        done += steps
    snn.reset()
    return SimulationResult(
        torch.cat(outputs).numpy(), torch.cat(spikes).numpy(), torch.cat(synops).numpy()
    )


@torch.no_grad()
def simulate_early_exit(
    snn: SpikingNetwork,
    images: torch.Tensor,
    T_max: int,
    threshold: float | None = None,
    kappa: float | None = None,
    batch_size: int | None = None,
    *,
    policy=None,
    decoder: str = "paper",
) -> EarlyExitResult:
    """Step-by-step simulation with a real early exit: exited samples leave the batch.

    ``policy`` is any causal exit policy of dynconf.core.policies (default: the paper's rule,
    ``Threshold(threshold)``); after every step it sees each active sample's accumulated
    output S_t, read through ``decoder`` (default "paper", with ``kappa``, default T_max), and
    says which samples stop; the rest run on, at most to T_max. The decision is computed by
    the same decoder and policy code as on a cached run, in float64 on the CPU, so the exits
    equal those computed from the cached outputs (tests check it).

    With ``batch_size`` smaller than the number of images, the batch is refilled: each sample
    that exits frees its slot for the next waiting image (which starts at its own step 1 with
    a fresh membrane ``theta / 2``), so the network keeps running on full batches and the
    compute saved by early exits turns into wall-clock time saved.
    """
    from dynconf.core.decoders import check_kappa
    from dynconf.core.policies import Threshold

    if policy is None:
        if threshold is None:
            raise ValueError("give a threshold or a policy")
        policy = Threshold(threshold)
    rule = policy.online(decoder, check_kappa(decoder, kappa, T_max), T_max)
    n = images.shape[0]
    batch_size = n if batch_size is None else max(1, min(batch_size, n))
    exit_steps = np.full(n, T_max, dtype=np.int64)
    predictions = np.zeros(n, dtype=np.int64)
    snn.reset()
    active = np.arange(batch_size)  # which image each batch row holds
    x = images[:batch_size].clone()  # rows are overwritten by refills
    age = np.zeros(batch_size, dtype=np.int64)  # steps each row has run
    total = None
    next_image = batch_size
    sample_steps = steps_run = synops = 0
    while len(active):
        out, _ = snn.step(x, 1)
        steps_run += 1
        sample_steps += len(active)
        synops += int(snn.last_synops.sum())  # every row holds a running sample
        age += 1
        z = out[0].double().cpu().numpy()  # the policy's bookkeeping runs on the CPU
        total = z.copy() if total is None else total + z
        leaving = rule.step(total, z, age) | (age >= T_max)
        if leaving.any():
            rows = np.flatnonzero(leaving)
            idx = active[rows]
            exit_steps[idx] = age[rows]
            predictions[idx] = total[rows].argmax(1)
            # Waiting images take the freed rows in place (no copy of the network state);
            # only once the stream runs dry does the batch shrink.
            fresh = min(len(rows), n - next_image)
            if fresh:
                slots, new = rows[:fresh], np.arange(next_image, next_image + fresh)
                next_image += fresh
                snn.refill(torch.from_numpy(slots).to(x.device))
                active[slots] = new
                x[torch.from_numpy(slots).to(x.device)] = images[torch.from_numpy(new)].to(x.device)
                total[slots], age[slots] = 0.0, 0
                rule.restart(slots)
            if fresh < len(rows):
                stay = np.ones(len(active), dtype=bool)
                stay[rows[fresh:]] = False
                stay = np.flatnonzero(stay)
                snn.keep(torch.from_numpy(stay).to(x.device))
                rule.keep(stay)
                keep_rows = torch.from_numpy(stay).to(x.device)
                active, x, total, age = active[stay], x[keep_rows], total[stay], age[stay]
    snn.reset()
    return EarlyExitResult(exit_steps, predictions, steps_run, sample_steps, synops)
