"""The live loop's overlay: the results, then the status bar, the OK/NG badge and the ROI.

The results are drawn by :mod:`toolkit.tasks.annotate` (boxes: the same look as ``edgetk
predict --save``; a classifier's top-k list); this adds what only a live frame has: the status
bar (FPS, latency, source), the verdict badge, the ROI, the capture time and the NO SIGNAL card.
"""

from __future__ import annotations

import cv2
import numpy as np

from toolkit.live.verdict import Result
from toolkit.tasks.annotate import (
    BLACK,
    CYAN,
    FONT,
    bgr_copy,
    draw_detections,
    draw_label,
    draw_topk,
    text_size,
)
from toolkit.tasks.classify import Classification
from toolkit.tasks.detect import Detections

_GREEN, _RED = (40, 200, 40), (40, 40, 230)


def draw_overlay(
    frame: np.ndarray,
    result: Result,
    verdict: str,
    *,
    fps: float,
    latency_ms: float,
    roi: tuple[int, int, int, int] | None = None,
    source: str = "",
) -> np.ndarray:
    """An annotated BGR copy of ``frame``.

    Args:
        frame: the captured frame (BGR, gray or BGRA).
        result: a Classification (top-k list) or Detections (boxes).
        verdict: ``"OK"`` or ``"NG"`` (a coloured badge at the top right).
        fps: the loop's current frames per second.
        latency_ms: capture-to-result time of this frame.
        roi: drawn as a thin rectangle when given.
        source: shown in the status bar (already redacted by the caller).
    """
    img = draw_detections(frame, result) if isinstance(result, Detections) else bgr_copy(frame)
    size = text_size(img)
    if roi is not None:
        x, y, w, h = roi
        cv2.rectangle(img, (x, y), (x + w, y + h), CYAN, max(1, size.thickness // 2))
    status = f"{fps:5.1f} FPS  {latency_ms:6.1f} ms"
    if source:
        status += f"  {source[:40]}"
    draw_label(img, status, (0, 0), BLACK, size)
    badge = " NG " if verdict == "NG" else " OK "
    (bw, _), _ = cv2.getTextSize(badge, FONT, size.scale * 1.2, size.thickness)
    draw_label(img, badge, (img.shape[1] - bw - 12, 0), _RED if verdict == "NG" else _GREEN, size)
    if isinstance(result, Classification) and len(result):
        draw_topk(img, result, top=int(30 * size.scale) + 10)
    return img


def draw_timestamp(img: np.ndarray, ts: str) -> None:
    """The capture time (``2026-11-25T16:00:00.123Z``) at the bottom left, in place."""
    draw_label(img, ts.replace("T", " "), (0, img.shape[0]), BLACK, text_size(img))


def no_signal_frame(size: tuple[int, int], seconds: float, wall: float) -> np.ndarray:
    """A dark ``(w, h)`` frame saying "NO SIGNAL 12.5 s", with the time it stands for."""
    from toolkit.live.sources import utc_iso

    w, h = size
    img = np.full((h, w, 3), 32, np.uint8)
    text_at = text_size(img)
    s, t = text_at.scale * 1.3, text_at.thickness
    text = f"NO SIGNAL {seconds:.1f} s"
    (tw, th), _ = cv2.getTextSize(text, FONT, s, t)
    org = (max(0, (w - tw) // 2), max(th, (h + th) // 2))
    cv2.putText(img, text, org, FONT, s, _RED, t, cv2.LINE_AA)
    draw_timestamp(img, utc_iso(wall))
    return img
