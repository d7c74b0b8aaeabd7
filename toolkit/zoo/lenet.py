"""LeNet-5 (LeCun et al., 1998): the father of CNNs, classic layout.

C1 conv 6@5x5 -> S2 pool -> C3 conv 16@5x5 -> S4 pool -> C5 conv 120@5x5 -> F6 84 -> 10.
C5 is a convolution whose 5x5 kernel covers the whole 5x5 map of a 32x32 input, so the net
takes exactly 1x32x32 (61,706 parameters at 10 classes). Tanh and average pooling
(subsampling) as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn


class LeNet5(nn.Module):
    """LeNet-5 for 32x32 inputs."""

    def __init__(self, num_classes: int = 10, in_chans: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 6, 5),  # C1: 32 -> 28
            nn.Tanh(),
            nn.AvgPool2d(2),  # S2: 28 -> 14
            nn.Conv2d(6, 16, 5),  # C3: 14 -> 10
            nn.Tanh(),
            nn.AvgPool2d(2),  # S4: 10 -> 5
            nn.Conv2d(16, 120, 5),  # C5: 5 -> 1
            nn.Tanh(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(120, 84),  # F6
            nn.Tanh(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def lenet5(num_classes: int = 10, in_chans: int = 1) -> LeNet5:
    """LeNet-5 (classic: 1x32x32 input, 10 classes)."""
    return LeNet5(num_classes=num_classes, in_chans=in_chans)
