"""The live loop's overlay: boxes or top-k labels, confidence, FPS, latency and the verdict.

Boxes are drawn by :func:`toolkit.tasks.annotate.draw_detections`; this adds the status bar
(FPS, latency, source), the OK/NG badge, the ROI and a classifier's top-k list.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from toolkit.tasks.annotate import draw_detections
from toolkit.tasks.preprocess import as_bgr

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_GREEN, _RED, _WHITE, _BLACK, _CYAN = (
    (40, 200, 40),
    (40, 40, 230),
    (255, 255, 255),
    (0, 0, 0),
    (220, 200, 0),
)


def _scale(img: np.ndarray) -> tuple[float, int]:
    s = max(0.35, min(img.shape[:2]) / 640)
    return s, max(1, round(s * 2))


def _label(img: np.ndarray, text: str, org: tuple[int, int], color: tuple[int, int, int]) -> None:
    """Text on a filled box whose top-left corner is ``org`` (kept inside the image)."""
    s, t = _scale(img)
    (tw, th), base = cv2.getTextSize(text, _FONT, s, t)
    pad = max(2, round(3 * s))
    x = min(max(0, org[0]), max(0, img.shape[1] - tw - 2 * pad))
    y = min(max(0, org[1]), max(0, img.shape[0] - th - base - 2 * pad))
    cv2.rectangle(img, (x, y), (x + tw + 2 * pad, y + th + base + 2 * pad), color, cv2.FILLED)
    text_color = _BLACK if sum(color) > 450 else _WHITE
    cv2.putText(img, text, (x + pad, y + pad + th), _FONT, s, text_color, t, cv2.LINE_AA)


def draw_topk(img: np.ndarray, result: Any, top: int) -> None:
    """Classification: the top-k "label 0.93" lines below the status bar (in place)."""
    s, _t = _scale(img)
    line = int(30 * s) + 8
    for i, (label, conf) in enumerate(zip(result.labels, result.confidence, strict=True)):
        _label(img, f"{label} {float(conf):.2f}", (0, top + i * line), _BLACK if i else _CYAN)


def draw_overlay(
    frame: np.ndarray,
    result: Any,
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
    # Boxes come from the shared annotator (the same look as `edgetk predict --save`).
    if hasattr(result, "xyxy"):
        img = draw_detections(frame, result)
    else:
        img = np.ascontiguousarray(as_bgr(frame, 3)).copy()
    s, t = _scale(img)
    if roi is not None:
        x, y, w, h = roi
        cv2.rectangle(img, (x, y), (x + w, y + h), _CYAN, max(1, t // 2))
    status = f"{fps:5.1f} FPS  {latency_ms:6.1f} ms"
    if source:
        status += f"  {source[:40]}"
    _label(img, status, (0, 0), _BLACK)
    badge = " NG " if verdict == "NG" else " OK "
    (bw, _), _ = cv2.getTextSize(badge, _FONT, s * 1.2, t)
    _label(img, badge, (img.shape[1] - bw - 12, 0), _RED if verdict == "NG" else _GREEN)
    if not hasattr(result, "xyxy") and len(result):
        draw_topk(img, result, top=int(30 * s) + 10)
    return img


def draw_timestamp(img: np.ndarray, ts: str) -> None:
    """The capture time (``2026-11-25T16:00:00.123Z``) at the bottom left, in place."""
    _label(img, ts.replace("T", " "), (0, img.shape[0]), _BLACK)


def no_signal_frame(size: tuple[int, int], seconds: float, wall: float) -> np.ndarray:
    """A dark ``(w, h)`` frame saying "NO SIGNAL 12.5 s", with the time it stands for."""
    from toolkit.live.sources import utc_iso

    w, h = size
    img = np.full((h, w, 3), 32, np.uint8)
    s, t = _scale(img)
    text = f"NO SIGNAL {seconds:.1f} s"
    (tw, th), _ = cv2.getTextSize(text, _FONT, s * 1.3, t)
    org = (max(0, (w - tw) // 2), max(th, (h + th) // 2))
    cv2.putText(img, text, org, _FONT, s * 1.3, _RED, t, cv2.LINE_AA)
    draw_timestamp(img, utc_iso(wall))
    return img
