"""Rect inference: letterbox to the frame's aspect, not to a square (Ultralytics' ``rect``).

A detector whose input height and width are dynamic (a foreign Ultralytics export with
``dynamic=True``, or ``edgetk export --dynamic-hw``) takes any stride multiple. A 640x480
frame at imgsz 320 then becomes a 320x256 input instead of 320x320: the same scale (so the
same boxes), 20% fewer pixels. The input of a frame is its resized size padded up to the
next stride multiple (Ultralytics' ``LetterBox(auto=True)``); a batch of mixed aspects takes
the per-axis maximum, which fits every frame at the square path's scale.

Example:
    >>> rect_shape((480, 640), (320, 320), 32)
    (256, 320)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from toolkit.errors import BadInputError

if TYPE_CHECKING:
    from toolkit.backends.base import Session
    from toolkit.model.spec import ModelSpec

DEFAULT_STRIDE = 32


def model_stride(spec: ModelSpec) -> int:
    """The stride the model's input sides must be multiples of: ``extra["stride"]`` (written
    by ``edgetk export --dynamic-hw``), else 32 (YOLOv5/v8/11, zoo:defect-det)."""
    stride = spec.extra.get("stride", DEFAULT_STRIDE)
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise BadInputError(
            f"invalid model metadata: extra.stride: expected an integer >= 1, got {stride!r}"
        )
    return stride


def rect_allowed(session: Session) -> bool:
    """Whether ``session`` takes rect inputs: a letterbox detector with a 4-D input whose
    height and width are dynamic (``None`` in ``session.inputs``).

    Not on TensorRT (``tensorrt``, ``ort-trt``): an engine's optimization profile fixes the
    shapes it takes, and edgetk builds profiles over the batch axis only.
    """
    spec = session.spec
    if spec.task != "detect" or spec.preprocess.resize != "letterbox":
        return False
    if session.backend in ("tensorrt", "ort-trt"):
        return False
    shape = session.inputs[0].shape
    return len(shape) == 4 and shape[2] is None and shape[3] is None


def rect_shape(orig_hw: tuple[int, int], imgsz: tuple[int, int], stride: int) -> tuple[int, int]:
    """The rect input (h, w) of one frame: resized to fit ``imgsz``, padded to ``stride``.

    The padding is the square path's modulo the stride, so a side never grows past
    ``imgsz`` (nor shrinks below the resized frame).
    """
    h0, w0 = orig_hw
    h, w = imgsz
    r = min(h / h0, w / w0)
    nh, nw = round(h0 * r), round(w0 * r)
    return nh + (h - nh) % stride, nw + (w - nw) % stride


def batch_rect_shape(
    shapes: Sequence[tuple[int, int]], imgsz: tuple[int, int], stride: int
) -> tuple[int, int]:
    """One input (h, w) for frames of ``shapes`` (h, w): the per-axis max of their rect
    shapes, so every frame fits at its square-path scale."""
    if not shapes:
        raise BadInputError("no frames to shape")
    rects = [rect_shape(s, imgsz, stride) for s in shapes]
    return max(r[0] for r in rects), max(r[1] for r in rects)


def input_hw(
    session: Session, shapes: Sequence[tuple[int, int]], *, square: bool = False
) -> tuple[int, int] | None:
    """The rect input size for frames of ``shapes``, or None for the spec's square (a
    static model, a classifier, or ``square``)."""
    if square or not rect_allowed(session):
        return None
    spec = session.spec
    return batch_rect_shape(shapes, spec.input.hw, model_stride(spec))
