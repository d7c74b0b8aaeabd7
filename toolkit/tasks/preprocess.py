"""The one preprocessing function: BGR uint8 frames -> the model's input tensor.

Predict, val, calibration, benchmark ``--e2e`` and the live loop all call :func:`preprocess`,
driven by the model's :class:`~toolkit.model.spec.ModelSpec`, so a model sees the same pixels
everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.errors import BadInputError
from toolkit.model.spec import ModelSpec


@dataclass(frozen=True)
class FrameMeta:
    """How a frame was mapped into the network input.

    A point in network-input pixels maps back to the original frame by
    ``x_orig = (x - offset[0]) / gain[0]`` and ``y_orig = (y - offset[1]) / gain[1]``.
    """

    orig_hw: tuple[int, int]
    gain: tuple[float, float]
    offset: tuple[float, float]

    def to_original(self, xyxy: np.ndarray) -> np.ndarray:
        """Map ``[..., 4]`` boxes from network-input pixels to the frame, clipped to it."""
        out = np.asarray(xyxy, dtype=np.float32).copy()
        out[..., [0, 2]] = (out[..., [0, 2]] - self.offset[0]) / self.gain[0]
        out[..., [1, 3]] = (out[..., [1, 3]] - self.offset[1]) / self.gain[1]
        h, w = self.orig_hw
        out[..., [0, 2]] = out[..., [0, 2]].clip(0, w)
        out[..., [1, 3]] = out[..., [1, 3]].clip(0, h)
        return out


def as_bgr(frame: np.ndarray, channels: int) -> np.ndarray:
    """Bring a decoded frame to uint8 with 1 or 3 channels, as the model wants."""
    if frame.dtype != np.uint8:
        if frame.dtype == np.uint16:
            frame = (frame / 257).astype(np.uint8)
        else:
            raise BadInputError(f"unsupported image dtype {frame.dtype} (expected 8-bit)")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        return frame if channels == 1 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        shape = "x".join(str(s) for s in frame.shape)
        raise BadInputError(f"image of shape {shape}: expected 1, 3 or 4 channels")
    if frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if channels == 1 else frame


def letterbox(
    frame: np.ndarray, hw: tuple[int, int], pad_value: int = 114
) -> tuple[np.ndarray, FrameMeta]:
    """Resize keeping the aspect ratio, pad to ``hw`` centred (YOLO's letterbox)."""
    h0, w0 = frame.shape[:2]
    h, w = hw
    r = min(h / h0, w / w0)
    nw, nh = round(w0 * r), round(h0 * r)
    resized = (
        frame
        if (nw, nh) == (w0, h0)
        else cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
    )
    left, top = (w - nw) // 2, (h - nh) // 2
    value = (pad_value,) * (1 if frame.ndim == 2 else frame.shape[2])
    out = cv2.copyMakeBorder(
        resized, top, h - nh - top, left, w - nw - left, cv2.BORDER_CONSTANT, value=value
    )
    return out, FrameMeta((h0, w0), (nw / w0, nh / h0), (float(left), float(top)))


def center_crop(
    frame: np.ndarray, hw: tuple[int, int], crop_pct: float
) -> tuple[np.ndarray, FrameMeta]:
    """Resize the short side to ``size / crop_pct`` and crop the centre (torchvision/timm eval)."""
    h0, w0 = frame.shape[:2]
    h, w = hw
    short = min(h0, w0)
    target = max(h, w) / crop_pct
    r = target / short
    nw, nh = max(w, round(w0 * r)), max(h, round(h0 * r))
    resized = cv2.resize(
        frame, (nw, nh), interpolation=cv2.INTER_LINEAR if r > 1 else cv2.INTER_AREA
    )
    x0, y0 = (nw - w) // 2, (nh - h) // 2
    out = resized[y0 : y0 + h, x0 : x0 + w]
    return out, FrameMeta((h0, w0), (nw / w0, nh / h0), (-float(x0), -float(y0)))


def stretch(frame: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, FrameMeta]:
    h0, w0 = frame.shape[:2]
    h, w = hw
    out = frame if (h0, w0) == (h, w) else cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
    return out, FrameMeta((h0, w0), (w / w0, h / h0), (0.0, 0.0))


def preprocess(
    frames: list[np.ndarray], spec: ModelSpec, *, hw: tuple[int, int] | None = None
) -> tuple[np.ndarray, list[FrameMeta]]:
    """Turn BGR (or gray) uint8 frames into one NCHW float32 batch for ``spec``'s model.

    Steps: channel conversion, resize (letterbox / stretch / center-crop), color order,
    ``(pixel * scale - mean) / std``, HWC -> CHW, stack. ``hw`` replaces the spec's input
    size (rect inference of a model with a dynamic height and width,
    :mod:`toolkit.tasks.rect`).

    Example:
        >>> x, metas = preprocess([cv2.imread("part.jpg")], spec)
        >>> x.shape
        (1, 3, 224, 224)
    """
    if not frames:
        raise BadInputError("no frames to preprocess")
    ch = spec.input.channels
    if ch not in (1, 3):
        raise BadInputError(f"the model expects {ch}-channel input; images have 1 or 3 channels")
    hw = spec.input.hw if hw is None else hw
    pre = spec.preprocess
    # (x * scale - mean) / std == x * (scale / std) - mean / std: one multiply-add per pixel.
    std = np.asarray(pre.std, dtype=np.float32)
    mul = (np.float32(pre.scale) / std).reshape(-1, 1, 1)
    add = (-np.asarray(pre.mean, dtype=np.float32) / std).reshape(-1, 1, 1)
    batch = np.empty((len(frames), ch, *hw), dtype=np.float32)
    metas: list[FrameMeta] = []
    for i, frame in enumerate(frames):
        img = as_bgr(frame, ch)
        if pre.resize == "letterbox":
            img, meta = letterbox(img, hw, pre.pad_value)
        elif pre.resize == "center-crop":
            img, meta = center_crop(img, hw, pre.crop_pct)
        else:
            img, meta = stretch(img, hw)
        if ch == 3 and spec.input.color == "rgb":
            img = img[:, :, ::-1]
        chw = img.transpose(2, 0, 1) if img.ndim == 3 else img[None]
        np.multiply(chw, mul, out=batch[i], casting="unsafe")
        batch[i] += add
        metas.append(meta)
    return batch, metas
