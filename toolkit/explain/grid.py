"""Pictures from arrays: network inputs back to pixels, tiles with captions, contact sheets."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from toolkit.model.spec import ModelSpec

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BG = (32, 32, 32)
_FG = (235, 235, 235)


def to_pixels(x: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """One network input ``[C, H, W]`` -> BGR (or gray) uint8, undoing the spec's scaling."""
    pre = spec.preprocess
    c = x.shape[0]
    mean = np.asarray(pre.mean, np.float32).reshape(-1, 1, 1)[:c]
    std = np.asarray(pre.std, np.float32).reshape(-1, 1, 1)[:c]
    img = ((x * std + mean) / np.float32(pre.scale)).clip(0, 255).astype(np.uint8)
    img = img.transpose(1, 2, 0)
    if c == 1:
        return img[:, :, 0]
    return img[:, :, ::-1].copy() if spec.input.color == "rgb" else img


def stretch_contrast(img: np.ndarray, pct: float = 1.0) -> np.ndarray:
    """Percentile stretch to 0..255: an optimized input is often low-contrast gray."""
    f = img.astype(np.float32)
    lo, hi = np.percentile(f, pct), np.percentile(f, 100 - pct)
    return ((f - lo) / max(hi - lo, 1e-6) * 255).clip(0, 255).astype(np.uint8)


def as_bgr(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img


def fit(img: np.ndarray, cell: int) -> np.ndarray:
    """``img`` scaled to ``cell`` pixels on its long side (nearest when enlarging small maps)."""
    h, w = img.shape[:2]
    r = cell / max(h, w)
    inter = cv2.INTER_NEAREST if r >= 2 else cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR
    size = (max(1, round(w * r)), max(1, round(h * r)))
    return as_bgr(cv2.resize(img, size, interpolation=inter))


def caption(img: np.ndarray, text: str, height: int = 16) -> np.ndarray:
    """``img`` with a strip of text under it."""
    strip = np.full((height, img.shape[1], 3), _BG, np.uint8)
    scale = 0.35 if height <= 16 else 0.45
    cv2.putText(strip, text, (3, height - 5), _FONT, scale, _FG, 1, cv2.LINE_AA)
    return np.vstack([as_bgr(img), strip])


def tile(
    images: Sequence[np.ndarray],
    labels: Sequence[str] | None = None,
    *,
    cols: int = 8,
    cell: int = 96,
    gap: int = 4,
    title: str | None = None,
) -> np.ndarray:
    """A grid of ``images`` (each fit to ``cell``), captioned by ``labels``, under ``title``."""
    if not images:
        raise ValueError("no images to tile")
    cells = [fit(im, cell) for im in images]
    if labels is not None:
        cells = [caption(c, t) for c, t in zip(cells, labels, strict=True)]
    ch = max(c.shape[0] for c in cells)
    cw = max(c.shape[1] for c in cells)
    cols = max(1, min(cols, len(cells)))
    rows = -(-len(cells) // cols)
    sheet = np.full((rows * (ch + gap) + gap, cols * (cw + gap) + gap, 3), _BG, np.uint8)
    for k, c in enumerate(cells):
        r, q = divmod(k, cols)
        y, x = gap + r * (ch + gap), gap + q * (cw + gap)
        sheet[y : y + c.shape[0], x : x + c.shape[1]] = c
    if title:
        head = np.full((22, sheet.shape[1], 3), _BG, np.uint8)
        cv2.putText(head, title, (gap, 16), _FONT, 0.45, _FG, 1, cv2.LINE_AA)
        sheet = np.vstack([head, sheet])
    return sheet


def stack(sheets: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Sheets one under the other, left-aligned, padded to the widest."""
    w = max(s.shape[1] for s in sheets)
    parts = []
    for s in sheets:
        pad = np.full((s.shape[0], w - s.shape[1], 3), _BG, np.uint8)
        parts += [np.hstack([s, pad]), np.full((gap, w, 3), _BG, np.uint8)]
    return np.vstack(parts[:-1])


def write_png(path: str, img: np.ndarray) -> None:
    """Encode ``img`` as PNG and write it atomically."""
    from toolkit.fileio import atomic_write_bytes

    ok, buf = cv2.imencode(".png", img)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise ValueError(f"could not encode {path}")
    atomic_write_bytes(path, buf.tobytes())
