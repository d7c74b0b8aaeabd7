"""``predict()``: a classifier or a detector on images, folders, globs or video files.

The library form of ``edgetk predict``: the frames are read (:func:`toolkit.data.images.iter_images`,
unreadable images skipped and listed unless ``strict``), run in batches through the model's task
(:func:`toolkit.tasks.base.run_task`), and with ``save`` written as annotated copies
(:mod:`toolkit.tasks.annotate`) under a folder.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import BadInputError, ToolkitError

if TYPE_CHECKING:
    from toolkit.backends.base import Session
    from toolkit.data.images import SkippedImage
    from toolkit.model.spec import ModelSpec, SpecOverrides
    from toolkit.tasks.tiles import TileGrid

# Annotated copies keep the source's format when OpenCV can write it, else become PNG.
_WRITABLE = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class ImageResult:
    """One image's result: a :class:`~toolkit.tasks.classify.Classification` or
    :class:`~toolkit.tasks.detect.Detections` (boxes in the original image's pixels)."""

    source: str  # the file, or ``clip.mp4#frame=12`` for a video frame
    result: Any

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, **self.result.to_dict()}


@dataclass(frozen=True)
class PredictReport:
    """What :func:`predict` ran and found."""

    images: list[ImageResult]
    skipped: list[SkippedImage]  # unreadable images left out
    seconds: float  # wall time of the loop, reading and decoding the images included
    backend: str
    emulated: str | None  # see Session.emulated
    spec: ModelSpec
    saved: Path | None = None  # the folder of the annotated copies

    def to_dict(self) -> dict[str, Any]:
        """``{"backend", "emulated", "results", "count", "skipped"}``, and ``"saved"`` with
        ``save``."""
        out: dict[str, Any] = {
            "backend": self.backend,
            "emulated": self.emulated,
            "results": [r.to_dict() for r in self.images],
            "count": len(self.images),
            "skipped": [s.to_dict() for s in self.skipped],
        }
        if self.saved is not None:
            out["saved"] = str(self.saved)
        return out


def predict(
    model: str | os.PathLike[str] | Session,
    source: str | os.PathLike[str],
    *,
    backend: str = "auto",
    overrides: SpecOverrides | None = None,
    threads: int | None = None,
    weights: str | None = None,
    model_source: str | None = None,
    topk: int = 5,
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
    classes: str | Sequence[int | str] | None = None,
    agnostic: bool = False,
    batch: int = 8,
    save: str | os.PathLike[str] | None = None,
    video_stride: int = 1,
    strict: bool = False,
    square: bool = False,  # no rect inputs for a dynamic-H/W model (toolkit.tasks.rect)
    tiles: TileGrid | None = None,  # detection: each image's tiles, merged (toolkit.tasks.tiles)
) -> PredictReport:
    """Run ``model`` on every image (or every ``video_stride``-th video frame) of ``source``.

    Args:
        model: an ``.onnx`` file or a PyTorch reference (opened with ``backend``,
            ``overrides``, ``threads``, ``weights``, ``model_source``, see
            :func:`toolkit.backends.open_session`), or an open session (used as it is).
        source: an image, a folder (recursive), a glob or a video file.
        topk, conf, iou, max_det, agnostic: the classifier's top-k, the detector's thresholds.
        classes: detection: keep only these classes (ids or names; a comma list or a sequence).
        batch: images per inference call.
        save: a folder for annotated copies (files under a folder source keep their relative
            path; video frames become ``clip_000012.jpg``).
        strict: an unreadable image raises instead of being skipped and listed.

    Raises:
        BadInputError: a bad option, a missing source, an unwritable ``save`` folder (all
            before the model loads), or a class the model lacks.
    """
    from toolkit.data.images import iter_images
    from toolkit.fileio import check_output_dir
    from toolkit.tasks.base import make_task

    if batch < 1:
        raise BadInputError(f"--batch must be at least 1, got {batch}")
    # The source is resolved before the model is loaded: a typo fails fast.
    frames = iter_images(source, video_stride=video_stride, strict=strict)
    if (folder := None if save is None else Path(save)) is not None:
        check_output_dir(folder, option="--save")  # before the model loads, not at the first image
    with _opened(model, backend, overrides, threads, weights, model_source) as session:
        ids = _class_ids(classes, session)
        task = make_task(session.spec, topk=topk, conf=conf, iou=iou, max_det=max_det,
                         classes=ids, agnostic=agnostic)  # fmt: skip
        t0 = time.perf_counter()
        images: list[ImageResult] = []
        for chunk in _chunks(frames, batch):
            images += _run(session, task, chunk, folder, str(source), square, tiles)
        return PredictReport(images, list(frames.skipped), time.perf_counter() - t0, session.backend,
                             session.emulated, session.spec, folder)  # fmt: skip


def _opened(
    model: Any,
    backend: str,
    overrides: SpecOverrides | None,
    threads: int | None,
    weights: str | None,
    model_source: str | None,
) -> contextlib.AbstractContextManager[Any]:
    """An open session as it is (the caller closes it), else the model opened here."""
    if not isinstance(model, (str, os.PathLike)):
        return contextlib.nullcontext(model)
    from toolkit.backends import open_session

    return open_session(model, backend, overrides=overrides, threads=threads, weights=weights,
                        model_source=model_source)  # fmt: skip


def _class_ids(classes: str | Sequence[int | str] | None, session: Any) -> list[int] | None:
    """``classes`` as ids checked against the model (the live loop's rule); empty means all."""
    from toolkit.tasks.classes import ModelClasses, parse_classes

    text = classes if classes is None or isinstance(classes, str) else ",".join(map(str, classes))
    ids = parse_classes(text or None, ModelClasses.of(session.spec, session.outputs), "--classes")
    return sorted(ids) if ids else None


def _chunks(frames: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(frames)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _run(
    session: Any,
    task: Any,
    chunk: list[tuple[str, Any]],
    save: Path | None,
    source: str,
    square: bool = False,
    tiles: TileGrid | None = None,
) -> list[ImageResult]:
    from toolkit.tasks.base import run_task
    from toolkit.tasks.tiles import run_tiled

    frames = [frame for _, frame in chunk]
    if tiles is not None and session.spec.task != "detect":
        raise BadInputError(f"--tiles applies to detectors, not to a {session.spec.task} model")
    if tiles is None:
        results = run_task(session, task, frames, square=square)
    else:
        results = [run_tiled(session, task, f, tiles, square=square) for f in frames]
    out = []
    for (name, frame), res in zip(chunk, results, strict=True):
        if save is not None:
            _save(save / save_name(name, source), frame, res)
        out.append(ImageResult(name, res))
    return out


def save_name(name: str, source: str) -> Path:
    """Where an annotated frame goes inside the ``save`` folder.

    Files under a folder source keep their relative path (two ``img.jpg`` in different
    sub-folders do not collide); a video frame becomes ``clip_000012.jpg``.
    """
    frame_no: int | None = None
    if "#frame=" in name:
        name, _, idx = name.rpartition("#frame=")
        frame_no = int(idx)
    path, src = Path(name), Path(source)
    try:
        rel = path.relative_to(src) if src.is_dir() else Path(path.name)
    except ValueError:
        rel = Path(path.name)
    if frame_no is not None:
        return rel.with_name(f"{rel.stem}_{frame_no:06d}.jpg")
    suffix = rel.suffix.lower()
    return rel if suffix in _WRITABLE else rel.with_suffix(".png")


def _save(path: Path, frame: Any, result: Any) -> None:
    import cv2

    from toolkit.fileio import atomic_write_bytes
    from toolkit.tasks.annotate import draw_classification, draw_detections
    from toolkit.tasks.detect import Detections

    if isinstance(result, Detections):
        img = draw_detections(frame, result)
    else:
        img = draw_classification(frame, result)
    ok, buf = cv2.imencode(path.suffix, img)
    if not ok:
        raise ToolkitError(f"could not encode the annotated image {path}")
    atomic_write_bytes(path, buf.tobytes())
