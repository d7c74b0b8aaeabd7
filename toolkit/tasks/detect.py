"""Detection: the result type and the task around a YOLO-family detector session.

:class:`DetectTask` letterboxes frames with the shared
:func:`~toolkit.tasks.preprocess.preprocess`, decodes the model's output in whichever layout
its spec names (:mod:`toolkit.tasks.decode`), runs NMS and maps the boxes back to each
original frame (clipped to it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolkit.errors import BadInputError, ToolkitError
from toolkit.model.spec import ModelSpec
from toolkit.tasks.classes import ModelClasses, check_class_ids
from toolkit.tasks.decode import FORMATS, DecodeOptions, decode
from toolkit.tasks.model_io import SpecIO, subset_indices
from toolkit.tasks.preprocess import FrameMeta, preprocess


@dataclass(frozen=True)
class Detections:
    """The objects found in one image: parallel arrays of equal length.

    Attributes:
        xyxy: float32 ``[N, 4]`` boxes ``x1, y1, x2, y2`` in the image's pixels.
        confidence: float32 ``[N]`` scores.
        class_id: int64 ``[N]`` class indices.
        labels: the class names of ``class_id`` (the index as text when the model has none).

    Example:
        >>> d = Detections(np.array([[1, 2, 30, 40]]), np.array([0.9]), np.array([1]), ("spot",))
        >>> d[d.confidence > 0.5].to_dict()["detections"][0]["label"]
        'spot'
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    labels: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        confidence = np.asarray(self.confidence, dtype=np.float32)
        class_id = np.asarray(self.class_id)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must be [N, 4], got shape {xyxy.shape}")
        if confidence.ndim != 1 or class_id.ndim != 1:
            raise ValueError("confidence and class_id must be 1-D")
        if class_id.size and not np.issubdtype(class_id.dtype, np.integer):
            raise ValueError(f"class_id must hold integers, got {class_id.dtype}")
        labels = tuple(str(s) for s in self.labels) or tuple(str(int(i)) for i in class_id)
        if not len(xyxy) == len(confidence) == len(class_id) == len(labels):
            raise ValueError(
                f"xyxy, confidence, class_id and labels differ in length: {len(xyxy)}, "
                f"{len(confidence)}, {len(class_id)}, {len(labels)}"
            )
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "class_id", class_id.astype(np.int64, copy=False))
        object.__setattr__(self, "labels", labels)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.class_id)

    def __getitem__(self, index: int | slice | np.ndarray | Sequence[int]) -> Detections:
        """A subset (slice, index array or boolean mask), still a Detections."""
        idx = subset_indices(index, len(self))
        return Detections(
            self.xyxy[idx],
            self.confidence[idx],
            self.class_id[idx],
            tuple(self.labels[i] for i in idx),
        )

    def to_dict(self) -> dict[str, Any]:
        """The result as predict and the live loop's events report it:
        ``{"detections": [{"class_id", "label", "confidence", "xyxy"}]}``.
        """
        return {
            "detections": [
                {
                    "class_id": int(c),
                    "label": lab,
                    "confidence": round(float(p), 6),
                    "xyxy": [round(float(v), 2) for v in box],
                }
                for box, p, c, lab in zip(
                    self.xyxy, self.confidence, self.class_id, self.labels, strict=True
                )
            ]
        }


class DetectTask(SpecIO):
    """Pre- and post-processing for a detector described by a :class:`ModelSpec`.

    Args:
        spec: the model's spec (``task="detect"``, output format yolov8 / yolov5 / yolo-nms).
        conf: minimum confidence. iou: NMS IoU threshold. max_det: boxes kept per image.
        classes: keep only these class ids (None: all). agnostic: NMS across classes.

    Example:
        >>> task = DetectTask(session.spec, conf=0.3)
        >>> inputs, metas = task.preprocess([frame])
        >>> [dets] = task.postprocess(session.infer(inputs), metas)
    """

    def __init__(
        self,
        spec: ModelSpec,
        conf: float = 0.25,
        iou: float = 0.45,
        max_det: int = 300,
        classes: Sequence[int] | None = None,
        agnostic: bool = False,
        **_ignored: Any,
    ) -> None:
        if spec.task != "detect":
            raise BadInputError(f"a detection task needs a detector, not a '{spec.task}' model")
        if spec.output.format not in FORMATS:
            raise BadInputError(
                f"output format '{spec.output.format}' is not a detector output "
                f"(expected one of {', '.join(FORMATS)}: pass --output-format)"
            )
        if not 0.0 <= conf <= 1.0 or not 0.0 <= iou <= 1.0:
            raise BadInputError(f"--conf and --iou must be in [0, 1], got {conf} and {iou}")
        if max_det < 1:
            raise BadInputError(f"--max-det must be at least 1, got {max_det}")
        # An id the model lacks would match nothing, and every frame would look clean.
        check_class_ids(classes, ModelClasses.of(spec), "--classes")
        self.spec = spec
        self.options = DecodeOptions(
            conf=float(conf),
            iou=float(iou),
            max_det=int(max_det),
            classes=None if classes is None else tuple(int(c) for c in classes),
            agnostic=bool(agnostic),
        )

    @property
    def iou(self) -> float:
        return self.options.iou

    @property
    def agnostic(self) -> bool:
        return self.options.agnostic

    @property
    def max_det(self) -> int:
        return self.options.max_det

    def preprocess(
        self, frames: list[np.ndarray], *, hw: tuple[int, int] | None = None
    ) -> tuple[dict[str, np.ndarray], list[FrameMeta]]:
        """Frames -> ({input name: batch}, metas), letterboxed to ``hw`` when given (rect
        inference, :mod:`toolkit.tasks.rect`), else to the spec's input size."""
        batch, metas = preprocess(frames, self.spec, hw=hw)
        return {self.spec.input.name: batch}, metas

    def postprocess(
        self, outputs: dict[str, np.ndarray], metas: list[FrameMeta]
    ) -> list[Detections]:
        """Raw outputs -> one :class:`Detections` per frame, in that frame's pixels."""
        out = self.select_output(outputs)
        per_image = decode(out, self.spec.output.format, self.options)
        if len(per_image) != len(metas):
            raise ToolkitError(
                f"the model returned {len(per_image)} results for {len(metas)} images"
            )
        results = []
        for (xyxy, conf, cls), meta in zip(per_image, metas, strict=True):
            boxes = meta.to_original(xyxy)
            # Boxes wholly in the padding collapse to zero area when clipped: drop them.
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            results.append(
                Detections(
                    boxes[keep],
                    conf[keep],
                    cls[keep],
                    tuple(self.spec.label(int(c)) for c in cls[keep]),
                )
            )
        return results
