"""QCFS activation and model zoo: the activation formula, its gradients, conversion-readiness."""

import pytest
import torch
from torch import nn

from dynconf.engine.models import ARCHITECTURES, QCFS, build_model, qcfs_layers, set_levels


def reference_qcfs(z: float, lam: float, levels: int) -> float:
    """h(z) = lambda * clip(floor(z L / lambda + 1/2) / L, 0, 1), written out per element."""
    import math

    q = math.floor(z * levels / lam + 0.5) / levels
    return lam * min(max(q, 0.0), 1.0)


def test_qcfs_matches_formula_elementwise():
    act = QCFS(levels=4, init_threshold=2.0).double()
    z = torch.linspace(-1.0, 3.0, 401, dtype=torch.float64)
    got = act(z)
    want = torch.tensor([reference_qcfs(v, 2.0, 4) for v in z.tolist()], dtype=torch.float64)
    assert torch.equal(got, want)
    # hand-checked points: step lambda/L = 0.5, rounding at the half-step
    assert act(torch.tensor([0.24, 0.26, 0.74, 0.76, 5.0, -1.0], dtype=torch.float64)).tolist() == [
        0.0,
        0.5,
        0.5,
        1.0,
        2.0,
        0.0,
    ]


def test_qcfs_levels_are_the_only_values():
    act = QCFS(levels=3, init_threshold=1.5)
    values = torch.unique(act(torch.randn(10_000) * 3))
    assert torch.allclose(values, torch.tensor([0.0, 0.5, 1.0, 1.5]))


def test_straight_through_gradients():
    act = QCFS(levels=4, init_threshold=2.0).double()
    z = torch.tensor([-0.5, 0.3, 1.1, 1.9, 2.5], dtype=torch.float64, requires_grad=True)
    act(z).sum().backward()
    # identity gradient inside (0, lambda), zero where the clip saturates
    assert z.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    # d h / d lambda = q(u) - u inside, 1 above the clip, 0 below (u = z / lambda)
    u = z.detach() / 2.0
    q = torch.floor(u.clamp(0, 1) * 4 + 0.5) / 4
    inside = (u > 0) & (u < 1)
    assert act.threshold.grad.item() == pytest.approx((q - u * inside).sum().item())


def test_levels_must_be_positive():
    with pytest.raises(ValueError, match="at least one"):
        QCFS(levels=0)
    with pytest.raises(ValueError, match="at least one"):
        set_levels(build_model("resnet20", levels=4, num_classes=10), 0)


def test_set_levels_requantises_every_layer_with_the_same_thresholds():
    model = build_model("resnet20", levels=4, num_classes=10)
    thresholds = [layer.threshold.item() for layer in qcfs_layers(model)]
    set_levels(model, 64)
    assert {layer.levels for layer in qcfs_layers(model)} == {64}
    assert [layer.threshold.item() for layer in qcfs_layers(model)] == thresholds
    z = torch.linspace(-1.0, 3.0, 401, dtype=torch.float64)
    out = qcfs_layers(model)[0].double()(z)
    assert torch.allclose(
        out, torch.tensor([reference_qcfs(v, 2.0, 64) for v in z.tolist()]).double()
    )


@pytest.mark.parametrize(
    "arch,shape,classes",
    [
        ("digits_cnn", (2, 1, 8, 8), 10),
        ("digits_mlp", (2, 1, 8, 8), 10),
        ("resnet20", (2, 3, 32, 32), 10),
        ("resnet18", (2, 3, 32, 32), 10),
        ("vgg16", (2, 3, 32, 32), 10),
        ("resnet50_imagenet", (1, 3, 64, 64), 1000),
    ],
)
def test_architectures_are_conversion_ready(arch, shape, classes):
    model = build_model(arch, levels=4, num_classes=classes).eval()
    # no ReLU and no max-pooling survive: both have no IF equivalent
    assert not any(isinstance(m, (nn.ReLU, nn.MaxPool2d)) for m in model.modules())
    layers = qcfs_layers(model)
    assert layers
    calls = {id(m): 0 for m in layers}
    hooks = [
        m.register_forward_hook(lambda mod, i, o: calls.__setitem__(id(mod), calls[id(mod)] + 1))
        for m in layers
    ]
    with torch.no_grad():
        out = model(torch.randn(*shape))
    for h in hooks:
        h.remove()
    assert out.shape == (shape[0], classes)
    # each QCFS runs exactly once per forward, so each can become one IF layer with its own state
    assert set(calls.values()) == {1}


def test_resnet_depths():
    def convs(model):
        return sum(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) for m in model.modules())

    assert convs(build_model("resnet20", 4, 10)) == 19  # + the linear head = 20 layers
    assert convs(build_model("resnet18", 4, 10)) == 17


def test_imagenet_vgg16_builds_from_torchvision_definition():
    model = build_model("vgg16_imagenet", levels=8, num_classes=1000)
    assert len(qcfs_layers(model)) == 15  # 13 conv + 2 hidden linear layers
    assert not any(isinstance(m, (nn.ReLU, nn.MaxPool2d)) for m in model.modules())


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown architecture 'nope'"):
        build_model("nope", 4, 10)


def test_all_architectures_listed():
    assert set(ARCHITECTURES) == {
        "digits_cnn",
        "digits_mlp",
        "resnet20",
        "resnet18",
        "vgg16",
        "resnet50_imagenet",
        "vgg16_imagenet",
    }
