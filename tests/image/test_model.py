"""Model: CIFAR stem, feature and projection shapes, widths."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from image.model import ResNet, SimCLRModel


@pytest.mark.parametrize(("arch", "width", "feature_dim"), [("resnet18", 8, 64), ("resnet50", 4, 128), ("resnet18", 64, 512)])
def test_output_shapes(arch: str, width: int, feature_dim: int) -> None:
    model = SimCLRModel(arch, width).eval()
    features, projection = model(torch.randn(2, 3, 32, 32))
    assert model.encoder.feature_dim == feature_dim
    assert features.shape == (2, feature_dim)
    assert projection.shape == (2, 128)


def test_cifar_stem_keeps_full_resolution_and_head_matches_released_code() -> None:
    model = SimCLRModel("resnet18", 8)
    conv1 = model.encoder.stem[0]
    assert (conv1.kernel_size, conv1.stride) == ((3, 3), (1, 1))
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model.encoder.stem(torch.randn(1, 3, 32, 32)).shape[-2:] == (32, 32)
    first, norm, _, last = model.projector
    assert first.bias is None and isinstance(norm, nn.BatchNorm1d) and last.out_features == 128


def test_resnet50_has_the_standard_parameter_count() -> None:
    # torchvision's resnet50 trunk has 23,508,032 parameters; the CIFAR stem's 3x3 conv1
    # has 3*64*9 weights instead of 3*64*49.
    trunk = ResNet("resnet50", 64)
    assert sum(p.numel() for p in trunk.parameters()) == 23_508_032 - 3 * 64 * 49 + 3 * 64 * 9


def test_unknown_arch_is_rejected() -> None:
    with pytest.raises(ValueError, match="arch must be one of"):
        ResNet("vgg11")
