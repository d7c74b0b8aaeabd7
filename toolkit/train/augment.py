"""Training augmentation on uint8 images (numpy + OpenCV), the seed lecture's AlexNet set.

Flips, random resized crops (scale and aspect jitter), small rotations and color jitter
(brightness, contrast). The geometric part is one ``warpAffine`` per image and the color part
one lookup table, so augmenting a batch costs far less than the training step it feeds.

The output has the input's shape and dtype: the model's own preprocessing
(:func:`toolkit.tasks.preprocess.preprocess`) then resizes and normalizes it, exactly as at
inference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; a zero (or ``(1, 1)`` range) turns that transform off.

    Attributes:
        hflip: probability of a horizontal flip.
        vflip: probability of a vertical flip (parts on a belt have no "up").
        scale: range of the crop's area as a fraction of the image (random resized crop).
        ratio: range of the crop's aspect ratio (w / h) relative to the image's.
        rotate: maximum rotation in degrees, either way.
        brightness: maximum brightness change, as a fraction (0.2 -> x0.8 .. x1.2).
        contrast: maximum contrast change, as a fraction.
    """

    hflip: float = 0.5
    vflip: float = 0.5
    scale: tuple[float, float] = (0.75, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    rotate: float = 15.0
    brightness: float = 0.2
    contrast: float = 0.2

    @classmethod
    def off(cls) -> AugmentConfig:
        """No augmentation at all."""
        return cls(hflip=0, vflip=0, scale=(1, 1), ratio=(1, 1), rotate=0, brightness=0, contrast=0)


def augment(
    image: np.ndarray, rng: np.random.Generator, config: AugmentConfig | None = None
) -> np.ndarray:
    """Return a randomly augmented copy of a uint8 image (``HxW`` or ``HxWxC``), same shape.

    Example:
        >>> out = augment(img, np.random.default_rng(0))
        >>> out.shape == img.shape and out.dtype == np.uint8
        True
    """
    cfg = config or AugmentConfig()
    out = _geometric(image, rng, cfg)
    return _color(out, rng, cfg)


def _geometric(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    h, w = image.shape[:2]
    # Random resized crop: a box of the drawn area and aspect, inside the image where it fits.
    # The aspect jitter is relative to the image's own aspect, so (1, 1) keeps it.
    area = h * w * rng.uniform(*cfg.scale)
    aspect = (w / h) * math.exp(rng.uniform(math.log(cfg.ratio[0]), math.log(cfg.ratio[1])))
    cw = min(w, math.sqrt(area * aspect))
    ch = min(h, math.sqrt(area / aspect))
    cx = rng.uniform(cw / 2, w - cw / 2)
    cy = rng.uniform(ch / 2, h - ch / 2)
    theta = math.radians(rng.uniform(-cfg.rotate, cfg.rotate)) if cfg.rotate else 0.0
    fx = -1.0 if rng.random() < cfg.hflip else 1.0
    fy = -1.0 if rng.random() < cfg.vflip else 1.0
    sx, sy = fx * cw / w, fy * ch / h
    if theta == 0.0 and (sx, sy) == (1.0, 1.0):
        return image.copy()
    # One inverse map, output pixel -> source pixel: src = C + R(theta) @ diag(sx, sy) @ (out - O)
    c, s = math.cos(theta), math.sin(theta)
    a = np.array([[c * sx, -s * sy], [s * sx, c * sy]])
    o = np.array([(w - 1) / 2, (h - 1) / 2])
    center = np.array([cx - 0.5, cy - 0.5])
    m = np.hstack([a, (center - a @ o)[:, None]])
    return cv2.warpAffine(
        image,
        m,
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT_101,
    )


def _color(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    if not cfg.brightness and not cfg.contrast:
        return image
    b = rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    k = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
    mean = float(image.mean())
    lut = np.clip(((np.arange(256, dtype=np.float32) - mean) * k + mean) * b + 0.5, 0, 255)
    return cv2.LUT(image, lut.astype(np.uint8))
