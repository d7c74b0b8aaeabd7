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
from toolkit.data.images import read_image
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
) -> dict[str, Any]:
    """Top-1 and top-k accuracy of ``session``'s classifier on an ImageFolder.

    Args:
        session: an open classifier session.
        root: the data set folder (``root/<class>/<images>``) or an :class:`ImageFolder`.
        batch: images per inference call.
        topk: the k of the second accuracy, reported as ``"top{k}"`` (``None`` when the model
            has fewer than k classes, where it would be trivially 1.0).
        progress: called with (images done, total) after each batch.

    Returns:
        ``{"data", "n", "classes", "top1", "top{k}", "per_class": {label: {"n", "top1"}},
        "seconds", "images_per_second"}``.

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
    targets = ds.targets
    n = len(ds)
    num_classes: int | None = None
    hits1 = np.zeros(n, dtype=bool)
    hitsk = np.zeros(n, dtype=bool)
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        paths = [p for p, _ in ds.samples[start : start + batch]]
        frames = load_images(paths)
        probs = np.concatenate(_probabilities(session, task, frames))
        if num_classes is None:
            num_classes = probs.shape[1]
            if len(ds.classes) > num_classes:
                raise BadInputError(
                    f"the data set has {len(ds.classes)} classes but the model outputs "
                    f"{num_classes}: pass the model's --labels or use matching class folders"
                )
        t = targets[start : start + len(frames)]
        k = min(topk, num_classes)
        idx, _ = rank_topk(probs, k)
        hits1[start : start + len(frames)] = idx[:, 0] == t
        hitsk[start : start + len(frames)] = (idx == t[:, None]).any(axis=1)
        if progress is not None:
            progress(start + len(frames), n)
    seconds = time.perf_counter() - t0
    per_class = {}
    for c in np.unique(targets):
        mask = targets == c
        per_class[ds.classes[int(c)]] = {
            "n": int(mask.sum()),
            "top1": float(hits1[mask].mean()),
        }
    enough = num_classes is not None and num_classes >= topk
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
    )
    return result


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
