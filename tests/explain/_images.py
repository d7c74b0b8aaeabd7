"""Frames for the hand-set models of ``_models.py`` (numpy only: usable without torch)."""

from __future__ import annotations

import numpy as np

CUE = (4, 12, 4, 12)  # rows y0:y1, cols x0:x1 of the planted cue on a 32x32 input
IMG = 32


def cue_image(bright: bool = True, size: int = IMG) -> np.ndarray:
    """A gray frame with a bright square on the cue (class 1) or elsewhere (class 0)."""
    img = np.full((size, size), 40, np.uint8)
    y0, y1, x0, x1 = CUE
    if bright:
        img[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] = 230
    else:
        img[20:28, 20:28] = 230
    return img


def blob_image(centers: list[tuple[int, int]], size: int = 64, r: int = 5) -> np.ndarray:
    """A dark BGR frame with bright squares of side ``2r`` at ``(x, y)`` centers."""
    img = np.full((size, size, 3), 20, np.uint8)
    for x, y in centers:
        img[y - r : y + r, x - r : x + r] = 240
    return img
