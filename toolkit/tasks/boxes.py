"""Box operations: pairwise IoU, non-maximum suppression and greedy matching.

- :func:`box_iou`: the IoU of every pair of two sets of xyxy boxes.
- :func:`nms` / :func:`batched_nms`: vectorized NMS, class-aware (default) or class-agnostic.
- :func:`greedy_match`: predictions matched one by one, best first, to reference boxes (the
  matching of the mAP metrics and of the float-vs-converted detector agreement).

Class-aware NMS runs as one agnostic pass over boxes shifted by ``class_id * offset`` (the
trick from torchvision's ``batched_nms`` and Ultralytics), so boxes of different classes
never overlap and never suppress each other. The inner loop is numpy over the kept boxes,
not Python over all of them: each iteration removes every box its winner suppresses.
"""

from __future__ import annotations

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``[N, 4]`` and ``[M, 4]`` xyxy boxes -> ``[N, M]``."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def nms(xyxy: np.ndarray, scores: np.ndarray, iou: float = 0.45, max_det: int = 300) -> np.ndarray:
    """Greedy NMS: indices of kept boxes, highest score first (at most ``max_det``).

    A box is suppressed when its IoU with a kept, higher-scoring box is above ``iou``.
    """
    n = len(scores)
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-scores, kind="stable")
    boxes = np.asarray(xyxy, np.float32)[order]
    x1, y1, x2, y2 = boxes.T
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    alive = np.ones(n, bool)
    keep: list[int] = []
    i = 0
    while i < n and len(keep) < max_det:
        if not alive[i]:
            i += 1
            continue
        keep.append(i)
        rest = np.flatnonzero(alive[i + 1 :]) + i + 1
        if rest.size == 0:
            break
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        ov = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        alive[rest[ov > iou]] = False
        i += 1
    return order[np.asarray(keep, np.int64)]


def batched_nms(
    xyxy: np.ndarray,
    scores: np.ndarray,
    class_id: np.ndarray,
    *,
    iou: float = 0.45,
    max_det: int = 300,
    agnostic: bool = False,
) -> np.ndarray:
    """NMS per class (or across classes with ``agnostic``): kept indices, best first."""
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    boxes = np.asarray(xyxy, np.float32)
    if not agnostic:
        # Shift each class into its own region far from every other one.
        span = float(np.abs(boxes).max()) + 1.0
        boxes = boxes + (np.asarray(class_id, np.float32) * 2 * span)[:, None]
    return nms(boxes, np.asarray(scores, np.float32), iou, max_det)


def greedy_match(ious: np.ndarray, order: np.ndarray, threshold: float) -> np.ndarray:
    """Match rows (predictions) to columns (reference boxes), one row at a time.

    Each row, in ``order`` (best first), takes the column not yet taken with its highest IoU
    (the first on a tie) if that IoU reaches ``threshold``. Pairs that must not match (boxes of
    other classes) are marked in ``ious`` by a value below ``threshold``.

    Returns:
        The column each row took, ``-1`` for none (``[P]`` int64).
    """
    ious = np.asarray(ious)
    match = np.full(ious.shape[0], -1, np.int64)
    if ious.shape[1] == 0:
        return match
    taken = np.zeros(ious.shape[1], bool)
    for i in order:
        cand = np.where(taken, -1.0, ious[i])
        j = int(cand.argmax())
        if cand[j] >= threshold:
            taken[j] = True
            match[i] = j
    return match
