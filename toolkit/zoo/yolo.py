"""defect-det: a small anchor-free YOLOv8-style detector for the demo's defects.

Backbone of strided 3x3 convs and C2f blocks (CSP with a split and concatenated
bottlenecks), an SPPF, a PAN neck (top-down then bottom-up), and a decoupled head per stride
(8, 16, 32): a box branch regressing the distances (l, t, r, b) from the anchor point in
stride units and a class branch (logits). About 1.5 M parameters, ~0.3 GMAC at 256x256.

``forward`` returns the decoded Ultralytics layout ``[N, 4 + C, A]`` (cx, cy, w, h in input
pixels, then sigmoid class scores), so the exported ONNX file runs through the same decoder
as a YOLOv8/YOLO11 export. :meth:`DefectDet.raw` gives the training outputs.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

LABELS = ("scratch", "spot", "crack")
STRIDES = (8, 16, 32)


class Conv(nn.Sequential):
    """Conv + BN + SiLU."""

    def __init__(self, cin: int, cout: int, k: int = 3, s: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU()
        )


class Bottleneck(nn.Module):
    def __init__(self, c: int, shortcut: bool = True) -> None:
        super().__init__()
        self.cv1, self.cv2 = Conv(c, c, 3), Conv(c, c, 3)
        self.add = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """YOLOv8's CSP block: 1x1 split in two, n bottlenecks on one half, concat all, 1x1."""

    def __init__(self, cin: int, cout: int, n: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        self.c = cout // 2
        self.cv1 = Conv(cin, 2 * self.c, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))
        self.cv2 = Conv((2 + n) * self.c, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling (fast): three chained 5x5 max pools, concatenated."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.cv1, self.cv2 = Conv(c, c // 2, 1), Conv(c * 2, c, 1)
        self.pool = nn.MaxPool2d(5, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.pool(x)
        y2 = self.pool(y1)
        return self.cv2(torch.cat([x, y1, y2, self.pool(y2)], 1))


class DefectDet(nn.Module):
    """The detector. ``widths`` are the channels at strides 2, 4, 8, 16, 32."""

    def __init__(
        self,
        num_classes: int = 3,
        in_chans: int = 3,
        widths: tuple[int, int, int, int, int] = (16, 24, 48, 96, 192),
        head: int = 32,
    ) -> None:
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.num_classes = num_classes
        self.stem = nn.Sequential(Conv(in_chans, w0, 3, 2), Conv(w0, w1, 3, 2), C2f(w1, w1, 1))
        self.down3 = nn.Sequential(Conv(w1, w2, 3, 2), C2f(w2, w2, 2))
        self.down4 = nn.Sequential(Conv(w2, w3, 3, 2), C2f(w3, w3, 2))
        self.down5 = nn.Sequential(Conv(w3, w4, 3, 2), C2f(w4, w4, 1), SPPF(w4))
        self.td4 = C2f(w4 + w3, w3, 1, shortcut=False)
        self.td3 = C2f(w3 + w2, w2, 1, shortcut=False)
        self.bu4_conv, self.bu4 = Conv(w2, w2, 3, 2), C2f(w2 + w3, w3, 1, shortcut=False)
        self.bu5_conv, self.bu5 = Conv(w3, w3, 3, 2), C2f(w3 + w4, w4, 1, shortcut=False)
        chans = (w2, w3, w4)
        self.box = nn.ModuleList(
            nn.Sequential(Conv(c, head, 3), Conv(head, head, 3), nn.Conv2d(head, 4, 1))
            for c in chans
        )
        self.cls = nn.ModuleList(
            nn.Sequential(Conv(c, head, 3), Conv(head, head, 3), nn.Conv2d(head, num_classes, 1))
            for c in chans
        )
        self.strides = STRIDES
        self._init_biases()

    def _init_biases(self, imgsz: int = 256) -> None:
        # Start with a low object prior (YOLOv8's: ~5 objects per image over the anchors),
        # so early classification loss is not swamped by easy negatives.
        for seq, s in zip(self.cls, self.strides, strict=True):
            conv = seq[-1]
            if conv.bias is not None and not conv.bias.is_meta:
                nn.init.constant_(conv.bias, math.log(5 / self.num_classes / (imgsz / s) ** 2))
        for seq in self.box:
            conv = seq[-1]
            if conv.bias is not None and not conv.bias.is_meta:
                nn.init.constant_(conv.bias, 0.5)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        p3 = self.down3(self.stem(x))
        p4 = self.down4(p3)
        p5 = self.down5(p4)
        t4 = self.td4(torch.cat([F.interpolate(p5, scale_factor=2.0, mode="nearest"), p4], 1))
        n3 = self.td3(torch.cat([F.interpolate(t4, scale_factor=2.0, mode="nearest"), p3], 1))
        n4 = self.bu4(torch.cat([self.bu4_conv(n3), t4], 1))
        n5 = self.bu5(torch.cat([self.bu5_conv(n4), p5], 1))
        return [n3, n4, n5]

    def raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training outputs: ltrb distances in pixels ``[N, A, 4]``, class logits ``[N, A, C]``,
        and the anchor points with their strides ``[A, 3]`` (x, y, stride) in input pixels."""
        feats = self.features(x)
        dist, logits, anchors = [], [], []
        for f, box, cls, s in zip(feats, self.box, self.cls, self.strides, strict=True):
            _, _, h, w = f.shape
            # softplus keeps distances positive and smooth; scaled by the stride.
            dist.append((F.softplus(box(f)) * s).flatten(2))
            logits.append(cls(f).flatten(2))
            ys = (torch.arange(h, dtype=f.dtype, device=f.device) + 0.5) * s
            xs = (torch.arange(w, dtype=f.dtype, device=f.device) + 0.5) * s
            gy, gx = torch.meshgrid(ys, xs, indexing="ij")
            anchors.append(
                torch.stack([gx.flatten(), gy.flatten(), torch.full_like(gx, s).flatten()], 1)
            )
        return (
            torch.cat(dist, 2).transpose(1, 2),
            torch.cat(logits, 2).transpose(1, 2),
            torch.cat(anchors, 0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Decoded ``[N, 4 + C, A]``: cx, cy, w, h (input pixels), then class scores."""
        dist, logits, anchors = self.raw(x)
        xy = anchors[:, :2]
        lt, rb = dist[..., :2], dist[..., 2:]
        x1y1, x2y2 = xy - lt, xy + rb
        box = torch.cat([(x1y1 + x2y2) / 2, x2y2 - x1y1], -1)
        return torch.cat([box, logits.sigmoid()], -1).transpose(1, 2)


def defect_det(num_classes: int = 3, in_chans: int = 3) -> DefectDet:
    """The demo's defect detector (3x256x256 input, scratch/spot/crack)."""
    return DefectDet(num_classes=num_classes, in_chans=in_chans)
