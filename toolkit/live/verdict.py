"""OK/NG verdicts from results: which classes mean reject, how sure, and where.

- ``--reject scratch,crack`` (names or indices) lists the classes that make a frame NG; by
  default every class except the "good" ones (``ok``, ``good``, ``normal``, ``pass``,
  ``background``, ``no_defect``).
- ``--conf``: a result counts only at or above this confidence.
- ``--roi x,y,w,h`` (pixels of the frame): a classifier sees only that region; a detector's
  boxes count only when their centre lies in it (the others are left out of the event too).

Before a run, every class reference is checked against the model
(:func:`toolkit.tasks.classes.parse_classes`), the ROI against the first frame
(:func:`check_roi`), and settings under which no frame could ever be NG are refused
(:func:`check_ng_possible`): a line that can only say OK is a misconfiguration, not a result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.errors import BadInputError
from toolkit.tasks.classes import ModelClasses
from toolkit.tasks.classify import Classification
from toolkit.tasks.detect import Detections

# What a task gives for one frame of the live loop.
Result = Detections | Classification

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


def check_roi(roi: tuple[int, int, int, int] | None, frame_hw: tuple[int, int]) -> None:
    """The ROI must lie inside the frame: a region past its edge would see nothing there.

    Raises:
        BadInputError: naming the ROI, the frame size and the limit.
    """
    if roi is None:
        return
    x, y, w, h = roi
    fh, fw = frame_hw
    if x >= fw or y >= fh:
        where = "outside"
    elif x + w > fw or y + h > fh:
        where = "partly outside"
    else:
        return
    raise BadInputError(
        f"--roi {x},{y},{w},{h} lies {where} the {fw}x{fh} frame "
        f"(x + w must be <= {fw} and y + h <= {fh})"
    )


def reject_ids(reject: frozenset[int] | None, model: ModelClasses) -> frozenset[int] | None:
    """The ids that make a frame NG: ``reject``, or by default every class not named good.

    None when the model's classes are not known (no labels, no static class axis): the
    default rule then rejects whatever is found.
    """
    if reject is not None:
        return reject
    if model.count is None:
        return None
    return frozenset(i for i in range(model.count) if not is_good(model.name(i)))


def is_good(label: str) -> bool:
    return label.lower() in GOOD_LABELS


def check_ng_possible(
    reject: frozenset[int] | None, kept: frozenset[int] | None, model: ModelClasses
) -> None:
    """Refuse settings under which no frame can ever be NG (a line that always says OK).

    A frame is NG when its result (a classifier's top-1 among the kept classes, or any kept
    detection inside the ROI) has a reject class at or above --conf; so NG is possible exactly
    when some class is both kept (--classes) and rejected (--reject, or by default every
    class not named ok/good/normal/...).

    Raises:
        BadInputError: with the reason, the classes involved and the model's classes.
    """
    rejected = reject_ids(reject, model)
    if rejected is None:
        return
    possible = rejected if kept is None else rejected & kept
    if possible:
        return
    never = "no frame could ever be NG"
    if reject is not None and not reject:
        raise BadInputError(f"--reject names no class: {never}")
    if kept is not None and not kept:
        raise BadInputError(f"--classes names no class: {never}")
    if reject is None and kept is None:
        raise BadInputError(
            f"every class of the model is a good one ({model.describe()}): {never}; "
            "name the defect classes with --reject"
        )
    if reject is None:
        raise BadInputError(
            f"--classes keeps only good classes ({model.describe(kept)}): {never}; "
            "name the defect classes with --reject"
        )
    raise BadInputError(
        f"--classes ({model.describe(kept or ())}) keeps none of the --reject classes "
        f"({model.describe(reject)}): {never}"
    )


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
        return not is_good(label)

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

    def __call__(self, result: Result) -> tuple[Result, str]:
        if isinstance(result, Detections):
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
