"""``validate()``: the one entry of ``edgetk val``. The data picks the metric: a YOLO-format set
(``data.yaml``) scores a detector (:func:`toolkit.evaluate.detect.validate_detector`), an
ImageFolder a classifier (:func:`toolkit.evaluate.classify.validate_classifier`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.evaluate.detect import VAL_CONF, VAL_IOU

if TYPE_CHECKING:
    from toolkit.backends.base import Session
    from toolkit.model.spec import SpecOverrides
    from toolkit.tasks.tiles import TileGrid


@dataclass(frozen=True)
class Validation:
    """A validation's metrics (``result``: what the task's validate function returns)."""

    task: str  # "classify" or "detect"
    backend: str
    emulated: str | None  # see Session.emulated
    result: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "emulated": self.emulated, **self.result}


def validate(
    model: str | Path,
    data: str | Path,
    *,
    backend: str = "auto",
    overrides: SpecOverrides | None = None,
    threads: int | None = None,
    weights: str | None = None,
    model_source: str | None = None,
    batch: int = 16,
    split: str = "val",
    conf: float = VAL_CONF,
    iou: float = VAL_IOU,
    strict: bool = False,
    progress: Callable[[int, int], None] | None = None,
    square: bool = False,
    tiles: TileGrid | None = None,
) -> Validation:
    """Score ``model`` on ``data``: top-1 / top-5 accuracy on an ImageFolder
    (``root/<class>/<images>``), mAP50 / mAP50-95 / precision / recall on a YOLO set.

    Args:
        model: an ``.onnx`` file, or a PyTorch reference with ``backend="torch"``; it is opened
            with ``backend``, ``overrides``, ``threads``, ``weights`` and ``model_source``
            (see :func:`toolkit.backends.open_session`).
        split, conf, iou: detection only: the data.yaml split and the decoding thresholds.
        strict: an unreadable image raises instead of being skipped and listed.
        progress: called with (images done, total) after each batch.
        square: detection: letterbox to the square even for a model with a dynamic height
            and width (else rect inputs, :mod:`toolkit.tasks.rect`).
        tiles: detection: score tiled inference (:mod:`toolkit.tasks.tiles`); the result
            then holds ``"tiles"`` (the grid) beside the metrics.

    Raises:
        BadInputError: a bad ``batch``, a missing data set, or a model whose task does not fit
            the data (a detector on an ImageFolder, a classifier on a YOLO set).
    """
    from toolkit.data.yolo import is_yolo_set

    if batch < 1:
        raise BadInputError(f"--batch must be at least 1, got {batch}")
    root = Path(data)
    opened = {"backend": backend, "overrides": overrides, "threads": threads,
              "weights": weights, "model_source": model_source}  # fmt: skip
    if is_yolo_set(root):
        return _detection(model, root, opened, batch=batch, split=split, conf=conf, iou=iou,
                          strict=strict, progress=progress, square=square,
                          tiles=tiles)  # fmt: skip
    if tiles is not None:
        raise BadInputError("--tiles applies to detectors, validated on a YOLO set (data.yaml)")
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "not found"
        raise BadInputError(
            f"data set {what}: {data} (expected an ImageFolder: root/<class>/<images>)"
        )
    return _classification(model, root, opened, batch=batch, strict=strict, progress=progress)


def _classification(
    model: str | Path, root: Path, opened: dict[str, Any], **options: Any
) -> Validation:
    from toolkit.backends import open_session
    from toolkit.data.imagefolder import ImageFolder
    from toolkit.evaluate.classify import validate_classifier
    from toolkit.tasks.base import make_task

    with open_session(model, **opened) as session:
        if session.spec.task == "detect":
            raise BadInputError(
                f"{model} is a detection model: validate it on a YOLO-format set (data.yaml)"
            )
        make_task(session.spec)
        ds = ImageFolder(root, labels=session.spec.labels or None)
        result = validate_classifier(session, ds, **options)
        return Validation("classify", session.backend, session.emulated, result)


def _detection(
    model: str | Path,
    root: Path,
    opened: dict[str, Any],
    *,
    split: str,
    square: bool,
    tiles: TileGrid | None,
    **options: Any,
) -> Validation:
    from toolkit.backends import open_session
    from toolkit.data.yolo import data_yaml, load_yolo_set
    from toolkit.evaluate.detect import validate_detector

    ys = load_yolo_set(data_yaml(root))
    ys.images(split)  # a missing split fails before the model loads
    with open_session(model, **opened) as session:
        if session.spec.task != "detect":
            raise BadInputError(
                f"{model} is a {session.spec.task} model; a YOLO-format set needs a detector "
                "(pass --task detect if it is one)"
            )
        if tiles is None and not square:
            result = validate_detector(session, ys.yaml_path, split, **options)
        else:
            result = _validate_with(session, ys.yaml_path, split, square, tiles, **options)
        return Validation("detect", session.backend, session.emulated, result)


def _validate_with(
    session: Session,
    data: Path,
    split: str,
    square: bool,
    tiles: TileGrid | None,
    *,
    batch: int,
    conf: float,
    iou: float,
    strict: bool,
    progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    """:func:`~toolkit.evaluate.detect.validate_detector`'s loop with a square letterbox or
    tiles: the same reading, scoring and report (``"tiles"`` added)."""
    import time

    from toolkit.data.images import skipped_text
    from toolkit.evaluate.detect import _open_set, _read_chunk, _with_timing
    from toolkit.evaluate.metrics import DetectionMetrics
    from toolkit.tasks.base import run_task
    from toolkit.tasks.detect import DetectTask
    from toolkit.tasks.tiles import run_tiled

    ys = _open_set(session.spec, data, split)
    task = DetectTask(session.spec, conf=conf, iou=iou)
    metrics = DetectionMetrics(tuple(ys.names))
    samples, skipped = list(ys.samples(split)), []
    t0 = time.perf_counter()
    for s in range(0, len(samples), batch):
        chunk, frames = _read_chunk(samples[s : s + batch], ys.yaml_path.parent, strict, skipped)
        if tiles is None:
            dets = run_task(session, task, frames, square=square) if frames else []
        else:
            dets = [run_tiled(session, task, f, tiles, square=square) for f in frames]
        for (_, cls, xyxy), frame, det in zip(chunk, frames, dets, strict=True):
            h, w = frame.shape[:2]
            gt = xyxy * np.array([w, h, w, h], np.float32)
            metrics.update(det.xyxy, det.confidence, det.class_id, gt, cls)
        if progress is not None:
            progress(min(s + batch, len(samples)), len(samples))
    if len(skipped) == len(samples):
        raise BadInputError(f"no readable images in {ys.yaml_path} ({skipped_text(skipped)})")
    result = metrics.compute()
    result.update(classes=list(ys.names), split=split, data=str(ys.yaml_path), square=square,
                  tiles=None if tiles is None else tiles.describe())  # fmt: skip
    return _with_timing(result, time.perf_counter() - t0, len(samples) - len(skipped), skipped)
