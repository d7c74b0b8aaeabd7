"""VGG (Simonyan and Zisserman, 2014): stacks of 3x3 convolutions and 2x2 max pools.

Configurations A (VGG-11), B (VGG-13), D (VGG-16) and E (VGG-19) from the paper, without
batch norm, in torchvision's layout (VGG-16: 138,357,544 parameters at 1000 classes).
"""

from __future__ import annotations

import torch
from torch import nn

# 3x3 convs per stage (configurations A, B, D, E of the paper); each stage ends in a 2x2
# max pool with stride 2.
STAGE_WIDTHS = (64, 128, 256, 512, 512)
CONFIGS: dict[str, tuple[int, ...]] = {
    "vgg11": (1, 1, 2, 2, 2),
    "vgg13": (2, 2, 2, 2, 2),
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}


def make_features(convs_per_stage: tuple[int, ...], in_chans: int = 3) -> nn.Sequential:
    """The convolutional trunk for one configuration."""
    layers: list[nn.Module] = []
    channels = in_chans
    for width, count in zip(STAGE_WIDTHS, convs_per_stage, strict=True):
        for _ in range(count):
            layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = width
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG classifier: trunk, 7x7 adaptive pool, three fully connected layers."""

    def __init__(
        self, features: nn.Sequential, num_classes: int = 1000, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        # Random init is pointless on the meta device (shapes only) and slow there.
        if not next(self.parameters()).is_meta:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def vgg(name: str, num_classes: int = 1000, in_chans: int = 3) -> VGG:
    """A VGG by name: ``vgg11``, ``vgg13``, ``vgg16`` or ``vgg19``."""
    return VGG(make_features(CONFIGS[name], in_chans), num_classes=num_classes)
