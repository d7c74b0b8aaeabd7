"""Validate a detector session on a YOLO-format set: mAP50, mAP50-95, precision, recall."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toolkit.errors import BadInputError

if TYPE_CHECKING:
    from toolkit.backends.base import Session

# Ultralytics' validation settings: a low threshold so the whole PR curve is measured.
VAL_CONF = 0.001
VAL_IOU = 0.6


def validate_detector(
    session: Session,
    data: str | Path,
    split: str = "val",
    *,
    batch: int = 16,
    conf: float = VAL_CONF,
    iou: float = VAL_IOU,
    max_det: int = 300,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run ``session`` over a split of a YOLO set and score it.

    Args:
        session: a detector session (its spec's task is ``detect``).
        data: ``data.yaml`` or its folder.
        split: ``val`` (default), ``train`` or ``test``.
        conf, iou, max_det: decoding and NMS settings (low ``conf``: the full PR curve).
        progress: called as ``progress(done, total)`` after each batch.

    Returns:
        ``{"map50", "map50_95", "precision", "recall", "images", "instances", "per_class",
        "classes", "split", "data", "seconds", "images_per_second"}``.

    Raises:
        BadInputError: a classifier session, or a set whose classes exceed the model's.
    """
    import cv2

    from toolkit.data.yolo import load_yolo_set
    from toolkit.metrics.detection import DetectionMetrics
    from toolkit.tasks.base import run_task
    from toolkit.tasks.detect import DetectTask

    spec = session.spec
    if spec.task != "detect":
        raise BadInputError(
            f"validating a detection set needs a detector, not a '{spec.task}' model"
        )
    ys = load_yolo_set(data)
    images = ys.images(split)
    if not images:
        raise BadInputError(f"{ys.yaml_path}: the '{split}' split has no images")
    names = ys.names
    if spec.labels and len(spec.labels) < len(names):
        raise BadInputError(
            f"the set has {len(names)} classes but the model knows {len(spec.labels)}"
        )
    task = DetectTask(spec, conf=conf, iou=iou, max_det=max_det)
    metrics = DetectionMetrics(tuple(names))
    t0 = time.perf_counter()
    done = 0
    samples = list(ys.samples(split))
    for s in range(0, len(samples), batch):
        chunk = samples[s : s + batch]
        frames = []
        for path, _, _ in chunk:
            img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise BadInputError(f"cannot read image {path}")
            frames.append(img)
        for (_, cls, xyxy), frame, det in zip(
            chunk, frames, run_task(session, task, frames), strict=True
        ):
            h, w = frame.shape[:2]
            gt = xyxy * np.array([w, h, w, h], np.float32)
            metrics.update(det.xyxy, det.confidence, det.class_id, gt, cls)
        done += len(chunk)
        if progress is not None:
            progress(done, len(samples))
    seconds = time.perf_counter() - t0
    result = metrics.compute()
    result.update(
        classes=list(names),
        split=split,
        data=str(ys.yaml_path),
        seconds=round(seconds, 3),
        images_per_second=round(len(samples) / seconds, 2) if seconds > 0 else None,
    )
    return result
