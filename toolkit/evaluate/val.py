"""``validate()``: the one entry of ``edgetk val``. The data picks the metric: a YOLO-format set
(``data.yaml``) scores a detector (:func:`toolkit.evaluate.detect.validate_detector`), an
ImageFolder a classifier (:func:`toolkit.evaluate.classify.validate_classifier`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import BadInputError
from toolkit.evaluate.detect import VAL_CONF, VAL_IOU

if TYPE_CHECKING:
    from toolkit.model.spec import SpecOverrides


@dataclass(frozen=True)
class Validation:
    """A validation's metrics (``result``: what the task's validate function returns)."""

    task: str  # "classify" or "detect"
    backend: str
    emulated: str | None  # see Session.emulated
    result: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "emulated": self.emulated, **self.result}


def validate(
    model: str | Path,
    data: str | Path,
    *,
    backend: str = "auto",
    overrides: SpecOverrides | None = None,
    threads: int | None = None,
    weights: str | None = None,
    model_source: str | None = None,
    batch: int = 16,
    split: str = "val",
    conf: float = VAL_CONF,
    iou: float = VAL_IOU,
    strict: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Validation:
    """Score ``model`` on ``data``: top-1 / top-5 accuracy on an ImageFolder
    (``root/<class>/<images>``), mAP50 / mAP50-95 / precision / recall on a YOLO set.

    Args:
        model: an ``.onnx`` file, or a PyTorch reference with ``backend="torch"``; it is opened
            with ``backend``, ``overrides``, ``threads``, ``weights`` and ``model_source``
            (see :func:`toolkit.backends.open_session`).
        split, conf, iou: detection only: the data.yaml split and the decoding thresholds.
        strict: an unreadable image raises instead of being skipped and listed.
        progress: called with (images done, total) after each batch.

    Raises:
        BadInputError: a bad ``batch``, a missing data set, or a model whose task does not fit
            the data (a detector on an ImageFolder, a classifier on a YOLO set).
    """
    from toolkit.data.yolo import is_yolo_set

    if batch < 1:
        raise BadInputError(f"--batch must be at least 1, got {batch}")
    root = Path(data)
    opened = {"backend": backend, "overrides": overrides, "threads": threads,
              "weights": weights, "model_source": model_source}  # fmt: skip
    if is_yolo_set(root):
        return _detection(model, root, opened, batch=batch, split=split, conf=conf, iou=iou,
                          strict=strict, progress=progress)  # fmt: skip
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "not found"
        raise BadInputError(
            f"data set {what}: {data} (expected an ImageFolder: root/<class>/<images>)"
        )
    return _classification(model, root, opened, batch=batch, strict=strict, progress=progress)


def _classification(
    model: str | Path, root: Path, opened: dict[str, Any], **options: Any
) -> Validation:
    from toolkit.backends import open_session
    from toolkit.data.imagefolder import ImageFolder
    from toolkit.evaluate.classify import validate_classifier
    from toolkit.tasks.base import make_task

    with open_session(model, **opened) as session:
        if session.spec.task == "detect":
            raise BadInputError(
                f"{model} is a detection model: validate it on a YOLO-format set (data.yaml)"
            )
        make_task(session.spec)
        ds = ImageFolder(root, labels=session.spec.labels or None)
        result = validate_classifier(session, ds, **options)
        return Validation("classify", session.backend, session.emulated, result)


def _detection(
    model: str | Path, root: Path, opened: dict[str, Any], *, split: str, **options: Any
) -> Validation:
    from toolkit.backends import open_session
    from toolkit.data.yolo import data_yaml, load_yolo_set
    from toolkit.evaluate.detect import validate_detector

    ys = load_yolo_set(data_yaml(root))
    ys.images(split)  # a missing split fails before the model loads
    with open_session(model, **opened) as session:
        if session.spec.task != "detect":
            raise BadInputError(
                f"{model} is a {session.spec.task} model; a YOLO-format set needs a detector "
                "(pass --task detect if it is one)"
            )
        result = validate_detector(session, ys.yaml_path, split, **options)
        return Validation("detect", session.backend, session.emulated, result)
