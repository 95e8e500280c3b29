"""The QCFS activation: what makes a trained ANN convert to an SNN with little error.

QCFS (quantisation-clip-floor-shift) replaces ReLU in the ANN so that the trained network
converts to an integrate-and-fire SNN with little error (docs/METHOD.md section 6):

    h(z) = lambda * clip(floor(z * L / lambda + 1/2) / L, 0, 1)

with a trainable threshold ``lambda`` per layer and ``L`` quantisation levels. ``floor`` has a
straight-through gradient. An IF neuron with threshold ``theta = lambda``, initial membrane
``theta / 2`` and soft reset, driven for ``L`` steps by a constant current ``z``, emits exactly
``h(z) * L / lambda`` spikes, which is why the SNN at ``T = L`` tracks the quantised ANN.

Rules for every architecture in this package (conversion relies on them): max-pooling has no
spiking equivalent, so use average pooling; use each QCFS module exactly once in a forward
pass, since conversion swaps it for one layer of IF neurons with its own membrane state.
"""

from __future__ import annotations

import torch
from torch import nn


class _FloorSTE(torch.autograd.Function):
    """floor() in the forward pass, identity gradient in the backward pass."""

    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output


class QCFS(nn.Module):
    """Quantisation-clip-floor-shift activation: L levels between 0 and a trainable lambda."""

    def __init__(self, levels: int = 4, init_threshold: float = 2.0):
        super().__init__()
        if levels < 1:
            raise ValueError(f"QCFS needs at least one quantisation level, got {levels}")
        self.levels = int(levels)
        self.threshold = nn.Parameter(torch.tensor(float(init_threshold)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lam = self.threshold
        x = torch.clamp(x / lam, 0.0, 1.0)
        x = _FloorSTE.apply(x * self.levels + 0.5) / self.levels
        return x * lam

    def extra_repr(self) -> str:
        return f"levels={self.levels}"


def qcfs_layers(model: nn.Module) -> list[QCFS]:
    """All QCFS modules of a model, in registration order."""
    return [m for m in model.modules() if isinstance(m, QCFS)]


def set_levels(model: nn.Module, levels: int) -> None:
    """Give every QCFS layer of a model ``levels`` quantisation levels (thresholds unchanged).

    An SNN run for T steps emits at most T spikes per neuron, so its rates resolve about T
    levels: the ANN at ``levels = T`` is a cheap stand-in for the SNN at T steps when T >= L.
    """
    if levels < 1:
        raise ValueError(f"QCFS needs at least one quantisation level, got {levels}")
    for layer in qcfs_layers(model):
        layer.levels = int(levels)
