"""The model zoo: every architecture `train --arch` accepts, each with QCFS activations.

One module per architecture family; ``ARCHITECTURES`` is the only list of them. To add one,
write a module here whose factory takes ``levels`` and ``num_classes`` and returns an
``nn.Module`` following the rules in qcfs.py (average pooling, each QCFS used once), then add
it to the import and to ``ARCHITECTURES`` below (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from dynconf.engine.models import cifar_resnet, digits_cnn, digits_mlp, imagenet, vgg_cifar
from dynconf.engine.models.qcfs import QCFS, qcfs_layers, set_levels

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "digits_cnn": digits_cnn.DigitsCNN,
    "digits_mlp": digits_mlp.DigitsMLP,
    "resnet20": cifar_resnet.resnet20,
    "resnet18": cifar_resnet.resnet18_cifar,
    "vgg16": vgg_cifar.VGG16Cifar,
    "resnet50_imagenet": imagenet.resnet50_imagenet,
    "vgg16_imagenet": imagenet.vgg16_imagenet,
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


__all__ = ["ARCHITECTURES", "QCFS", "build_model", "qcfs_layers", "set_levels"]
