"""Hand-set models whose right explanation is known (torch; imported by the explain tests).

- ``EdgeNet``: one conv layer of oriented edge filters (vertical, horizontal, "/", "\\").
- ``CueNet``: a classifier that looks only at a planted square (the cue): class 1's logit
  grows with the brightness there, class 0's falls.
- ``BlobDet``: a YOLOv8-layout detector of bright blobs: one anchor per 8 px, a fixed 16 px
  box around it, its class score a local brightness test.
"""

from __future__ import annotations

import numpy as np
import torch
from _images import CUE, IMG
from torch import nn


def edge_kernels(k: int = 7) -> torch.Tensor:
    r = np.arange(k) - k // 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    g = np.exp(-(xx**2 + yy**2) / (2 * (k / 4) ** 2))
    ks = [xx * g, yy * g, (xx - yy) * g, (xx + yy) * g]  # |, -, "\" and "/" edges
    ks = [kk / np.abs(kk).sum() for kk in ks]
    return torch.tensor(np.stack(ks)[:, None], dtype=torch.float32)


class EdgeNet(nn.Module):
    def __init__(self, num_classes: int = 4, in_chans: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 7, padding=3, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(edge_kernels())
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.conv(x))).flatten(1)


class CueNet(nn.Module):
    def __init__(self, num_classes: int = 2, in_chans: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chans, 4, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.fill_(1.0 / (9 * in_chans))
            self.conv.bias.zero_()
        self.relu = nn.ReLU()
        mask = torch.zeros(1, 1, IMG, IMG)
        y0, y1, x0, x1 = CUE
        mask[..., y0:y1, x0:x1] = 1.0
        self.register_buffer("mask", mask)
        self.head = nn.Linear(4, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[-1.0] * 4, [1.0] * 4]) * 4.0)
            self.head.bias.copy_(torch.tensor([0.5, -0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.relu(self.conv(x)) * self.mask
        return self.head(f.sum((2, 3)) / self.mask.sum())


class BlobDet(nn.Module):
    """Output ``[N, 4 + 2, A]``: class 0 = bright blob, class 1 = never (a constant -8 logit)."""

    def __init__(self, num_classes: int = 2, in_chans: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chans, 1, 9, stride=1, padding=4, bias=True)
        with torch.no_grad():
            self.conv.weight.fill_(1.0 / (81 * in_chans))
            self.conv.bias.fill_(-0.5)
        self.relu = nn.ReLU()
        self.pool = nn.AvgPool2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.pool(self.relu(self.conv(x)))  # [N, 1, H/8, W/8]
        n, _, h, w = s.shape
        ys = (torch.arange(h, dtype=x.dtype) + 0.5) * 8
        xs = (torch.arange(w, dtype=x.dtype) + 0.5) * 8
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        box = torch.stack([gx, gy, torch.full_like(gx, 16.0), torch.full_like(gx, 16.0)])
        box = box.flatten(1).unsqueeze(0).expand(n, 4, h * w)
        cls0 = torch.sigmoid(s.flatten(2) * 40 - 2)
        cls1 = torch.full_like(cls0, 1e-4)
        return torch.cat([box, cls0, cls1], 1)
