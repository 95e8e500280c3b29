"""ResNets for 32x32 inputs (CIFAR) with QCFS activations: ResNet-20 and ResNet-18.

The residual addition comes before the block's last QCFS, so every addition is converted
together with the IF layer that follows it.
"""

from __future__ import annotations

import torch
from torch import nn

from dynconf.engine.models.qcfs import QCFS


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection; QCFS after the addition."""

    def __init__(self, in_planes: int, planes: int, stride: int, levels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = QCFS(levels)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )
        self.act2 = QCFS(levels)

    def forward(self, x):
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet for 32x32 inputs: a 3x3 stem, stages of BasicBlocks, global average pooling."""

    def __init__(self, widths, blocks, levels: int = 4, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.act1 = QCFS(levels)
        layers, in_planes = [], widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            for i in range(count):
                stride = 2 if (stage > 0 and i == 0) else 1
                layers.append(BasicBlock(in_planes, width, stride, levels))
                in_planes = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.pool(self.layers(x))
        return self.fc(torch.flatten(x, 1))


def resnet20(levels: int = 4, num_classes: int = 10) -> CifarResNet:
    """CIFAR ResNet-20 (He et al. 2016): 16/32/64 channels, 3 blocks per stage."""
    return CifarResNet((16, 32, 64), (3, 3, 3), levels, num_classes)


def resnet18_cifar(levels: int = 4, num_classes: int = 10) -> CifarResNet:
    """CIFAR ResNet-18 (the Dynamic Confidence demo's network): 64 to 512 channels."""
    return CifarResNet((64, 128, 256, 512), (2, 2, 2, 2), levels, num_classes)
