"""VGG-16 for 32x32 inputs (CIFAR) with batch norm, QCFS and average pooling."""

from __future__ import annotations

import torch
from torch import nn

from dynconf.engine.models.qcfs import QCFS

_VGG16 = (64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P")


class VGG16Cifar(nn.Module):
    """VGG-16 for 32x32 inputs with batch norm, QCFS and average pooling."""

    def __init__(self, levels: int = 4, num_classes: int = 10):
        super().__init__()
        layers, in_ch = [], 3
        for item in _VGG16:
            if item == "P":
                layers.append(nn.AvgPool2d(2))
            else:
                layers += [
                    nn.Conv2d(in_ch, item, 3, padding=1, bias=False),
                    nn.BatchNorm2d(item),
                    QCFS(levels),
                ]
                in_ch = item
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(512, 512),
            QCFS(levels),
            nn.Linear(512, 512),
            QCFS(levels),
            nn.Linear(512, num_classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))
