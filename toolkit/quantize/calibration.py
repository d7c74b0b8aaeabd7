"""Calibration data: frames from a folder, a video, the synthetic generator or an ``.npz``.

Every source except ``.npz`` (ready tensors) goes through THE preprocessing function
(:func:`toolkit.tasks.preprocess.preprocess`) with the model's spec, so the int8 ranges are
measured on the pixels the model will see in production. A part of the frames is held out
(never calibrated on) to measure the int8 model's agreement with the float one.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.model.spec import ModelSpec

if TYPE_CHECKING:
    from toolkit.data.images import SkippedImage

log = logging.getLogger(__name__)

# Fewer calibration samples than this give noisy activation ranges (ORT/TensorRT guidance).
RECOMMENDED_MIN = 100
# A folder must still give this many readable images (or --calib-size, if smaller): a few
# frames are no picture of a production line, and the held-out check needs some too.
MIN_READABLE = 8
SOURCE_HINT = "expected a folder of images, a video file, an .npz of tensors, or 'synthetic'"

Progress = Callable[[int, int], None]


@dataclass
class CalibrationSet:
    """Preprocessed NCHW float32 tensors: ``calib`` for the ranges, ``holdout`` for agreement."""

    source: str
    kind: str  # folder | video | synthetic | npz
    calib: np.ndarray
    holdout: np.ndarray
    warnings: list[str]
    skipped: list[SkippedImage] = field(default_factory=list)

    @property
    def count(self) -> int:
        return int(self.calib.shape[0])


def holdout_count(size: int) -> int:
    """How many extra samples are held out for the agreement check (about a fifth, 4..50)."""
    return int(min(50, max(4, size // 5)))


def load_calibration(
    source: str | Path,
    spec: ModelSpec,
    *,
    size: int = 128,
    holdout: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    strict: bool = False,
) -> CalibrationSet:
    """Read and preprocess up to ``size`` calibration samples (+ held-out ones) from ``source``.

    Args:
        source: an image folder (recursive), a video file (frames sampled evenly across it),
            ``synthetic`` (rendered defect parts at the model's input size), or an ``.npz``
            holding one NCHW float array (key ``images`` or the first one).
        spec: the model's spec (input size, color, preprocessing).
        size: calibration samples wanted.
        holdout: held-out samples wanted (default :func:`holdout_count`); when the source is
            smaller than ``size + holdout``, about a fifth of what there is is held out.
        seed: seed of the synthetic generator.
        progress: called with (done, total) while frames are decoded.
        strict: an unreadable image in a folder is an error; by default it is skipped (others
            take its place), listed in ``skipped`` and in the warnings.

    Raises:
        BadInputError: a missing or empty source, an unreadable video, a mismatched ``.npz``,
            a folder with fewer readable images than :data:`MIN_READABLE` (or ``size``).
    """
    if size < 1:
        raise BadInputError(f"--calib-size must be at least 1, got {size}")
    want_hold = holdout_count(size) if holdout is None else max(0, int(holdout))
    total = size + want_hold
    text = str(source)
    skipped: list[SkippedImage] = []
    if text.lower() == "synthetic":
        kind, batch = "synthetic", _synthetic(spec, total, seed, progress)
    else:
        p = Path(text)
        if not p.exists():
            raise BadInputError(f"calibration source not found: {text} ({SOURCE_HINT})")
        if p.is_dir():
            kind, batch = "folder", _folder(p, spec, (total, size), progress, strict, skipped)
        elif p.suffix.lower() == ".npz":
            kind, batch = "npz", _npz(p, spec, total)
        else:
            from toolkit.data.images import is_video

            if not is_video(p):
                raise BadInputError(f"calibration source {text} is not usable ({SOURCE_HINT})")
            kind, batch = "video", _video(p, spec, total, progress)
    calib, held = _split(batch, size, want_hold)
    warnings = [_skipped_text(skipped)] if skipped else []
    if calib.shape[0] < RECOMMENDED_MIN:
        warnings.append(
            f"only {calib.shape[0]} calibration samples (at least {RECOMMENDED_MIN} are "
            "recommended): the int8 ranges may not cover production images"
        )
    return CalibrationSet(text, kind, calib, held, warnings, skipped)


def _split(batch: np.ndarray, size: int, hold: int) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved split, so both parts span the whole source (all classes, the whole video)."""
    n = batch.shape[0]
    if n < size + hold:
        hold = n // 5 if n >= 5 else 0
    if hold == 0:
        return batch[: min(n, size)], batch[:0]
    step = n / hold
    held_idx = np.unique(np.floor(np.arange(hold) * step + step / 2).astype(int).clip(0, n - 1))
    mask = np.zeros(n, dtype=bool)
    mask[held_idx] = True
    return batch[~mask][:size], batch[mask]


def _preprocess_all(
    frames: Iterator[np.ndarray], spec: ModelSpec, total: int, progress: Progress | None
) -> np.ndarray:
    from toolkit.tasks.preprocess import preprocess

    out: list[np.ndarray] = []
    for i, frame in enumerate(frames):
        x, _ = preprocess([frame], spec)
        out.append(x)
        if progress is not None:
            progress(i + 1, total)
    if not out:  # every image skipped: the caller says how many were needed
        c, (h, w) = spec.input.channels, spec.input.hw
        return np.zeros((0, c, h, w), np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def _evenly(n: int, k: int) -> np.ndarray:
    """``k`` indices spread evenly over ``range(n)`` (all of them when ``k >= n``)."""
    if k >= n:
        return np.arange(n)
    return np.unique(np.floor((np.arange(k) + 0.5) * n / k).astype(int))


def _folder(
    root: Path, spec: ModelSpec, sizes: tuple[int, int], progress: Progress | None,
    strict: bool, skipped: list[SkippedImage],
) -> np.ndarray:  # fmt: skip
    """Up to ``sizes[0]`` readable images; an unreadable one is skipped and a spare file
    takes its place. Fails below ``min(MIN_READABLE, sizes[1])`` readable images."""
    from toolkit.data.images import ImageStream, list_media

    total, size = sizes
    files = list_media(root, videos=False)
    if not files:
        raise BadInputError(f"no images in calibration folder {root} ({SOURCE_HINT})")
    # Evenly over the sorted paths: a class-per-folder set contributes every class.
    picked = set(_evenly(len(files), total).tolist())
    order = [files[i] for i in sorted(picked)] + [f for i, f in enumerate(files) if i not in picked]
    stream = ImageStream(order, root=root, strict=strict, require_any=False)
    frames = (frame for _, frame in itertools.islice(stream, min(total, len(files))))
    batch = _preprocess_all(frames, spec, min(total, len(files)), progress)
    skipped += stream.skipped
    needed = min(MIN_READABLE, size)
    if batch.shape[0] < needed:
        why = f" ({_skipped_text(stream.skipped)})" if stream.skipped else ""
        have = batch.shape[0]
        raise BadInputError(
            f"calibration needs at least {needed} readable images; {root} has {have}{why}"
        )
    return batch


def _skipped_text(skipped: list[SkippedImage]) -> str:
    from toolkit.data.images import skipped_text  # OpenCV only when a folder is read

    return skipped_text(skipped)


def _video(path: Path, spec: ModelSpec, total: int, progress: Progress | None) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise BadInputError(f"cannot open video {path} (corrupt or unsupported codec)")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if count <= 0:  # some containers do not say: count by grabbing, then reopen
            while cap.grab():
                count += 1
            cap.release()
            cap = cv2.VideoCapture(str(path))
        wanted = set(_evenly(count, total).tolist()) if count > 0 else set()
        frames: list[np.ndarray] = []
        i = 0
        # Sequential grab()/retrieve(): seeking is frame-inexact for many codecs.
        while len(frames) < len(wanted) and cap.grab():
            if i in wanted:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    frames.append(frame)
            i += 1
    finally:
        cap.release()
    if not frames:
        raise BadInputError(f"no frames could be read from video {path}")
    return _preprocess_all(iter(frames), spec, len(frames), progress)


def _synthetic(spec: ModelSpec, total: int, seed: int, progress: Progress | None) -> np.ndarray:
    from toolkit.data.synthetic import CLASSES, render_part

    hw = spec.input.hw

    def frames() -> Iterator[np.ndarray]:
        for i in range(total):
            cls = CLASSES[i % len(CLASSES)]
            rng = np.random.default_rng([seed, 7919, i])
            img, _ = render_part(rng, hw, None if cls == "ok" else cls)
            yield img

    return _preprocess_all(frames(), spec, total, progress)


def _npz(path: Path, spec: ModelSpec, total: int) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            if not keys:
                raise BadInputError(f"no arrays in {path}")
            arr = np.asarray(data["images" if "images" in keys else keys[0]])
    except (OSError, ValueError) as e:
        raise BadInputError(f"cannot read {path}: {e}") from e
    c, (h, w) = spec.input.channels, spec.input.hw
    if arr.ndim != 4 or tuple(arr.shape[1:]) != (c, h, w):
        raise BadInputError(
            f"{path}: expected preprocessed NCHW tensors of shape [N, {c}, {h}, {w}], "
            f"got {list(arr.shape)}"
        )
    if arr.shape[0] == 0:
        raise BadInputError(f"{path} holds no samples")
    return arr[_evenly(arr.shape[0], total)].astype(np.float32)


def make_reader(
    data: np.ndarray,
    input_name: str,
    *,
    batch: int = 1,
    fixed: bool = False,
    progress: Progress | None = None,
) -> Any:
    """An ONNX Runtime ``CalibrationDataReader`` over ``data`` (``batch`` samples per call).

    With ``fixed`` (a static-batch model) the last chunk is padded by repeating its last sample
    (:func:`~toolkit.tasks.batching.padded_chunks`).
    """
    from onnxruntime.quantization import CalibrationDataReader

    from toolkit.tasks.batching import padded_chunks

    class ArrayReader(CalibrationDataReader):
        """Feeds the preprocessed tensors to ONNX Runtime's calibrator, ticking ``progress``."""

        def __init__(self) -> None:
            self.rewind()

        def get_next(self) -> dict[str, np.ndarray] | None:
            item = next(self.chunks, None)
            if item is None:
                return None
            chunk, n = item
            self.pos += n
            if progress is not None:
                progress(self.pos, len(data))
            return {input_name: np.ascontiguousarray(chunk)}

        def rewind(self) -> None:
            self.pos = 0
            self.chunks = padded_chunks(data, batch, batch if fixed else None)

        def __len__(self) -> int:
            return -(-len(data) // batch)

    return ArrayReader()
