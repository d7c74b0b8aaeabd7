"""Detector loss: task-aligned assignment (YOLOv8/TOOD), BCE classes, CIoU boxes.

Each ground-truth box takes the ``topk`` anchors inside it with the best alignment
``score^alpha * IoU^beta`` (score: the predicted probability of the box's class); an anchor
claimed by two boxes goes to the one it overlaps most. Class targets are soft: the alignment,
normalized per box so its best anchor gets that anchor's IoU.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def bbox_iou(
    a: torch.Tensor, b: torch.Tensor, ciou: bool = False, eps: float = 1e-7
) -> torch.Tensor:
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
    scores: torch.Tensor,
    boxes: torch.Tensor,
    anchors: torch.Tensor,
    gt_cls: torch.Tensor,
    gt_box: torch.Tensor,
    gt_mask: torch.Tensor,
    *,
    topk: int = 10,
    alpha: float = 0.5,
    beta: float = 6.0,
    eps: float = 1e-9,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Task-aligned assignment for a batch.

    Args:
        scores: predicted class probabilities ``[B, A, C]``.
        boxes: predicted xyxy boxes ``[B, A, 4]`` (input pixels).
        anchors: anchor points ``[A, 2]``.
        gt_cls: ``[B, M]`` class ids; gt_box ``[B, M, 4]`` xyxy; gt_mask ``[B, M]`` valid rows.

    Returns:
        ``(target_boxes [B, A, 4], target_scores [B, A, C], foreground [B, A])``.
    """
    b, a, c = scores.shape
    m = gt_box.shape[1]
    if m == 0:
        return (
            torch.zeros_like(boxes),
            torch.zeros_like(scores),
            torch.zeros(b, a, dtype=torch.bool, device=scores.device),
        )
    ax, ay = anchors[:, 0], anchors[:, 1]
    inside = (
        (ax[None, None] > gt_box[..., 0:1])
        & (ax[None, None] < gt_box[..., 2:3])
        & (ay[None, None] > gt_box[..., 1:2])
        & (ay[None, None] < gt_box[..., 3:4])
    ) & gt_mask[..., None]  # [B, M, A]
    ious = bbox_iou(gt_box[:, :, None, :], boxes[:, None, :, :]).clamp(min=0)  # [B, M, A]
    cls_idx = gt_cls.clamp(min=0, max=c - 1)[..., None].expand(b, m, a)
    cls_score = scores.transpose(1, 2).gather(1, cls_idx)  # [B, M, A]
    align = cls_score.pow(alpha) * ious.pow(beta) * inside
    k = min(topk, a)
    top = align.topk(k, dim=-1).indices
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
    pos = torch.where(multi, best & pos, pos)
    fg = pos.any(1)  # [B, A]
    gt_idx = pos.float().argmax(1)  # [B, A]
    t_box = gt_box.gather(1, gt_idx[..., None].expand(b, a, 4))
    t_cls = gt_cls.gather(1, gt_idx).clamp(min=0, max=c - 1)
    align = align * pos
    norm = (align * ious.amax(-1, keepdim=True) / (align.amax(-1, keepdim=True) + eps)).amax(1)
    t_scores = F.one_hot(t_cls, c).float() * (norm * fg)[..., None]
    return t_box, t_scores, fg


def detection_loss(
    dist: torch.Tensor,
    logits: torch.Tensor,
    anchors: torch.Tensor,
    gt_cls: torch.Tensor,
    gt_box: torch.Tensor,
    gt_mask: torch.Tensor,
    *,
    box_gain: float = 7.5,
    cls_gain: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss for the detector's raw outputs and padded ground truth (input pixels)."""
    xy = anchors[:, :2]
    boxes = torch.cat([xy - dist[..., :2], xy + dist[..., 2:]], -1)
    t_box, t_scores, fg = assign(
        logits.detach().sigmoid(), boxes.detach(), xy, gt_cls, gt_box, gt_mask
    )
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
