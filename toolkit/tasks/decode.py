"""Decoders for YOLO-family outputs -> boxes in network-input pixels, after NMS.

One documented contract for the three layouts seen in the wild:

| format | shape | rows |
| --- | --- | --- |
| ``yolov8`` | ``[N, 4 + C, A]`` | cx, cy, w, h, then C class scores (YOLOv8, YOLO11, ``zoo:defect-det``) |
| ``yolov5`` | ``[N, A, 5 + C]`` | cx, cy, w, h, objectness, then C class scores (YOLOv5, YOLOv7) |
| ``yolo-nms`` | ``[N, K, 6]`` | x1, y1, x2, y2, score, class (NMS in the graph; end-to-end exports) |

Scores are taken as probabilities (these exports apply the sigmoid in the graph). Each anchor
keeps its best class (single label per box, as Ultralytics predicts by default); ``classes``
restricts that choice to the listed classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.errors import BadInputError
from toolkit.tasks.boxes import batched_nms

FORMATS = ("yolov8", "yolov5", "yolo-nms")
# Candidates kept for NMS after the confidence filter (Ultralytics' max_nms).
MAX_NMS = 30000


@dataclass(frozen=True)
class DecodeOptions:
    """Thresholds and filters shared by every decoder."""

    conf: float = 0.25
    iou: float = 0.45
    max_det: int = 300
    classes: tuple[int, ...] | None = None
    agnostic: bool = False


def _cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    half = b[:, 2:4] / 2
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def _candidates(
    scores: np.ndarray, conf: float, classes: tuple[int, ...] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``scores`` ``[C, A]`` -> (anchor index, best score, class id) of anchors above ``conf``.

    The max over classes (a fast reduction) filters first; the argmax runs only on the few
    survivors. ``classes`` restricts the choice to those class ids.
    """
    ids: np.ndarray | None = None
    if classes is not None:
        ids = np.asarray([c for c in classes if 0 <= c < scores.shape[0]], np.int64)
        scores = scores[ids]
        if ids.size == 0:
            empty = np.zeros(0, np.int64)
            return empty, np.zeros(0, np.float32), empty
    best = scores.max(0)
    idx = np.flatnonzero(best > conf)
    cls = scores[:, idx].argmax(0)
    return idx, best[idx], (ids[cls] if ids is not None else cls.astype(np.int64))


def _finish(
    xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray, opts: DecodeOptions, nms: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(conf) > MAX_NMS:
        top = np.argpartition(-conf, MAX_NMS)[:MAX_NMS]
        xyxy, conf, cls = xyxy[top], conf[top], cls[top]
    if nms:
        keep = batched_nms(
            xyxy, conf, cls, iou=opts.iou, max_det=opts.max_det, agnostic=opts.agnostic
        )
    else:
        keep = np.argsort(-conf, kind="stable")[: opts.max_det]
    return (
        xyxy[keep].astype(np.float32),
        conf[keep].astype(np.float32),
        cls[keep].astype(np.int64),
    )


def decode_yolov8(pred: np.ndarray, opts: DecodeOptions) -> tuple[np.ndarray, ...]:
    """One image's ``[4 + C, A]`` output -> (xyxy, confidence, class_id)."""
    idx, scores, cls = _candidates(pred[4:], opts.conf, opts.classes)
    boxes = _cxcywh_to_xyxy(pred[:4, idx].T)
    return _finish(boxes, scores, cls, opts)


def decode_yolov5(pred: np.ndarray, opts: DecodeOptions) -> tuple[np.ndarray, ...]:
    """One image's ``[A, 5 + C]`` output -> (xyxy, confidence, class_id)."""
    # Objectness bounds every class score: filter on it first (most anchors go here).
    pred = pred[pred[:, 4] > opts.conf]
    idx, scores, cls = _candidates((pred[:, 5:] * pred[:, 4:5]).T, opts.conf, opts.classes)
    boxes = _cxcywh_to_xyxy(pred[idx, :4])
    return _finish(boxes, scores, cls, opts)


def decode_yolo_nms(pred: np.ndarray, opts: DecodeOptions) -> tuple[np.ndarray, ...]:
    """One image's ``[K, 6]`` output (already NMS-ed) -> (xyxy, confidence, class_id)."""
    keep = pred[:, 4] > opts.conf
    cls = np.round(pred[:, 5]).astype(np.int64)
    if opts.classes is not None:
        keep &= np.isin(cls, np.asarray(opts.classes, np.int64))
    return _finish(pred[keep, :4], pred[keep, 4], cls[keep], opts, nms=False)


def decode(
    output: np.ndarray, fmt: str, opts: DecodeOptions | None = None
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Decode a batch of raw outputs in layout ``fmt``: per image (xyxy, confidence, class_id).

    Raises:
        BadInputError: unknown format, or an output whose shape does not fit it.
    """
    opts = opts or DecodeOptions()
    out = np.asarray(output)
    if out.dtype != np.float32:
        out = out.astype(np.float32)  # fp16 models
    if out.ndim == 2:
        out = out[None]
    if out.ndim != 3:
        raise BadInputError(f"a {fmt} output must be 3-D, got shape {list(out.shape)}")
    n, a, b = out.shape
    if fmt == "yolov8":
        if a < 5:
            raise BadInputError(f"yolov8 output [N, 4+C, A] needs 4+C >= 5, got {list(out.shape)}")
        return [decode_yolov8(out[i], opts) for i in range(n)]
    if fmt == "yolov5":
        if b < 6:
            raise BadInputError(f"yolov5 output [N, A, 5+C] needs 5+C >= 6, got {list(out.shape)}")
        return [decode_yolov5(out[i], opts) for i in range(n)]
    if fmt == "yolo-nms":
        if b < 6:
            raise BadInputError(f"yolo-nms output [N, K, 6] expected, got {list(out.shape)}")
        return [decode_yolo_nms(out[i], opts) for i in range(n)]
    raise BadInputError(f"unknown detection output format '{fmt}' (expected one of {FORMATS})")
