"""OK/NG verdicts from results: which classes mean reject, how sure, and where.

- ``--reject scratch,crack`` (names or indices) lists the classes that make a frame NG; by
  default every class except the "good" ones (``ok``, ``good``, ``normal``, ``pass``,
  ``background``, ``no_defect``).
- ``--conf``: a result counts only at or above this confidence.
- ``--roi x,y,w,h`` (pixels of the frame): a classifier sees only that region; a detector's
  boxes count only when their centre lies in it (the others are left out of the event too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolkit.errors import BadInputError

GOOD_LABELS = frozenset({"ok", "good", "normal", "pass", "background", "no_defect", "none"})


def parse_roi(text: str | None) -> tuple[int, int, int, int] | None:
    """``"x,y,w,h"`` -> a tuple of four ints (w and h positive)."""
    if text is None:
        return None
    try:
        x, y, w, h = (round(float(v)) for v in text.split(","))
    except ValueError:
        raise BadInputError(f"--roi must be x,y,w,h in pixels, got '{text}'") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise BadInputError(f"--roi needs x,y >= 0 and w,h > 0, got '{text}'")
    return x, y, w, h


def parse_classes(text: str | None, labels: Sequence[str], option: str) -> frozenset[int] | None:
    """Class names or indices (comma list) -> class indices, checked against ``labels``."""
    if text is None:
        return None
    ids: set[int] = set()
    for item in filter(None, (s.strip() for s in text.split(","))):
        if item.isdigit():
            ids.add(int(item))
        elif item in labels:
            ids.add(list(labels).index(item))
        else:
            known = ", ".join(labels) if labels else "none: the model has no labels, use indices"
            raise BadInputError(f"{option}: unknown class '{item}' (classes: {known})")
    return frozenset(ids)


@dataclass(frozen=True)
class Judge:
    """Turns one result into ``(result kept, "OK" | "NG")``."""

    reject: frozenset[int] | None
    labels: tuple[str, ...]
    conf: float = 0.25
    roi: tuple[int, int, int, int] | None = None
    crop_input: bool = False  # a classifier sees only the ROI; a detector sees the frame

    def is_reject(self, class_id: int) -> bool:
        if self.reject is not None:
            return class_id in self.reject
        label = self.labels[class_id] if 0 <= class_id < len(self.labels) else str(class_id)
        return label.lower() not in GOOD_LABELS

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The ROI of ``image`` (a classifier's input), or the image when there is none."""
        if self.roi is None or not self.crop_input:
            return image
        x, y, w, h = self.roi
        out = image[y : y + h, x : x + w]
        if out.size == 0:
            raise BadInputError(
                f"--roi {self.roi} lies outside the {image.shape[1]}x{image.shape[0]} frame"
            )
        return out

    def __call__(self, result: Any) -> tuple[Any, str]:
        if hasattr(result, "xyxy"):  # detections: parallel arrays, boolean-mask indexable
            if self.roi is not None and len(result):
                x, y, w, h = self.roi
                cx = (result.xyxy[:, 0] + result.xyxy[:, 2]) / 2
                cy = (result.xyxy[:, 1] + result.xyxy[:, 3]) / 2
                result = result[(cx >= x) & (cx < x + w) & (cy >= y) & (cy < y + h)]
            ng = any(
                self.is_reject(int(c)) and float(p) >= self.conf
                for c, p in zip(result.class_id, result.confidence, strict=True)
            )
            return result, "NG" if ng else "OK"
        if not len(result):
            return result, "OK"
        ng = self.is_reject(int(result.class_id[0])) and float(result.confidence[0]) >= self.conf
        return result, "NG" if ng else "OK"
