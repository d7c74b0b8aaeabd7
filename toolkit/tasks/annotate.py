"""Drawing results on frames: detections' boxes and labels, a classification's text.

The one place that draws results: ``edgetk predict --save`` (:func:`draw_classification`,
:func:`draw_detections`), the live overlay (:mod:`toolkit.live.overlay`: its status bar and
badge are :func:`draw_label` boxes, a classifier's top-k is :func:`draw_topk`) and thumbnail
captions (:func:`draw_caption`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.tasks.classify import Classification
from toolkit.tasks.detect import Detections
from toolkit.tasks.preprocess import as_bgr

FONT = cv2.FONT_HERSHEY_SIMPLEX
BLACK, WHITE, CYAN = (0, 0, 0), (255, 255, 255), (220, 200, 0)
Color = tuple[int, int, int]


@dataclass(frozen=True)
class TextSize:
    """A font scale, stroke thickness and padding (pixels) for :func:`draw_label`."""

    scale: float
    thickness: int
    pad: int


def text_size(img: np.ndarray, *, min_scale: float = 0.35, pad: float = 3.0) -> TextSize:
    """Text that scales with ``img``, so it stays legible on 64 px thumbnails and 4K frames.

    The live overlay's look by default; ``edgetk predict`` uses ``min_scale=0.3, pad=4``.
    """
    scale = max(min_scale, min(img.shape[:2]) / 640)
    return TextSize(scale, max(1, round(scale * 2)), max(2, round(pad * scale)))


def bgr_copy(frame: np.ndarray) -> np.ndarray:
    """A contiguous 3-channel BGR copy of ``frame`` (gray or BGRA too) to draw on."""
    return np.ascontiguousarray(as_bgr(frame, 3)).copy()


def draw_label(
    img: np.ndarray, text: str, org: tuple[int, int], fill: Color, size: TextSize
) -> None:
    """``text`` on a filled box whose top-left corner is ``org``, kept inside ``img`` (in place).

    The text is black on a light fill, white on a dark one.
    """
    (tw, th), base = cv2.getTextSize(text, FONT, size.scale, size.thickness)
    pad = size.pad
    x = min(max(0, org[0]), max(0, img.shape[1] - tw - 2 * pad))
    y = min(max(0, org[1]), max(0, img.shape[0] - th - base - 2 * pad))
    cv2.rectangle(img, (x, y), (x + tw + 2 * pad, y + th + base + 2 * pad), fill, cv2.FILLED)
    color = BLACK if sum(fill) > 450 else WHITE
    cv2.putText(
        img, text, (x + pad, y + pad + th), FONT, size.scale, color, size.thickness, cv2.LINE_AA
    )


def draw_classification(frame: np.ndarray, result: Classification) -> np.ndarray:
    """A BGR copy of ``frame`` with "label 0.93" in a filled box at its top-left corner."""
    img = bgr_copy(frame)
    if len(result):
        text = f"{result.top1_label} {result.top1_confidence:.2f}"
        draw_label(img, text, (0, 0), BLACK, text_size(img, min_scale=0.3, pad=4.0))
    return img


def draw_topk(img: np.ndarray, result: Classification, top: int) -> None:
    """A classification's top-k as "label 0.93" lines from ``top`` down (in place).

    The best is highlighted; the look is the live overlay's (:func:`text_size`'s default).
    """
    size = text_size(img)
    line = int(30 * size.scale) + 8
    for i, (label, conf) in enumerate(zip(result.labels, result.confidence, strict=True)):
        draw_label(
            img, f"{label} {float(conf):.2f}", (0, top + i * line), BLACK if i else CYAN, size
        )


def draw_caption(img: np.ndarray, text: str, color: Color) -> None:
    """A thumbnail's caption (in place): ``text`` in ``color`` on a black bar along the bottom.

    A fixed small font, sized for tiles of about 160 pixels.
    """
    h, w = img.shape[:2]
    cv2.rectangle(img, (0, h - 24), (w - 1, h - 1), BLACK, cv2.FILLED)
    cv2.putText(img, text, (4, h - 7), FONT, 0.5, color, 1, cv2.LINE_AA)


def _color(class_id: int) -> Color:
    """A distinct, stable BGR colour per class (golden-ratio hue steps)."""
    hue = int((class_id * 0.618034 % 1.0) * 180)
    hsv = np.uint8([[[hue, 220, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_detections(frame: np.ndarray, result: Detections) -> np.ndarray:
    """A BGR copy of ``frame`` with each box, its label and confidence."""
    img = bgr_copy(frame)
    h, w = img.shape[:2]
    scale = max(0.35, min(h, w) / 800)
    thickness = max(1, round(min(h, w) / 300))
    for box, conf, cid, label in zip(
        result.xyxy, result.confidence, result.class_id, result.labels, strict=True
    ):
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        color = _color(int(cid))
        cv2.rectangle(img, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        text = f"{label} {conf:.2f}"
        (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
        # The label sits above the box, or inside it when the box touches the top edge.
        ty = y1 - base - 2 if y1 - th - base - 2 >= 0 else y1 + th + 2
        cv2.rectangle(img, (x1, ty - th - 2), (x1 + tw + 2, ty + base), color, cv2.FILLED)
        cv2.putText(img, text, (x1 + 1, ty), FONT, scale, BLACK, 1, cv2.LINE_AA)
    return img
