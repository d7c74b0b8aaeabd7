"""One model and one method, ready to explain frames: :class:`Explainer`.

The CLI, ``--eval`` and the live loop's :class:`~toolkit.explain.worker.HeatmapWorker` all go
through it. The targets come from the same session the map is made on: the PyTorch model for
the gradient methods, any backend for occlusion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.explain import heat as H
from toolkit.explain.occlusion import occlusion_map
from toolkit.explain.targets import (
    Target,
    check_class,
    classify_target,
    detect_targets,
    scoring_task,
)
from toolkit.model.spec import SpecOverrides

METHODS = ("gradcam", "gradcam++", "layercam", "occlusion", "saliency")


@dataclass
class Explanation:
    """One heatmap: what it explains, the map over the frame's pixels (float32, [0, 1]), and
    where its heat lies."""

    target: Target
    heat: np.ndarray
    seconds: float
    inside_boxes: list[float] = field(default_factory=list)  # per detected box of the frame
    inside_rois: list[float] = field(default_factory=list)  # per ROI (x, y, w, h)

    @property
    def inside_own(self) -> float | None:
        """A box's map: the share of its heat inside that box."""
        box = self.target.box_image
        return None if box is None else H.fraction_inside(self.heat, [box])[0]

    @property
    def peak(self) -> tuple[int, int]:
        return H.peak(self.heat)

    def to_dict(self) -> dict[str, Any]:
        own = {} if self.target.box is None else {"inside_own_box": self.inside_own}
        return {**self.target.to_dict(), "peak": list(self.peak), **own,
                "inside_boxes": self.inside_boxes, "inside_rois": self.inside_rois,
                "ms": round(1000 * self.seconds, 2)}  # fmt: skip


def check_method(method: str) -> str:
    m = method.strip().lower()
    if m not in METHODS:
        raise BadInputError(f"--method must be one of {', '.join(METHODS)}, got '{method}'")
    return m


class Explainer:
    """Heatmaps of ``model`` by ``method``.

    Args:
        model: an ``.onnx`` file, an engine (occlusion), or a PyTorch reference.
        method: one of :data:`METHODS`. Gradient methods run on the PyTorch model (for an
            ONNX file: its recorded ``zoo:`` source or ``model_source``); occlusion runs on
            ``backend``.
        layer: the CAM layer (default: :func:`~toolkit.explain.source.default_cam_layer`).
        conf, iou: the detector's thresholds for the boxes explained. max_boxes: per frame.
        patch, stride, batch: occlusion's patch, step and copies per call.

    Example:
        >>> with Explainer("defect.onnx", "occlusion") as ex:
        ...     [e] = ex.explain(frame)
        ...     e.target.label, e.peak
    """

    def __init__(
        self, model: str, method: str = "gradcam", *, backend: str = "auto",
        weights: str | None = None, model_source: str | None = None,
        overrides: SpecOverrides | None = None, threads: int | None = None,
        layer: str | None = None, conf: float = 0.25, iou: float = 0.45, max_boxes: int = 10,
        patch: int | None = None, stride: int | None = None, batch: int = 32,
    ) -> None:  # fmt: skip
        from toolkit.backends import open_session
        from toolkit.tasks.base import make_task

        self.method = check_method(method)
        self.module: Any = None
        if self.method == "occlusion":
            self.session = open_session(model, backend, overrides=overrides, threads=threads,
                                        weights=weights, model_source=model_source)  # fmt: skip
        else:
            from toolkit.explain.source import torch_session

            self.session, self.module = torch_session(model, weights=weights, threads=threads,
                                                      model_source=model_source,
                                                      overrides=overrides)  # fmt: skip
        self.spec = self.session.spec
        n = max(1, len(self.spec.labels)) if self.spec.task == "classify" else 1
        self.task = make_task(self.spec, conf=conf, iou=iou, max_det=max_boxes, topk=n)
        self.scorer = scoring_task(self.spec)
        self.max_boxes = max_boxes
        self.occ = {"patch": patch, "stride": stride, "batch": batch}
        self.layer = layer
        if self.module is not None and self.method != "saliency" and layer is None:
            from toolkit.explain.source import default_cam_layer, import_torch

            x = import_torch().zeros((1, self.spec.input.channels, *self.spec.input.hw))
            self.layer = default_cam_layer(self.module, x, self.spec.task)

    def class_id(self, value: int | str | None) -> int | None:
        """``--class`` as an id of this model."""
        width = self.session.outputs[0].shape[-1] if self.spec.task == "classify" else None
        return check_class(self.spec, value, width if isinstance(width, int) else None)

    def prepare(self, frame: np.ndarray) -> tuple[np.ndarray, Any, Any]:
        """(input ``[1, C, H, W]``, frame meta, the model's result on the frame)."""
        from toolkit.tasks.base import prepare_inputs

        inputs, metas = prepare_inputs(self.session, self.task, [frame])
        x = next(iter(inputs.values()))[:1]
        outputs = self.session.infer({self.session.input_name: inputs[self.session.input_name]})
        if self.spec.task == "classify":
            return x, metas[0], self.task.probabilities(outputs)[0]
        return x, metas[0], self.task.postprocess(outputs, metas)[0]

    def targets(self, meta: Any, result: Any, class_id: int | None) -> list[Target]:
        if self.spec.task == "classify":
            return [classify_target(result, self.spec, class_id)]
        return detect_targets(result, meta, class_id, self.max_boxes)

    def net_map(self, x: np.ndarray, target: Target) -> np.ndarray:
        """The raw map over the network input for one target."""
        if self.method == "occlusion":
            return occlusion_map(self.session, self.scorer, x, target, **self.occ)
        from toolkit.explain.cam import gradient_map

        return gradient_map(self.module, self.spec, x, target, self.method, self.layer or "")

    def explain(
        self,
        frame: np.ndarray,
        class_id: int | None = None,
        rois: list[tuple[int, int, int, int]] | None = None,
    ) -> list[Explanation]:
        """The heatmaps of one BGR frame: one for a classifier (its top class, or
        ``class_id``), one per detected box for a detector (none when nothing is found)."""
        x, meta, result = self.prepare(frame)
        boxes = [] if self.spec.task == "classify" else [list(b) for b in result.xyxy]
        roi_boxes = [(rx, ry, rx + rw, ry + rh) for rx, ry, rw, rh in rois or []]
        out = []
        for target in self.targets(meta, result, class_id):
            t0 = time.perf_counter()
            heat = H.normalize(H.to_image(self.net_map(x, target), meta))
            out.append(Explanation(target, heat, time.perf_counter() - t0,
                                   H.fraction_inside(heat, boxes),
                                   H.fraction_inside(heat, roi_boxes)))  # fmt: skip
        return out

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Explainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
