"""Synaptic operations (SynOps), the energy measure SNN papers report, counted per step and
sample with forward hooks, for dynconf's own SNN and for a user's SpikingJelly/snnTorch one.

Definition (what ``SynopsCounter`` counts, exactly, in integers):

* A synaptic layer is an ``nn.Linear`` or an ``nn.Conv1d/2d/3d`` (subclasses included, such
  as SpikingJelly's ``layer.Linear`` / ``layer.Conv2d``). Each non-zero element of its input
  is one event, and each event costs its element's fan-out: the number of the layer's output
  elements it feeds.
  - linear: ``out_features``;
  - convolution: ``out_channels / groups`` times the number of output positions whose
    receptive field covers the element. Away from the zero-padded border, at stride 1, that
    is ``kernel area``, so an event costs ``out_channels / groups x kernel area``; at stride s
    it is about ``kernel area / s^2`` (every connection the layer has is counted once), and
    fewer at the border. The count is the exact one: the connections each event travels.
* Which inputs are spikes: the input of a synaptic layer that runs after a spiking neuron
  module in the same forward pass (an IF/LIF layer has fired: its input comes from spikes,
  possibly through average pooling, flattening or a residual addition). After average
  pooling an element is one event when at least one spike fell in its window (it carries the
  pooled value); a chip that folds pooling into the next layer's weights would count each of
  those spikes instead.
* The first layer's input: a synaptic layer that runs before any neuron in the pass reads the
  encoded input. It is counted only when that input is spikes, every value 0 or 1 (rate-coded
  ``poisson`` input, binary event frames). A direct-encoded analog input (dynconf's QCFS SNNs,
  ``encoder="direct"``) is NOT counted: like most SNN papers, SynOps here are accumulate
  operations driven by spikes; that first layer's multiply-accumulates (MACs) are left out.
* Per step and sample: what a sample's events cost in one time step, summed over layers
  (``[T, N]`` int64 in a run, per step, not accumulated, like ``spikes``).

Counting is framework-agnostic: forward pre-hooks on the synaptic layers, forward hooks on the
neuron modules (only to know that a neuron has run). Before each forward call the owner says
how many steps and samples it carries (``begin``); inputs are ``[B, ...]`` (one step),
``[T, B, ...]`` or ``[T * B, ...]`` time-major (multi-step), or ``[B, ...]`` for an input held
constant over the call's steps (dynconf's multi-step first layer).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from dynconf.errors import DynconfError

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
EXACT_FLOAT32 = 2**24  # whole numbers below this add up exactly in float32


def synaptic_layers(model: nn.Module) -> dict[str, nn.Module]:
    """``{qualified name: module}`` of the model's Linear and Conv1d/2d/3d layers."""
    return {
        name or "<model>": m
        for name, m in model.named_modules()
        if isinstance(m, (nn.Linear, *_CONVS))
    }


def conv_fanout(conv: nn.Module, spatial: tuple[int, ...], device) -> torch.Tensor:
    """Output positions fed by each input position of ``conv`` (int64 ``[*spatial]``).

    Found by differentiating the sum of a one-channel copy of the convolution (all weights 1,
    the same kernel, stride, padding, dilation and padding mode) with respect to an all-ones
    input: the gradient at a position is the number of output positions that read it.
    """
    probe = type_for(conv)(
        1,
        1,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        bias=False,
        padding_mode=conv.padding_mode,
    ).double()
    with torch.enable_grad():
        nn.init.ones_(probe.weight)
        x = torch.ones((1, 1, *spatial), dtype=torch.float64, requires_grad=True)
        probe(x).sum().backward()
    return x.grad[0, 0].round().to(device=device, dtype=torch.int64)


def type_for(conv: nn.Module):
    for kind in _CONVS:
        if isinstance(conv, kind):
            return kind
    raise TypeError(type(conv).__name__)


class SynopsCounter:
    """Hooks that count the synaptic operations of every forward call (see module doc)."""

    def __init__(self, model: nn.Module, neurons: Iterable[nn.Module]):
        self.layers = synaptic_layers(model)
        self._steps, self._batch = 1, 0
        self._after_neuron = False
        self._total: torch.Tensor | None = None
        self._fanout: dict[tuple, torch.Tensor] = {}
        self.counted: set[str] = set()  # layers whose input was counted at least once
        self._handles = [
            m.register_forward_pre_hook(self._pre_hook(name)) for name, m in self.layers.items()
        ]
        self._handles += [m.register_forward_hook(self._neuron_hook) for m in neurons]

    def begin(self, steps: int, batch: int) -> None:
        """A forward call of ``steps`` time steps of ``batch`` samples starts now."""
        self._steps, self._batch = int(steps), int(batch)
        self._after_neuron = False
        self._total = None

    def take(self) -> torch.Tensor:
        """SynOps of the call since ``begin``, int64 ``[steps, batch]`` (on the model's device)."""
        total = self._total
        if total is None:
            total = torch.zeros((self._steps, self._batch), dtype=torch.int64)
        self._total = None
        return total

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # ------------------------------------------------------------------ hooks

    def _neuron_hook(self, module, inputs, output) -> None:
        self._after_neuron = True

    def _pre_hook(self, name: str):
        def hook(module, inputs):
            if not inputs or not isinstance(inputs[0], torch.Tensor) or self._batch == 0:
                return
            x = inputs[0]
            if not self._after_neuron and not _binary(x):
                return  # the analog encoded input of a first layer: not spikes
            counts = self._count(module, name, x)
            self.counted.add(name)
            self._total = counts if self._total is None else self._total + counts

        return hook

    def _count(self, module, name: str, x: torch.Tensor) -> torch.Tensor:
        steps, batch = self._steps, self._batch
        sample_dims = 1 if isinstance(module, nn.Linear) else len(module.kernel_size) + 1
        if x.dim() < sample_dims + 1:
            raise DynconfError(
                f"layer {name} got an unbatched input of shape {tuple(x.shape)}; SynOps need "
                "[B, ...] inputs"
            )
        lead = math.prod(x.shape[: x.dim() - sample_dims])
        constant = False
        if isinstance(module, nn.Linear) and lead % (steps * batch) == 0:
            pass  # [T*B*L, F] sequences of tokens: each token's features are events too
        elif lead == batch and steps > 1:
            constant = True  # one input held for all the call's steps
        elif lead != steps * batch:
            raise DynconfError(
                f"layer {name} got input of shape {tuple(x.shape)}, which is neither "
                f"[B, ...] nor [T, B, ...] for T = {steps}, B = {batch}; pass count_synops=False"
            )
        rows = 1 if constant else steps
        per_sample = x.numel() // (rows * batch)
        if isinstance(module, nn.Linear):
            events = _events(x, torch.float32 if per_sample < EXACT_FLOAT32 else torch.float64)
            per = events.reshape(rows, batch, -1).sum(-1).round().to(torch.int64)
            per = per * module.out_features
        else:
            spatial = tuple(x.shape[x.dim() - sample_dims + 1 :])
            channels = x.shape[x.dim() - sample_dims]
            fan = self._fan(module, spatial, x.device)
            # Every partial sum is a whole number below this bound: exact in float32 if < 2**24
            exact32 = per_sample * int(fan.max()) < EXACT_FLOAT32
            events = _events(x, torch.float32 if exact32 else torch.float64)
            events = events.reshape(rows * batch, channels, *spatial)
            # The weight of each input element is its position's fan-out: one matrix-vector
            # product in the tensor's own memory order (channels last or first), no copy.
            last = events.movedim(1, -1)
            order = "last" if last.is_contiguous() else "first"
            flat = (last if order == "last" else events).reshape(rows * batch, -1)
            weights = self._weights(module, fan, channels, order, flat.dtype)
            # (on a GPU a reduction, not a matmul: no TF32, exact whatever the settings)
            total = (flat * weights).sum(-1) if flat.is_cuda else torch.mv(flat, weights)
            per = total.round().to(torch.int64).reshape(rows, batch)
            per = per * (module.out_channels // module.groups)
        return per.expand(steps, batch) if constant else per

    def _fan(self, module, spatial: tuple[int, ...], device) -> torch.Tensor:
        key = (id(module), spatial, str(device))
        fan = self._fanout.get(key)
        if fan is None:
            fan = self._fanout[key] = conv_fanout(module, spatial, device)
        return fan

    def _weights(self, module, fan, channels: int, order: str, dtype) -> torch.Tensor:
        """Each input element's fan-out position weight, flattened in ``order``."""
        key = (id(module), tuple(fan.shape), channels, order, dtype, str(fan.device))
        weights = self._fanout.get(key)
        if weights is None:
            spatial = tuple(fan.shape)
            if order == "last":
                grid = fan.unsqueeze(-1).expand(*spatial, channels)
            else:
                grid = fan.unsqueeze(0).expand(channels, *spatial)
            weights = self._fanout[key] = grid.reshape(-1).to(dtype).contiguous()
        return weights


def _events(x: torch.Tensor, dtype) -> torch.Tensor:
    """1.0 where ``x`` is non-zero, 0.0 elsewhere, in ``x``'s memory layout (one pass)."""
    out = torch.empty_like(x, dtype=dtype)
    torch.ne(x, 0, out=out)
    return out


def _binary(x: torch.Tensor) -> bool:
    """Every value 0 or 1 (spikes), checked without a copy of ``x`` per value."""
    if x.dtype == torch.bool:
        return True
    return bool(((x == 0) | (x == 1)).all())
