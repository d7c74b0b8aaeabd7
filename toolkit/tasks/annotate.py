"""Drawing results on frames: the top-1 label of a classification, readable at any size."""

from __future__ import annotations

import cv2
import numpy as np

from toolkit.tasks.classify import Classification
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
