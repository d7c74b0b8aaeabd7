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
    from toolkit.data.yolo import YoloSet
    from toolkit.evaluate.metrics import DetectionMetrics
    from toolkit.model.spec import ModelSpec
    from toolkit.tasks.detect import DetectTask

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
    strict: bool = False,
) -> dict[str, Any]:
    """Run ``session`` over a split of a YOLO set and score it.

    An image that cannot be read is skipped (scored in no metric) and listed in the result's
    ``skipped``; with ``strict`` it is an error.

    Args:
        session: a detector session (its spec's task is ``detect``).
        data: ``data.yaml`` or its folder.
        split: ``val`` (default), ``train`` or ``test``.
        conf, iou, max_det: decoding and NMS settings (low ``conf``: the full PR curve).
        progress: called as ``progress(done, total)`` after each batch.
        strict: raise on the first unreadable image instead of skipping it.

    Returns:
        ``{"map50", "map50_95", "precision", "recall", "images", "instances", "per_class",
        "classes", "split", "data", "seconds", "images_per_second",
        "skipped": [{"source", "reason"}]}``.

    Raises:
        BadInputError: a classifier session, a set whose classes exceed the model's, an
            unreadable image with ``strict``, or no readable image at all.
    """
    from toolkit.data.images import SkippedImage, skipped_text
    from toolkit.evaluate.metrics import DetectionMetrics
    from toolkit.tasks.detect import DetectTask

    ys = _open_set(session.spec, data, split)
    task = DetectTask(session.spec, conf=conf, iou=iou, max_det=max_det)
    metrics = DetectionMetrics(tuple(ys.names))
    t0 = time.perf_counter()
    samples = list(ys.samples(split))
    skipped: list[SkippedImage] = []
    for s in range(0, len(samples), batch):
        chunk, frames = _read_chunk(samples[s : s + batch], ys.yaml_path.parent, strict, skipped)
        _score_chunk(session, task, metrics, chunk, frames)
        if progress is not None:
            progress(min(s + batch, len(samples)), len(samples))
    if len(skipped) == len(samples):
        raise BadInputError(f"no readable images in {ys.yaml_path} ({skipped_text(skipped)})")
    seconds = time.perf_counter() - t0
    result = metrics.compute()
    result.update(classes=list(ys.names), split=split, data=str(ys.yaml_path))
    return _with_timing(result, seconds, len(samples) - len(skipped), skipped)


def _with_timing(
    result: dict[str, Any], seconds: float, scored: int, skipped: list[Any]
) -> dict[str, Any]:
    """``result`` with the run's seconds, images per second and skipped images added."""
    result.update(
        seconds=round(seconds, 3),
        images_per_second=round(scored / seconds, 2) if seconds > 0 else None,
        skipped=[x.to_dict() for x in skipped],
    )
    return result


def _open_set(spec: ModelSpec, data: str | Path, split: str) -> YoloSet:
    """The YOLO set, once the model is known to be a detector of (at least) its classes."""
    from toolkit.data.yolo import load_yolo_set

    if spec.task != "detect":
        raise BadInputError(
            f"validating a detection set needs a detector, not a '{spec.task}' model"
        )
    ys = load_yolo_set(data)
    if not ys.images(split):
        raise BadInputError(f"{ys.yaml_path}: the '{split}' split has no images")
    if spec.labels and len(spec.labels) < len(ys.names):
        raise BadInputError(
            f"the set has {len(ys.names)} classes but the model knows {len(spec.labels)}"
        )
    return ys


def _score_chunk(
    session: Session,
    task: DetectTask,
    metrics: DetectionMetrics,
    chunk: list[Any],
    frames: list[np.ndarray],
) -> None:
    """Detect on the readable ``frames`` of a chunk and add them to ``metrics``."""
    from toolkit.tasks.base import run_task

    dets = run_task(session, task, frames) if frames else []
    for (_, cls, xyxy), frame, det in zip(chunk, frames, dets, strict=True):
        h, w = frame.shape[:2]
        gt = xyxy * np.array([w, h, w, h], np.float32)
        metrics.update(det.xyxy, det.confidence, det.class_id, gt, cls)


def _read_chunk(
    chunk: list[Any], root: Path, strict: bool, skipped: list[Any]
) -> tuple[list[Any], list[np.ndarray]]:
    """The readable samples of a chunk and their images; the others go to ``skipped``."""
    from toolkit.data.images import ImageReadError, SkippedImage, read_image, shown_name

    kept, frames = [], []
    for sample in chunk:
        try:
            frames.append(read_image(sample[0]))
        except ImageReadError as e:
            if strict:
                raise
            skipped.append(SkippedImage(shown_name(Path(sample[0]), root), e.reason))
            continue
        kept.append(sample)
    return kept, frames
