"""A two-hidden-layer QCFS MLP for sklearn's 8x8 digits: the smallest convertible network.

It is also the worked example of adding an architecture (docs/ARCHITECTURE.md): this file
plus one entry in ``ARCHITECTURES`` (models/__init__.py). Batch norm before each QCFS is linear
in eval mode, so conversion keeps it as it is.
"""

from __future__ import annotations

import torch
from torch import nn

from dynconf.engine.models.qcfs import QCFS


class DigitsMLP(nn.Module):
    """Flatten 8x8 pixels, two hidden layers of QCFS neurons, a linear head."""

    def __init__(
        self, levels: int = 4, num_classes: int = 10, in_features: int = 64, hidden: int = 128
    ):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_features, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            QCFS(levels),
            nn.Linear(hidden, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            QCFS(levels),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.flatten(x, 1))
