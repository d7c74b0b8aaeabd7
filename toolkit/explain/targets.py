"""What a heatmap explains: a class of a classifier, or one detected box of a detector.

Scores are read from plain model outputs (numpy), so occlusion runs on any backend; the
gradient methods use the same targets on the PyTorch model (:mod:`toolkit.explain.cam`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.model.spec import ModelSpec
from toolkit.tasks.boxes import box_iou
from toolkit.tasks.preprocess import FrameMeta

# A candidate box "is" the target box when it overlaps it this much.
MATCH_IOU = 0.5
# The detector's threshold while scoring: a faint box still scores, not zero.
SCORE_CONF = 0.001


@dataclass(frozen=True)
class Target:
    """One thing to explain.

    Attributes:
        class_id: the class whose score the map explains.
        label: its name.
        score: the model's score for it on the unchanged image.
        box: detectors: the box in network-input pixels (``x1, y1, x2, y2``); None: classifier.
        box_image: the same box in the original image's pixels.
    """

    class_id: int
    label: str
    score: float
    box: tuple[float, float, float, float] | None = None
    box_image: tuple[float, float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "class_id": self.class_id,
            "label": self.label,
            "score": round(self.score, 6),
        }
        if self.box_image is not None:
            out["box"] = [round(v, 2) for v in self.box_image]
        return out


def net_meta(spec: ModelSpec) -> FrameMeta:
    """The identity mapping: boxes stay in network-input pixels."""
    h, w = spec.input.hw
    return FrameMeta((h, w), (1.0, 1.0), (0.0, 0.0))


def to_net(box: np.ndarray, meta: FrameMeta) -> tuple[float, float, float, float]:
    """A box in the frame's pixels -> network-input pixels (the inverse of ``to_original``)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    gx, gy = meta.gain
    ox, oy = meta.offset
    return (x1 * gx + ox, y1 * gy + oy, x2 * gx + ox, y2 * gy + oy)


def check_class(spec: ModelSpec, class_id: int | str | None, width: int | None) -> int | None:
    """``--class`` as an id (a name or a number), checked against the model."""
    if class_id is None:
        return None
    text = str(class_id).strip()
    if text in spec.labels:
        return spec.labels.index(text)
    if not text.lstrip("-").isdigit():
        have = ", ".join(spec.labels) or "none"
        raise BadInputError(f"--class '{text}': not a class of this model (classes: {have})")
    cid = int(text)
    n = width or len(spec.labels) or None
    if cid < 0 or (n is not None and cid >= n):
        raise BadInputError(f"--class {cid} is out of range (the model has {n} classes)")
    return cid


def classify_scores(task: Any, outputs: dict[str, np.ndarray], class_id: int) -> np.ndarray:
    """``[N]`` probability of ``class_id`` per image."""
    return task.probabilities(outputs)[:, class_id]


def detect_scores(task: Any, outputs: dict[str, np.ndarray], target: Target) -> np.ndarray:
    """``[N]`` per image: the best score of a box of the target's class that overlaps the
    target box by :data:`MATCH_IOU` (0 when none does). ``task`` decodes in network pixels."""
    metas = [net_meta(task.spec)] * len(task.select_output(outputs))
    scores = np.zeros(len(metas), np.float32)
    ref = np.asarray([target.box], np.float32)
    for i, dets in enumerate(task.postprocess(outputs, metas)):
        same = dets.class_id == target.class_id
        if not same.any():
            continue
        iou = box_iou(dets.xyxy[same], ref)[:, 0]
        ok = iou >= MATCH_IOU
        scores[i] = float(dets.confidence[same][ok].max()) if ok.any() else 0.0
    return scores


def scoring_task(spec: ModelSpec) -> Any:
    """The task that turns raw outputs into scores (a detector keeps faint boxes)."""
    from toolkit.tasks.base import make_task

    return make_task(spec, conf=SCORE_CONF, iou=0.6, max_det=300, topk=1)


def score(task: Any, outputs: dict[str, np.ndarray], target: Target) -> np.ndarray:
    """``[N]`` scores of ``target`` for a batch of outputs."""
    if target.box is None:
        return classify_scores(task, outputs, target.class_id)
    return detect_scores(task, outputs, target)


def classify_target(probs: np.ndarray, spec: ModelSpec, class_id: int | None) -> Target:
    """The top class of one image's probabilities ``[C]``, or ``class_id``."""
    cid = int(np.argmax(probs)) if class_id is None else int(class_id)
    return Target(cid, spec.label(cid), float(probs[cid]))


def detect_targets(dets: Any, meta: FrameMeta, class_id: int | None, limit: int) -> list[Target]:
    """Each detected box of one image (of ``class_id`` only, when given), at most ``limit``,
    most confident first."""
    out = []
    for k in np.argsort(-dets.confidence, kind="stable"):
        cid = int(dets.class_id[k])
        if class_id is not None and cid != class_id:
            continue
        box = dets.xyxy[k]
        out.append(Target(cid, dets.labels[k], float(dets.confidence[k]), to_net(box, meta),
                          tuple(float(v) for v in box)))  # fmt: skip
    return out[:limit]
