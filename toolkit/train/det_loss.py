"""Detector loss: task-aligned assignment (YOLOv8/TOOD), BCE classes, CIoU boxes.

Each ground-truth box takes the ``topk`` anchors inside it with the best alignment
``score^alpha * IoU^beta`` (score: the predicted probability of the box's class); an anchor
claimed by two boxes goes to the one it overlaps most. Class targets are soft: the alignment,
normalized per box so its best anchor gets that anchor's IoU.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F


class Targets(NamedTuple):
    """A batch's ground truth padded to ``M`` rows per image (input pixels)."""

    cls: Tensor  # [B, M] class ids
    box: Tensor  # [B, M, 4] xyxy
    mask: Tensor  # [B, M] true on the real rows

    def to(self, device: torch.device) -> Targets:
        return Targets(self.cls.to(device), self.box.to(device), self.mask.to(device))


def bbox_iou(a: Tensor, b: Tensor, ciou: bool = False, eps: float = 1e-7) -> Tensor:
    """IoU (or CIoU) of matching xyxy boxes ``[..., 4]`` -> ``[...]``."""
    w1, h1 = (a[..., 2] - a[..., 0]).clamp(min=0), (a[..., 3] - a[..., 1]).clamp(min=0)
    w2, h2 = (b[..., 2] - b[..., 0]).clamp(min=0), (b[..., 3] - b[..., 1]).clamp(min=0)
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    inter = iw * ih
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    if not ciou:
        return iou
    cw = torch.maximum(a[..., 2], b[..., 2]) - torch.minimum(a[..., 0], b[..., 0])
    ch = torch.maximum(a[..., 3], b[..., 3]) - torch.minimum(a[..., 1], b[..., 1])
    c2 = cw**2 + ch**2 + eps
    rho2 = (
        (b[..., 0] + b[..., 2] - a[..., 0] - a[..., 2]) ** 2
        + (b[..., 1] + b[..., 3] - a[..., 1] - a[..., 3]) ** 2
    ) / 4
    v = (4 / math.pi**2) * (torch.atan(w2 / (h2 + eps)) - torch.atan(w1 / (h1 + eps))).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


@torch.no_grad()
def assign(
    scores: Tensor,
    boxes: Tensor,
    anchors: Tensor,
    gt: Targets,
    *,
    topk: int = 10,
    alpha: float = 0.5,
    beta: float = 6.0,
    eps: float = 1e-9,
) -> tuple[Tensor, Tensor, Tensor]:
    """Task-aligned assignment for a batch.

    Args:
        scores: predicted class probabilities ``[B, A, C]``.
        boxes: predicted xyxy boxes ``[B, A, 4]`` (input pixels).
        anchors: anchor points ``[A, 2]``.
        gt: the padded ground truth.

    Returns:
        ``(target_boxes [B, A, 4], target_scores [B, A, C], foreground [B, A])``.
    """
    b, a, c = scores.shape
    m = gt.box.shape[1]
    if m == 0:
        fg = torch.zeros(b, a, dtype=torch.bool, device=scores.device)
        return torch.zeros_like(boxes), torch.zeros_like(scores), fg
    inside = _inside(anchors, gt)
    ious = bbox_iou(gt.box[:, :, None, :], boxes[:, None, :, :]).clamp(min=0)  # [B, M, A]
    cls_idx = gt.cls.clamp(min=0, max=c - 1)[..., None].expand(b, m, a)
    cls_score = scores.transpose(1, 2).gather(1, cls_idx)  # [B, M, A]
    align = cls_score.pow(alpha) * ious.pow(beta) * inside
    pos = _positives(align, ious, inside, topk)
    fg = pos.any(1)  # [B, A]
    gt_idx = pos.float().argmax(1)  # [B, A]
    t_box = gt.box.gather(1, gt_idx[..., None].expand(b, a, 4))
    t_cls = gt.cls.gather(1, gt_idx).clamp(min=0, max=c - 1)
    align = align * pos
    norm = (align * ious.amax(-1, keepdim=True) / (align.amax(-1, keepdim=True) + eps)).amax(1)
    t_scores = F.one_hot(t_cls, c).float() * (norm * fg)[..., None]
    return t_box, t_scores, fg


def _inside(anchors: Tensor, gt: Targets) -> Tensor:
    """``[B, M, A]``: anchor strictly inside a real ground-truth box."""
    ax, ay = anchors[None, None, :, 0], anchors[None, None, :, 1]
    box = gt.box
    inside = (
        (ax > box[..., 0:1]) & (ax < box[..., 2:3]) & (ay > box[..., 1:2]) & (ay < box[..., 3:4])
    )
    return inside & gt.mask[..., None]


def _positives(align: Tensor, ious: Tensor, inside: Tensor, topk: int) -> Tensor:
    """``[B, M, A]``: the anchors each box takes, each anchor given to one box at most."""
    m = align.shape[1]
    top = align.topk(min(topk, align.shape[-1]), dim=-1).indices
    chosen = torch.zeros_like(align, dtype=torch.bool).scatter_(-1, top, True)
    pos = chosen & inside & (align > 0)
    # Tiny boxes can hold no anchor with a nonzero score yet: give them their nearest inside
    # anchors by IoU so every object gets a target.
    pos |= (
        (pos.sum(-1, keepdim=True) == 0)
        & inside
        & (ious >= ious.masked_fill(~inside, -1).amax(-1, keepdim=True))
    )
    # An anchor claimed by several boxes goes to the one it overlaps most.
    multi = pos.sum(1, keepdim=True) > 1
    best = F.one_hot((ious * pos).argmax(1), m).transpose(1, 2).bool()
    return torch.where(multi, best & pos, pos)


def detection_loss(
    raw: tuple[Tensor, Tensor, Tensor], gt: Targets, *, box_gain: float = 7.5, cls_gain: float = 1.0
) -> tuple[Tensor, dict[str, float]]:
    """Total loss for the detector's raw outputs (``model.raw``: ltrb distances, class logits,
    anchors) and the padded ground truth; also the box and class parts as floats."""
    dist, logits, anchors = raw
    xy = anchors[:, :2]
    boxes = torch.cat([xy - dist[..., :2], xy + dist[..., 2:]], -1)
    t_box, t_scores, fg = assign(logits.detach().sigmoid(), boxes.detach(), xy, gt)
    norm = t_scores.sum().clamp(min=1.0)
    loss_cls = F.binary_cross_entropy_with_logits(logits, t_scores, reduction="sum") / norm
    if fg.any():
        weight = t_scores.sum(-1)[fg]
        ciou = bbox_iou(boxes[fg], t_box[fg], ciou=True)
        loss_box = ((1.0 - ciou) * weight).sum() / norm
    else:
        loss_box = dist.sum() * 0.0
    total = box_gain * loss_box + cls_gain * loss_cls
    return total, {"box": float(loss_box.detach()), "cls": float(loss_cls.detach())}
