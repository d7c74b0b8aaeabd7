"""Accuracy of a classifier session on a labelled ImageFolder: top-1, top-k, per class.

The images go through the same :class:`~toolkit.tasks.classify.ClassifyTask` (and so the same
preprocessing) as ``edgetk predict`` and the live loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toolkit.data.imagefolder import ImageFolder
from toolkit.data.images import ImageReadError, SkippedImage, read_image, shown_name, skipped_text
from toolkit.errors import BadInputError
from toolkit.tasks.base import run_task
from toolkit.tasks.classify import ClassifyTask
from toolkit.tasks.classify import topk as rank_topk

if TYPE_CHECKING:
    from toolkit.backends.base import Session


def load_images(paths: Sequence[str | Path]) -> list[np.ndarray]:
    """Decode a batch of image files (as :func:`~toolkit.data.images.read_image` does)."""
    return [read_image(p) for p in paths]


def validate_classifier(
    session: Session,
    root: str | Path | ImageFolder,
    *,
    batch: int = 16,
    topk: int = 5,
    progress: Callable[[int, int], None] | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """Top-1 and top-k accuracy of ``session``'s classifier on an ImageFolder.

    An image that cannot be read is skipped (it counts in no metric) and listed in the
    result's ``skipped``; with ``strict`` it is an error.

    Args:
        session: an open classifier session.
        root: the data set folder (``root/<class>/<images>``) or an :class:`ImageFolder`.
        batch: images per inference call.
        topk: the k of the second accuracy, reported as ``"top{k}"`` (``None`` when the model
            has fewer than k classes, where it would be trivially 1.0).
        progress: called with (images done, total) after each batch.
        strict: raise on the first unreadable image instead of skipping it.

    Returns:
        ``{"data", "n", "classes", "top1", "top{k}", "per_class": {label: {"n", "top1"}},
        "seconds", "images_per_second", "skipped": [{"source", "reason"}]}`` (``n``: the
        images scored).

    Raises:
        BadInputError: bad options, a class count the model lacks, an unreadable image with
            ``strict``, or no readable image at all.

    Example:
        >>> with open_session("defects.onnx") as s:
        ...     validate_classifier(s, "data/val")["top1"]
        0.975
    """
    if batch < 1:
        raise BadInputError(f"--batch must be at least 1, got {batch}")
    if topk < 1:
        raise BadInputError(f"--topk must be at least 1, got {topk}")
    spec = session.spec
    task = ClassifyTask(spec, topk=1)
    ds = root if isinstance(root, ImageFolder) else ImageFolder(root, labels=spec.labels or None)
    scores = _Scores(ds)
    n = len(ds)
    skipped: list[SkippedImage] = []
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        rows, frames = _read_batch(ds, start, batch, strict, skipped)
        if not frames:
            continue
        scores.add(rows, np.concatenate(_probabilities(session, task, frames)), topk)
        if progress is not None:
            progress(min(start + batch, n), n)
    if not scores.scored.any():
        raise BadInputError(f"no readable images in {ds.root} ({skipped_text(skipped)})")
    return _result(ds, scores, topk, time.perf_counter() - t0, skipped)


class _Scores:
    """Per-sample hits (top-1, top-k) of the images scored so far."""

    def __init__(self, ds: ImageFolder) -> None:
        self.ds = ds
        self.targets = ds.targets
        n = len(ds)
        self.hits1 = np.zeros(n, dtype=bool)
        self.hitsk = np.zeros(n, dtype=bool)
        self.scored = np.zeros(n, dtype=bool)
        self.num_classes: int | None = None

    def add(self, rows: np.ndarray, probs: np.ndarray, topk: int) -> None:
        """Score the samples ``rows`` from their class probabilities ``probs``."""
        if self.num_classes is None:
            self.num_classes = probs.shape[1]
            if len(self.ds.classes) > self.num_classes:
                raise BadInputError(
                    f"the data set has {len(self.ds.classes)} classes but the model outputs "
                    f"{self.num_classes}: pass the model's --labels or use matching class folders"
                )
        t = self.targets[rows]
        idx, _ = rank_topk(probs, min(topk, self.num_classes))
        self.hits1[rows] = idx[:, 0] == t
        self.hitsk[rows] = (idx == t[:, None]).any(axis=1)
        self.scored[rows] = True


def _result(
    ds: ImageFolder, scores: _Scores, topk: int, seconds: float, skipped: list[SkippedImage]
) -> dict[str, Any]:
    """The result of :func:`validate_classifier` over the scored images."""
    scored = scores.scored
    hits1, hitsk, targets = scores.hits1[scored], scores.hitsk[scored], scores.targets[scored]
    n = int(scored.sum())
    per_class = {}
    for c in np.unique(targets):
        mask = targets == c
        per_class[ds.classes[int(c)]] = {
            "n": int(mask.sum()),
            "top1": float(hits1[mask].mean()),
        }
    enough = scores.num_classes is not None and scores.num_classes >= topk
    result: dict[str, Any] = {
        "data": str(ds.root),
        "n": n,
        "classes": list(ds.classes),
        "top1": float(hits1.mean()),
    }
    if topk != 1:
        result[f"top{topk}"] = float(hitsk.mean()) if enough else None
    result.update(
        per_class=per_class,
        seconds=round(seconds, 4),
        images_per_second=round(n / seconds, 2) if seconds > 0 else None,
        skipped=[s.to_dict() for s in skipped],
    )
    return result


def _read_batch(
    ds: ImageFolder, start: int, batch: int, strict: bool, skipped: list[SkippedImage]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The readable images of one batch and their sample indices; the rest go to ``skipped``."""
    rows, frames = [], []
    for i, (path, _) in enumerate(ds.samples[start : start + batch], start):
        try:
            frames.append(read_image(path))
        except ImageReadError as e:
            if strict:
                raise
            skipped.append(SkippedImage(shown_name(Path(path), Path(ds.root)), e.reason))
            continue
        rows.append(i)
    return np.asarray(rows, dtype=np.int64), frames


def _probabilities(
    session: Session, task: ClassifyTask, frames: list[np.ndarray]
) -> list[np.ndarray]:
    """Class probabilities of ``frames`` through :func:`run_task` (static batches handled)."""
    return run_task(session, _ProbsTask(task), frames)


class _ProbsTask:
    """ClassifyTask, but returning each image's full probability row (val needs every class)."""

    def __init__(self, task: ClassifyTask) -> None:
        self.task = task
        self.spec = task.spec

    def preprocess(self, frames: list[np.ndarray]) -> tuple[dict[str, np.ndarray], list[Any]]:
        return self.task.preprocess(frames)

    def postprocess(self, outputs: dict[str, np.ndarray], metas: list[Any]) -> list[np.ndarray]:
        probs = self.task.probabilities(outputs, len(metas))
        return [row[None] for row in probs]
