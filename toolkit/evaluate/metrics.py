"""Detection metrics: COCO-style mAP50 and mAP50-95 (101-point interpolation), P, R.

Predictions are matched to ground truth per image and class, greedily by confidence: each
prediction takes the unmatched ground-truth box it overlaps most, if that IoU reaches the
threshold (as pycocotools and Ultralytics do; :func:`toolkit.tasks.boxes.greedy_match`), at
each of the ten IoU thresholds 0.50, 0.55, ..., 0.95.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from toolkit.tasks.boxes import box_iou, greedy_match

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision-recall curve, COCO's 101-point interpolation.

    ``recall`` increasing, ``precision`` at each point (predictions sorted by confidence).
    """
    if recall.size == 0:
        return 0.0
    # Precision envelope: the best precision at any recall at least as high.
    prec = np.concatenate([precision, [0.0]])
    prec = np.maximum.accumulate(prec[::-1])[::-1]
    points = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, points, side="left")
    return float(np.where(idx < len(recall), prec[np.minimum(idx, len(prec) - 1)], 0.0).mean())


def match_image(
    pred_xyxy: np.ndarray,
    pred_conf: np.ndarray,
    pred_cls: np.ndarray,
    gt_xyxy: np.ndarray,
    gt_cls: np.ndarray,
) -> np.ndarray:
    """True-positive flags ``[P, 10]`` of one image's predictions at each IoU threshold."""
    p = len(pred_conf)
    tp = np.zeros((p, len(IOU_THRESHOLDS)), bool)
    if p == 0 or len(gt_cls) == 0:
        return tp
    ious = box_iou(pred_xyxy, gt_xyxy)
    ious[np.asarray(pred_cls)[:, None] != np.asarray(gt_cls)[None, :]] = 0.0
    order = np.argsort(-np.asarray(pred_conf), kind="stable")
    for t, thr in enumerate(IOU_THRESHOLDS):
        tp[:, t] = greedy_match(ious, order, thr - 1e-9) >= 0
    return tp


@dataclass
class DetectionMetrics:
    """Accumulates per-image matches; :meth:`compute` gives the summary."""

    names: tuple[str, ...]
    _tp: list[np.ndarray] = field(default_factory=list)
    _conf: list[np.ndarray] = field(default_factory=list)
    _cls: list[np.ndarray] = field(default_factory=list)
    _gt_cls: list[np.ndarray] = field(default_factory=list)

    def update(
        self,
        pred_xyxy: np.ndarray,
        pred_conf: np.ndarray,
        pred_cls: np.ndarray,
        gt_xyxy: np.ndarray,
        gt_cls: np.ndarray,
    ) -> None:
        """Add one image: predictions and ground truth in the same pixel coordinates."""
        self._tp.append(match_image(pred_xyxy, pred_conf, pred_cls, gt_xyxy, gt_cls))
        self._conf.append(np.asarray(pred_conf, np.float64))
        self._cls.append(np.asarray(pred_cls, np.int64))
        self._gt_cls.append(np.asarray(gt_cls, np.int64))

    def compute(self) -> dict[str, object]:
        """mAP50, mAP50-95, precision, recall (at the best-F1 confidence), per class.

        Classes without ground truth are left out of the means (as COCO does).
        """
        tp = np.concatenate(self._tp) if self._tp else np.zeros((0, 10), bool)
        conf = np.concatenate(self._conf) if self._conf else np.zeros(0)
        cls = np.concatenate(self._cls) if self._cls else np.zeros(0, np.int64)
        gt = np.concatenate(self._gt_cls) if self._gt_cls else np.zeros(0, np.int64)
        per_class = []
        for c, name in enumerate(self.names):
            n_gt = int((gt == c).sum())
            sel = cls == c
            order = np.argsort(-conf[sel], kind="stable")
            tpc = tp[sel][order]
            n_pred = int(sel.sum())
            row: dict[str, object] = {"class_id": c, "label": name, "instances": n_gt}
            if n_gt == 0:
                row.update(ap50=None, ap50_95=None, precision=None, recall=None)
                per_class.append(row)
                continue
            ctp = np.cumsum(tpc, 0)
            cfp = np.cumsum(~tpc, 0)
            recall = ctp / n_gt
            precision = ctp / np.maximum(ctp + cfp, 1)
            aps = [average_precision(recall[:, t], precision[:, t]) for t in range(10)]
            if n_pred:
                f1 = (
                    2
                    * precision[:, 0]
                    * recall[:, 0]
                    / np.maximum(precision[:, 0] + recall[:, 0], 1e-9)
                )
                k = int(f1.argmax())
                p, r = float(precision[k, 0]), float(recall[k, 0])
            else:
                p, r = 0.0, 0.0
            row.update(ap50=aps[0], ap50_95=float(np.mean(aps)), precision=p, recall=r)
            per_class.append(row)
        valid = [r for r in per_class if r["instances"]]

        def mean(key: str) -> float:
            return float(np.mean([r[key] for r in valid])) if valid else 0.0

        return {
            "map50": mean("ap50"),
            "map50_95": mean("ap50_95"),
            "precision": mean("precision"),
            "recall": mean("recall"),
            "images": len(self._tp),
            "instances": len(gt),
            "per_class": per_class,
        }
