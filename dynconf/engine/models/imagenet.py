"""ImageNet networks: torchvision's definitions (no weights) made convertible.

Every ReLU becomes its own QCFS (torchvision's Bottleneck shares one ReLU three times, which
conversion cannot turn into three IF layers) and every max-pool an average pool. torchvision
is imported only when such a model is built.
"""

from __future__ import annotations

from torch import nn

from dynconf.engine.models.qcfs import QCFS


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
