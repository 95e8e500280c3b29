"""A small QCFS CNN for sklearn's 8x8 digits: the network of the shipped digits run.

Small enough to train in seconds on two CPU cores, which is why the tests use it.
"""

from __future__ import annotations

import torch
from torch import nn

from dynconf.engine.models.qcfs import QCFS


class DigitsCNN(nn.Module):
    """A small CNN for sklearn's 8x8 digits: 3 conv layers, average pooling, linear head."""

    def __init__(self, levels: int = 4, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            QCFS(levels),
            nn.Conv2d(16, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            QCFS(levels),
            nn.AvgPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            QCFS(levels),
            nn.AvgPool2d(2),
        )
        self.classifier = nn.Linear(64 * 2 * 2, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))
