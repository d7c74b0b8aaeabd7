"""Drawing results on frames: a classification's top-1 label, detections' boxes and labels."""

from __future__ import annotations

import cv2
import numpy as np

from toolkit.tasks.classify import Classification
from toolkit.tasks.detect import Detections
from toolkit.tasks.preprocess import as_bgr


def draw_classification(frame: np.ndarray, result: Classification) -> np.ndarray:
    """A BGR copy of ``frame`` with "label 0.93" in a filled box at its top-left corner."""
    img = np.ascontiguousarray(as_bgr(frame, 3)).copy()
    if not len(result):
        return img
    text = f"{result.top1_label} {result.top1_confidence:.2f}"
    h, w = img.shape[:2]
    # Scale the text with the image so it stays legible on 64 px thumbnails and 4K frames.
    scale = max(0.3, min(h, w) / 640)
    thickness = max(1, round(scale * 2))
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    pad = max(2, round(4 * scale))
    cv2.rectangle(img, (0, 0), (tw + 2 * pad, th + base + 2 * pad), (0, 0, 0), cv2.FILLED)
    cv2.putText(img, text, (pad, pad + th), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return img


def _color(class_id: int) -> tuple[int, int, int]:
    """A distinct, stable BGR colour per class (golden-ratio hue steps)."""
    hue = int((class_id * 0.618034 % 1.0) * 180)
    hsv = np.uint8([[[hue, 220, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_detections(frame: np.ndarray, result: Detections) -> np.ndarray:
    """A BGR copy of ``frame`` with each box, its label and confidence."""
    img = np.ascontiguousarray(as_bgr(frame, 3)).copy()
    h, w = img.shape[:2]
    scale = max(0.35, min(h, w) / 800)
    thickness = max(1, round(min(h, w) / 300))
    font = cv2.FONT_HERSHEY_SIMPLEX
    for box, conf, cid, label in zip(
        result.xyxy, result.confidence, result.class_id, result.labels, strict=True
    ):
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        color = _color(int(cid))
        cv2.rectangle(img, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        text = f"{label} {conf:.2f}"
        (tw, th), base = cv2.getTextSize(text, font, scale, 1)
        # The label sits above the box, or inside it when the box touches the top edge.
        ty = y1 - base - 2 if y1 - th - base - 2 >= 0 else y1 + th + 2
        cv2.rectangle(img, (x1, ty - th - 2), (x1 + tw + 2, ty + base), color, cv2.FILLED)
        cv2.putText(img, text, (x1 + 1, ty), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return img
