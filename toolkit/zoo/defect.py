"""defect-cls: the demo's small, fast defect classifier (ok / scratch / spot / crack).

A MobileNet-style stack of depthwise-separable blocks for 3x96x96 crops: about 68 K
parameters and ~10 M MACs, so it trains in a minute and runs in about a millisecond on a CPU
core. Plain Conv/BN/ReLU only, which every exporter, quantizer and TensorRT handle well.
"""

from __future__ import annotations

import torch
from torch import nn

LABELS = ("ok", "scratch", "spot", "crack")


def _conv_bn(cin: int, cout: int, kernel_size: int, stride: int = 1, groups: int = 1) -> list:
    return [
        nn.Conv2d(
            cin, cout, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False
        ),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class SeparableBlock(nn.Sequential):
    """Depthwise 3x3 (optionally strided) then pointwise 1x1, each with BN + ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(*_conv_bn(cin, cin, 3, stride, groups=cin), *_conv_bn(cin, cout, 1))


class DefectNet(nn.Module):
    """Stem 3x3/2 then separable blocks down to 1/16 resolution, global pool, linear head."""

    # (output channels, stride) of each separable block
    BLOCKS = ((32, 1), (48, 2), (48, 1), (96, 2), (96, 1), (160, 2), (160, 1))

    def __init__(self, num_classes: int = 4, in_chans: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(*_conv_bn(in_chans, 24, 3, stride=2))]
        cin = 24
        for cout, stride in self.BLOCKS:
            layers.append(SeparableBlock(cin, cout, stride))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(p=dropout), nn.Linear(cin, num_classes))
        # Random init is pointless on the meta device (shapes only) and slow there.
        if not next(self.parameters()).is_meta:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))


def defect_cls(num_classes: int = 4, in_chans: int = 3) -> DefectNet:
    """The demo's defect classifier (3x96x96 input, 4 classes)."""
    return DefectNet(num_classes=num_classes, in_chans=in_chans)
