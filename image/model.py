"""ResNet encoders with the CIFAR stem and the SimCLR projection head.

The CIFAR stem (3x3 conv1 at stride 1, no max-pool) keeps 32x32 inputs at full
resolution through the first stage; the ImageNet stem would shrink them to 8x8 at once.
``width`` scales every stage (64 = the standard network); a narrow network such as
``resnet18`` at width 16 is what fits the CPU ``quick`` profile (about 1/16 of the FLOPs).
"""

from __future__ import annotations

from torch import Tensor, nn

ARCHS = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet50": ("bottleneck", (3, 4, 6, 3))}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        out = channels * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out),
        )
        self.shortcut = _shortcut(in_channels, out, stride)

    def forward(self, x: Tensor) -> Tensor:
        return (self.body(x) + self.shortcut(x)).relu_()


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        out = channels * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, stride, 1, bias=False),  # stride on the 3x3 (ResNet v1.5)
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, out, 1, bias=False),
            nn.BatchNorm2d(out),
        )
        self.shortcut = _shortcut(in_channels, out, stride)

    def forward(self, x: Tensor) -> Tensor:
        return (self.body(x) + self.shortcut(x)).relu_()


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


class ResNet(nn.Module):
    """ResNet trunk with the CIFAR stem; ``forward`` returns pooled features ``(B, feature_dim)``."""

    def __init__(self, arch: str = "resnet18", width: int = 64) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {sorted(ARCHS)}, got {arch!r}")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        kind, depths = ARCHS[arch]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        stages: list[nn.Module] = []
        in_channels = width
        for index, depth in enumerate(depths):
            channels = width * 2**index
            for block_index in range(depth):
                stride = 2 if index > 0 and block_index == 0 else 1
                stages.append(block(in_channels, channels, stride))
                in_channels = channels * block.expansion
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = in_channels
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.stages(self.stem(x))).flatten(1)


class SimCLRModel(nn.Module):
    """Encoder plus projection head Linear(no bias) -> BN -> ReLU -> Linear, as in the released code.

    ``forward`` returns ``(features, projection)``: the loss uses the projection,
    the kNN monitor and the linear probe use the encoder features.
    """

    def __init__(self, arch: str = "resnet18", width: int = 64, hidden_dim: int = 512, projection_dim: int = 128) -> None:
        super().__init__()
        self.encoder = ResNet(arch, width)
        self.projector = nn.Sequential(
            nn.Linear(self.encoder.feature_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, projection_dim),
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.encoder(x)
        return features, self.projector(features)
