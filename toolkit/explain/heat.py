"""Heatmaps as plain arrays: back to the image's pixels, normalized, drawn, and measured.

Every method makes its map over the network input (``H x W`` of the spec); :func:`to_image`
maps it onto the original frame through the same :class:`~toolkit.tasks.preprocess.FrameMeta`
the boxes use, so letterbox, stretch and center-crop all line up. No torch here.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from toolkit.tasks.preprocess import FrameMeta


def to_image(heat: np.ndarray, meta: FrameMeta) -> np.ndarray:
    """A map over the network input (any resolution) -> float32 ``[h0, w0]`` over the frame.

    Padding (letterbox) falls outside the frame and is dropped; a cropped-away border gets
    the nearest edge value.
    """
    heat = np.asarray(heat, dtype=np.float32)
    h0, w0 = meta.orig_hw
    xs = (np.arange(w0, dtype=np.float32) + 0.5) * meta.gain[0] + meta.offset[0] - 0.5
    ys = (np.arange(h0, dtype=np.float32) + 0.5) * meta.gain[1] + meta.offset[1] - 0.5
    map_x = np.broadcast_to(xs[None, :], (h0, w0)).astype(np.float32)
    map_y = np.broadcast_to(ys[:, None], (h0, w0)).astype(np.float32)
    return cv2.remap(heat, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def resize(heat: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """A coarse map (a CAM at 1/16 resolution) upsampled bilinearly to ``hw``."""
    h, w = hw
    heat = np.asarray(heat, dtype=np.float32)
    if heat.shape == (h, w):
        return heat
    return cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)


def normalize(heat: np.ndarray) -> np.ndarray:
    """Positive part scaled to [0, 1] (all zeros stays zeros): what is drawn and measured."""
    pos = np.maximum(np.asarray(heat, dtype=np.float32), 0.0)
    top = float(pos.max()) if pos.size else 0.0
    return pos / top if top > 0 else pos


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The frame (BGR or gray uint8) with ``heat`` (its size) as a JET color layer."""
    img = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    h01 = normalize(heat)
    colored = cv2.applyColorMap((h01 * 255).astype(np.uint8), cv2.COLORMAP_JET)
    # Cold pixels keep the part visible; only warm ones are tinted strongly.
    a = (alpha * np.clip(h01 * 1.5, 0.15, 1.0))[..., None]
    return (img.astype(np.float32) * (1 - a) + colored.astype(np.float32) * a).astype(np.uint8)


def peak(heat: np.ndarray) -> tuple[int, int]:
    """``(x, y)`` of the hottest pixel."""
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return int(x), int(y)


def _box_slices(box: Sequence[float], hw: tuple[int, int]) -> tuple[slice, slice]:
    h, w = hw
    x1, y1, x2, y2 = (float(v) for v in box)
    c0, c1 = int(np.clip(np.floor(x1), 0, w)), int(np.clip(np.ceil(x2), 0, w))
    r0, r1 = int(np.clip(np.floor(y1), 0, h)), int(np.clip(np.ceil(y2), 0, h))
    return slice(r0, r1), slice(c0, c1)


def fraction_inside(heat: np.ndarray, boxes: Sequence[Sequence[float]]) -> list[float]:
    """For each ``x1, y1, x2, y2`` box (the map's pixels): the share of the positive heat in it."""
    pos = np.maximum(np.asarray(heat, dtype=np.float32), 0.0)
    total = float(pos.sum())
    out = []
    for box in boxes:
        rows, cols = _box_slices(box, pos.shape)
        out.append(round(float(pos[rows, cols].sum()) / total, 4) if total > 0 else 0.0)
    return out


def peak_inside(heat: np.ndarray, boxes: Sequence[Sequence[float]], margin: float = 0.0) -> bool:
    """The pointing game's hit: the peak lies in one of ``boxes`` (grown by ``margin`` px)."""
    x, y = peak(heat)
    return any(
        b[0] - margin <= x + 0.5 <= b[2] + margin and b[1] - margin <= y + 0.5 <= b[3] + margin
        for b in boxes
    )


def summary(heat: np.ndarray, boxes: Sequence[Sequence[float]] = ()) -> dict[str, object]:
    """What ``--json`` reports of one map: the peak and the heat inside each box."""
    x, y = peak(heat)
    return {"peak": [x, y], "inside": fraction_inside(heat, boxes)}
