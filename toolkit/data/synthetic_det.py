"""Synthetic defect *detection*: belt scenes with several parts, as YOLO sets or as video.

Built on the part renderer of :mod:`toolkit.data.parts` and the belt and lighting of
:mod:`toolkit.data.synthetic`:

- :func:`render_scene`: one still frame with 1-3 parts (some with defects) on a belt ->
  ``(BGR uint8 image, defect boxes)``; deterministic by its generator.
- :func:`make_detection_set`: a YOLO-format set (``images/{train,val}``,
  ``labels/{train,val}``, ``data.yaml``) of such frames, written atomically.
- :class:`BeltScene`: parts moving along a belt; ``scene.frame(i)`` gives frame ``i`` and its
  boxes (the live loop's ``synthetic`` source).

Example:
    >>> scene = BeltScene(seed=0, size=(240, 320))
    >>> image, boxes = scene.frame(10)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from toolkit.data.atomic_set import check_replaceable, write_set
from toolkit.data.parts import (
    DEFECT_TYPES,
    DefectBox,
    Sprite,
    draw_part,
    paste_part,
    sample_part,
)
from toolkit.data.synthetic import belt_window, make_belt, sample_lighting
from toolkit.errors import BadInputError

__all__ = ["DET_CLASSES", "BeltScene", "make_detection_set", "render_scene"]

# The detector's classes (a missing hole is supported by the renderer but left out of the
# default set: it is a defect of absence, far harder for a small net than the visible ones).
DET_CLASSES = ("scratch", "spot", "crack")


def _sample_defects(rng: np.random.Generator, classes: Sequence[str], p_good: float) -> tuple:
    """0 (a good part) to 2 distinct defect labels from ``classes``."""
    if rng.random() < p_good:
        return ()
    n = 1 if rng.random() < 0.7 else 2
    idx = rng.choice(len(classes), size=min(n, len(classes)), replace=False)
    return tuple(classes[int(i)] for i in idx)


def render_scene(
    rng: np.random.Generator,
    size: int | tuple[int, int] = 256,
    *,
    classes: Sequence[str] = DET_CLASSES,
    parts: tuple[int, int] = (1, 3),
    diameter: tuple[float, float] = (0.3, 0.5),
    p_good: float = 0.2,
) -> tuple[np.ndarray, list[DefectBox]]:
    """A belt frame with ``parts`` (range) parts, some defective, and its defect boxes.

    Args:
        rng: the source of randomness (same state, same bytes).
        size: ``n`` or ``(h, w)`` pixels.
        classes: the defect types to draw (any of ``scratch, spot, crack, missing_hole``).
        parts: inclusive range of the number of parts in the frame.
        diameter: part diameter as a fraction of the frame's short side (range).
        p_good: probability that a part has no defect.
    """
    h, w = (size, size) if isinstance(size, int) else size
    for c in classes:
        if c not in DEFECT_TYPES:
            raise BadInputError(f"unknown defect '{c}' (expected one of {DEFECT_TYPES})")
    s_belt, s_parts, s_light, s_noise = rng.integers(0, 2**31, size=4)
    canvas = make_belt(np.random.default_rng(s_belt), h, w)
    prng = np.random.default_rng(s_parts)
    short = min(h, w)
    n = int(prng.integers(parts[0], parts[1] + 1))
    # Parts sit in equal horizontal slots so they do not overlap (a belt feeds them apart).
    slot = w / n
    boxes: list[DefectBox] = []
    for k in range(n):
        d = short * prng.uniform(*diameter)
        spec = sample_part(prng, d)
        defects = _sample_defects(prng, classes, p_good)
        if defects:
            spec = spec.with_defects(defects, prng)
        free_x = max(0.0, slot - d) / 2
        free_y = max(0.0, h - d) / 2
        cx = slot * (k + 0.5) + prng.uniform(-free_x, free_x)
        cy = h / 2 + prng.uniform(-free_y, free_y)
        angle = prng.uniform(0, 360)
        boxes += paste_part(canvas, draw_part(spec), (cx, cy), angle)
    image = sample_lighting(np.random.default_rng(s_light)).apply(
        canvas, np.random.default_rng(s_noise)
    )
    return image, boxes


def yolo_lines(boxes: Sequence[DefectBox], classes: Sequence[str], hw: tuple[int, int]) -> str:
    """Boxes as YOLO label text: ``class cx cy w h`` normalized, one line per box."""
    h, w = hw
    lines = []
    for b in boxes:
        if b.label not in classes:
            continue
        x1, y1, x2, y2 = b.xyxy
        cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
        lines.append(f"{classes.index(b.label)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
    return "".join(line + "\n" for line in lines)


def make_detection_set(
    root: str | Path,
    *,
    n_train: int = 600,
    n_val: int = 150,
    size: int | tuple[int, int] = 256,
    seed: int = 0,
    classes: Sequence[str] = DET_CLASSES,
    force: bool = False,
) -> dict[str, object]:
    """Write a YOLO-format detection set of :func:`render_scene` frames.

    Layout: ``root/images/{train,val}/*.png``, ``root/labels/{train,val}/*.txt``,
    ``root/data.yaml`` (``path``, ``train``, ``val``, ``nc``, ``names``) and
    ``root/dataset.json`` (what was made). Image ``i`` of split ``s`` depends only on
    ``(seed, s, i)``. Built in a temporary folder and renamed into place.

    Returns:
        The description also saved as ``dataset.json``.
    """
    root = Path(root)
    if n_train < 0 or n_val < 0 or n_train + n_val < 1:
        raise BadInputError("n_train and n_val must be >= 0 and not both 0")
    check_replaceable(root, force)
    from toolkit.data.yolo import write_data_yaml

    hw = (size, size) if isinstance(size, int) else tuple(size)

    def build(folder: Path) -> dict[str, object]:
        counts = {
            split: _write_split(folder, split, si, n, seed, hw, classes)
            for si, (split, n) in enumerate((("train", n_train), ("val", n_val)))
        }
        write_data_yaml(
            folder / "data.yaml", names=list(classes), train="images/train", val="images/val"
        )
        return {
            "generator": "toolkit.data.synthetic_det",
            "classes": list(classes),
            "seed": seed,
            "size": list(hw),
            "counts": counts,
        }

    return write_set(root, build)


def _write_split(
    folder: Path,
    split: str,
    si: int,
    n: int,
    seed: int,
    hw: tuple[int, int],
    classes: Sequence[str],
) -> dict[str, int]:
    """Render split ``split`` (number ``si``) into ``folder``: its image and box counts."""
    (folder / "images" / split).mkdir(parents=True)
    (folder / "labels" / split).mkdir(parents=True)
    per_class = dict.fromkeys(classes, 0)
    for i in range(n):
        img, boxes = render_scene(np.random.default_rng([seed, si, i]), hw, classes=classes)
        stem = f"{split}_{i:05d}"
        cv2.imwrite(str(folder / "images" / split / f"{stem}.png"), img)
        text = yolo_lines(boxes, classes, hw)
        (folder / "labels" / split / f"{stem}.txt").write_text(text, encoding="utf-8")
        for b in boxes:
            if b.label in per_class:
                per_class[b.label] += 1
    return {"images": n, **per_class}


@dataclass(frozen=True)
class _Item:
    """A part on the belt: where it enters (belt x at frame 0) and how it looks."""

    x0: float
    y: float
    angle: float
    seed: int


class BeltScene:
    """Parts moving along a conveyor belt, frame by frame, deterministic by seed.

    Args:
        seed: the scene's seed; ``frame(i)`` depends only on ``(seed, size, fps, speed, i)``.
        size: ``(h, w)`` of the frames.
        fps: frames per second of the virtual camera.
        speed: belt speed in frame widths per second.
        classes: the defect types drawn.
        p_good: probability that a part has no defect.

    ``frame(i)`` returns ``(BGR uint8 image, list of DefectBox)``; parts enter on the left
    and leave on the right, spaced along the belt.
    """

    def __init__(
        self,
        seed: int = 0,
        size: tuple[int, int] = (240, 320),
        fps: float = 30.0,
        speed: float = 0.25,
        *,
        classes: Sequence[str] = DET_CLASSES,
        p_good: float = 0.5,
    ) -> None:
        if fps <= 0 or speed <= 0:
            raise BadInputError("fps and speed must be positive")
        self.seed, self.size, self.fps, self.speed = seed, tuple(size), fps, speed
        self.classes, self.p_good = tuple(classes), p_good
        h, w = self.size
        self._diameter = 0.42 * min(h, w)
        self._pitch = self._diameter * 1.6  # belt distance between consecutive parts
        self._belt = make_belt(np.random.default_rng([seed, 1]), h, 4 * w)
        self._light = sample_lighting(np.random.default_rng([seed, 2]))
        self._sprite = lru_cache(maxsize=16)(self._draw)

    def _item(self, k: int) -> _Item:
        r = np.random.default_rng([self.seed, 3, k])
        h = self.size[0]
        jitter = max(0.0, (h - self._diameter) / 2 - 2)
        return _Item(
            x0=-k * self._pitch + r.uniform(-0.15, 0.15) * self._pitch,
            y=h / 2 + r.uniform(-jitter, jitter),
            angle=float(r.uniform(0, 360)),
            seed=int(r.integers(0, 2**31)),
        )

    def _draw(self, k: int) -> Sprite:
        item = self._item(k)
        r = np.random.default_rng(item.seed)
        spec = sample_part(r, self._diameter * r.uniform(0.85, 1.15))
        defects = _sample_defects(r, self.classes, self.p_good)
        if defects:
            spec = spec.with_defects(defects, r)
        return draw_part(spec)

    def frame(self, i: int) -> tuple[np.ndarray, list[DefectBox]]:
        """Frame ``i``: the belt moved by ``i * speed * width / fps`` pixels."""
        w = self.size[1]
        shift = i * self.speed * w / self.fps
        canvas = belt_window(self._belt, -shift, w)
        boxes: list[DefectBox] = []
        margin = self._diameter
        # Part k is at x = x0(k) + shift; only those within a diameter of the view are drawn.
        k_lo = max(0, math.floor((shift - w - margin) / self._pitch) - 1)
        k_hi = max(0, math.ceil((shift + margin) / self._pitch) + 1)
        for k in range(k_lo, k_hi + 1):
            item = self._item(k)
            x = item.x0 + shift
            if -margin < x < w + margin:
                boxes += paste_part(canvas, self._sprite(k), (x, item.y), item.angle)
        image = self._light.apply(canvas, np.random.default_rng([self.seed, 4, i]))
        return image, boxes
