"""QCFS activation and the model zoo used as base networks for ANN-to-SNN conversion.

QCFS (quantisation-clip-floor-shift) replaces ReLU in the ANN so that the trained network
converts to an integrate-and-fire SNN with little error (method.md section 6):

    h(z) = lambda * clip(floor(z * L / lambda + 1/2) / L, 0, 1)

with a trainable threshold ``lambda`` per layer and ``L`` quantisation levels. ``floor`` has a
straight-through gradient. An IF neuron with threshold ``theta = lambda``, initial membrane
``theta / 2`` and soft reset, driven for ``L`` steps by a constant current ``z``, emits exactly
``h(z) * L / lambda`` spikes, which is why the SNN at ``T = L`` tracks the quantised ANN.

Max-pooling has no spiking equivalent, so every architecture here uses average pooling.
Each QCFS module is used exactly once in a forward pass: conversion swaps it for one layer of
IF neurons with its own membrane state.
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


# --------------------------------------------------------------------------- small CNN


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


# --------------------------------------------------------------------------- CIFAR ResNets


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


# --------------------------------------------------------------------------- VGG-16 (CIFAR)

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


# --------------------------------------------------------------------------- ImageNet models


class _QCFSBottleneck(nn.Module):
    """torchvision's Bottleneck with its one shared ReLU split into three QCFS layers."""

    def __init__(self, block, levels: int):
        super().__init__()
        self.conv1, self.bn1 = block.conv1, block.bn1
        self.conv2, self.bn2 = block.conv2, block.bn2
        self.conv3, self.bn3 = block.conv3, block.bn3
        self.downsample = block.downsample if block.downsample is not None else nn.Sequential()
        self.act1, self.act2, self.act3 = QCFS(levels), QCFS(levels), QCFS(levels)

    def forward(self, x):
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.act3(out + self.downsample(x))


def resnet50_imagenet(levels: int = 8, num_classes: int = 1000) -> nn.Module:
    """torchvision's ResNet-50 definition (no weights) with QCFS and an average-pool stem."""
    from torchvision.models import resnet50

    net = resnet50(weights=None, num_classes=num_classes)
    net.relu = QCFS(levels)
    net.maxpool = nn.AvgPool2d(3, 2, 1)
    for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
        for i, block in enumerate(stage):
            stage[i] = _QCFSBottleneck(block, levels)
    return net


def vgg16_imagenet(levels: int = 8, num_classes: int = 1000) -> nn.Module:
    """torchvision's VGG-16-BN definition (no weights) with QCFS and average pooling."""
    from torchvision.models import vgg16_bn

    net = vgg16_bn(weights=None, num_classes=num_classes)
    _replace_activations(net, levels)
    return net


def _replace_activations(module: nn.Module, levels: int) -> None:
    """Swap every ReLU for a fresh QCFS and every MaxPool2d for an AvgPool2d, recursively."""
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, QCFS(levels))
        elif isinstance(child, nn.MaxPool2d):
            setattr(module, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding))
        else:
            _replace_activations(child, levels)


ARCHITECTURES = {
    "digits_cnn": DigitsCNN,
    "resnet20": resnet20,
    "resnet18": resnet18_cifar,
    "vgg16": VGG16Cifar,
    "resnet50_imagenet": resnet50_imagenet,
    "vgg16_imagenet": vgg16_imagenet,
}


def build_model(arch: str, levels: int, num_classes: int) -> nn.Module:
    """Build an architecture by name (see ARCHITECTURES) with QCFS activations."""
    try:
        factory = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(
            f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}"
        ) from None
    return factory(levels=levels, num_classes=num_classes)


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
