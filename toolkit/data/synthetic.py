"""Deterministic synthetic defect-inspection images: metal parts on a conveyor belt.

The seed lecture's Industry 4.0 story (a camera over a conveyor, a CNN that tells good parts
from scratched, spotted or cracked ones), made without a camera or a download:

- :func:`render_part`: one part on a belt crop, with lighting and texture variation and a
  little rotation/position jitter -> ``(BGR uint8 image, defect boxes)``.
- :func:`make_classification_set`: an ImageFolder (``root/train/<class>/*.png``,
  ``root/val/<class>/*.png``) for the classes ``ok, scratch, spot, crack``.
- Building blocks for detection sets and moving-belt video: :func:`make_belt` /
  :func:`belt_window` (a periodic belt texture and a window at any offset),
  :func:`~toolkit.data.parts.sample_part`, :func:`~toolkit.data.parts.draw_part` and
  :func:`~toolkit.data.parts.paste_part` (a part at any position and angle, with its boxes),
  :class:`Lighting`.

Every function takes a ``numpy.random.Generator``: the same seed gives the same bytes.

Example:
    >>> img, boxes = render_part(np.random.default_rng(0), 96, "scratch")
    >>> boxes[0].label, img.shape
    ('scratch', (96, 96, 3))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toolkit.data.atomic_set import check_replaceable, write_set
from toolkit.data.parts import (
    DEFECT_TYPES,
    PART_KINDS,
    DefectBox,
    PartSpec,
    Sprite,
    draw_part,
    paste_part,
    sample_part,
)
from toolkit.errors import BadInputError

__all__ = [
    "CLASSES",
    "DEFECT_TYPES",
    "PART_KINDS",
    "DefectBox",
    "Lighting",
    "PartSpec",
    "Sprite",
    "belt_window",
    "draw_part",
    "make_belt",
    "make_classification_set",
    "paste_part",
    "render_part",
    "sample_lighting",
    "sample_part",
]

CLASSES = ("ok", "scratch", "spot", "crack")


def make_belt(rng: np.random.Generator, height: int, length: int) -> np.ndarray:
    """A conveyor belt texture, float32 BGR ``(height, length, 3)``, periodic along x.

    Dark rubber with fine grit, streaks along the direction of travel and a darker seam;
    :func:`belt_window` cuts a frame out of it at any offset, so a video of a moving belt
    wraps around seamlessly.
    """
    base = rng.uniform(40, 85)
    tint = np.array([rng.uniform(0.9, 1.12), 1.0, rng.uniform(0.88, 1.08)], np.float32)
    grit = rng.standard_normal((height, length), dtype=np.float32)
    # Streaks along x (unit variance); wrap-padding keeps the texture periodic.
    k = max(3, length // 6) | 1
    pad = k // 2
    streak = rng.standard_normal((height, length), dtype=np.float32)
    streak = np.pad(streak, ((0, 0), (pad, pad)), mode="wrap")
    streak = cv2.blur(streak, (k, 1))[:, pad : pad + length] * math.sqrt(k)
    lum = base + rng.uniform(3, 7) * grit + rng.uniform(4, 10) * streak
    seam = int(rng.integers(length))
    width = max(1, length // 60)
    cols = (np.arange(seam, seam + width)) % length
    lum[:, cols] *= 0.7
    return np.clip(lum, 0, 255)[..., None] * tint


def belt_window(belt: np.ndarray, offset: float, width: int) -> np.ndarray:
    """The ``width`` columns of ``belt`` starting at ``offset`` (wrapping), as a new array."""
    cols = (np.arange(width) + math.floor(offset)) % belt.shape[1]
    return belt[:, cols].copy()


@dataclass(frozen=True)
class Lighting:
    """Scene lighting applied after compositing: gain, a linear gradient, sensor noise."""

    gain: float = 1.0
    gradient: tuple[float, float] = (0.0, 0.0)
    contrast: float = 1.0
    noise: float = 2.0

    def apply(self, canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Light a float32 BGR canvas and return it as BGR uint8 (``rng`` draws the noise)."""
        h, w = canvas.shape[:2]
        gx = np.linspace(-0.5, 0.5, w, dtype=np.float32) * self.gradient[0]
        gy = np.linspace(-0.5, 0.5, h, dtype=np.float32) * self.gradient[1]
        light = self.gain * (1 + gy[:, None] + gx[None, :])
        out = (canvas - 110) * self.contrast + 110
        out *= light[..., None]
        out += rng.standard_normal(canvas.shape[:2], dtype=np.float32)[..., None] * self.noise
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def sample_lighting(rng: np.random.Generator) -> Lighting:
    """Random but plausible factory lighting (dimmer or brighter lamps, off-centre light)."""
    return Lighting(
        gain=float(rng.uniform(0.75, 1.2)),
        gradient=(float(rng.uniform(-0.35, 0.35)), float(rng.uniform(-0.35, 0.35))),
        contrast=float(rng.uniform(0.85, 1.15)),
        noise=float(rng.uniform(1.0, 4.0)),
    )


def render_part(
    rng: np.random.Generator,
    size: int | tuple[int, int] = 96,
    defect: str | Sequence[str] | None = None,
    *,
    kind: str | None = None,
    fill: tuple[float, float] = (0.62, 0.8),
    jitter: float = 0.06,
    max_rotation: float = 15.0,
) -> tuple[np.ndarray, list[DefectBox]]:
    """One part on a conveyor belt, as an inspection camera would see it.

    Args:
        rng: the source of randomness; the same generator state gives the same image.
        size: image size, ``n`` or ``(h, w)``.
        defect: ``None`` for a good part, a defect name (``scratch``, ``spot``, ``crack``,
            ``missing_hole``) or several.
        kind: ``plate``, ``washer`` or ``bracket`` (random when ``None``).
        fill: the part's diameter as a fraction of the image's short side (range).
        jitter: position jitter as a fraction of the short side.
        max_rotation: rotation jitter in degrees (either way).

    Returns:
        The BGR uint8 image and the boxes (``xyxy`` pixels) of the defects on it.

    The part, its placement and the lighting come from sub-seeds drawn first, so a good part
    and a defective one from the same generator state are the same picture except where the
    defect is.
    """
    h, w = (size, size) if isinstance(size, int) else size
    defects = () if defect is None else (defect,) if isinstance(defect, str) else tuple(defect)
    s_belt, s_part, s_defect, s_place, s_light, s_noise = rng.integers(0, 2**31, size=6)
    canvas = make_belt(np.random.default_rng(s_belt), h, w)
    place = np.random.default_rng(s_place)
    short = min(h, w)
    spec = sample_part(np.random.default_rng(s_part), short * place.uniform(*fill), kind)
    if defects:
        spec = spec.with_defects(defects, np.random.default_rng(s_defect))
    center = (
        (w - 1) / 2 + place.uniform(-jitter, jitter) * short,
        (h - 1) / 2 + place.uniform(-jitter, jitter) * short,
    )
    angle = place.uniform(-max_rotation, max_rotation)
    if spec.kind == "bracket":
        angle += 90.0 * int(place.integers(4))  # an L lies on the belt any way round
    boxes = paste_part(canvas, draw_part(spec), center, angle)
    image = sample_lighting(np.random.default_rng(s_light)).apply(
        canvas, np.random.default_rng(s_noise)
    )
    return image, boxes


def make_classification_set(
    root: str | Path,
    *,
    n_per_class: int = 250,
    size: int = 96,
    seed: int = 0,
    splits: Mapping[str, float] | None = None,
    classes: Sequence[str] = CLASSES,
    force: bool = False,
) -> dict[str, object]:
    """Write a synthetic ImageFolder: ``root/<split>/<class>/<class>_<i>.png``.

    Args:
        root: the folder to create.
        n_per_class: images per class over all splits.
        size: image side in pixels.
        seed: the data set's seed; image ``i`` of class ``c`` depends only on ``(seed, c, i)``.
        splits: split name -> fraction, default ``{"train": 0.8, "val": 0.2}``; a single
            ``{"": 1.0}`` writes ``root/<class>/`` directly.
        classes: ``ok`` and any of the defect names.
        force: replace ``root`` if it holds a set made by this function.

    Returns:
        What was written (also saved as ``root/dataset.json``): classes, counts per split
        and class, seed, size.

    The set is built in a temporary folder beside ``root`` and renamed into place, so an
    interrupted run leaves no half-written set.
    """
    root = Path(root)
    splits = dict(splits) if splits is not None else {"train": 0.8, "val": 0.2}
    if not splits or any(f < 0 for f in splits.values()) or sum(splits.values()) <= 0:
        raise BadInputError(f"splits must be non-negative fractions, got {splits}")
    for c in classes:
        if c != "ok" and c not in DEFECT_TYPES:
            raise BadInputError(f"unknown class '{c}' (expected ok or one of {DEFECT_TYPES})")
    if n_per_class < 1 or size < 16:
        raise BadInputError("n_per_class must be >= 1 and size >= 16")
    check_replaceable(root, force)
    bounds = _split_bounds(n_per_class, splits)

    def build(folder: Path) -> dict[str, object]:
        return {
            "generator": "toolkit.data.synthetic",
            "classes": list(classes),
            "seed": seed,
            "size": size,
            "n_per_class": n_per_class,
            "counts": _write_classes(folder, classes, bounds, seed, size),
        }

    return write_set(root, build)


def _write_classes(
    folder: Path,
    classes: Sequence[str],
    bounds: dict[str, tuple[int, int]],
    seed: int,
    size: int,
) -> dict[str, dict[str, int]]:
    """Render every class's images of every split into ``folder``: the counts written."""
    counts: dict[str, dict[str, int]] = {name: {} for name in bounds}
    for ci, cls in enumerate(classes):
        defect = None if cls == "ok" else cls
        for name, (lo, hi) in bounds.items():
            out = folder / name / cls
            out.mkdir(parents=True, exist_ok=True)
            for i in range(lo, hi):
                img, _ = render_part(np.random.default_rng([seed, ci, i]), size, defect)
                cv2.imwrite(str(out / f"{cls}_{i:05d}.png"), img)
            counts[name][cls] = hi - lo
    return counts


def _split_bounds(n: int, splits: Mapping[str, float]) -> dict[str, tuple[int, int]]:
    """Consecutive index ranges per split, sizes proportional to the fractions."""
    total = sum(splits.values())
    edges, acc = [0], 0.0
    for frac in splits.values():
        acc += frac
        edges.append(round(n * acc / total))
    return {name: (edges[i], edges[i + 1]) for i, name in enumerate(splits)}
