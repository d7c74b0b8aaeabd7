"""Classification: the result type and the task around a classifier session.

:class:`ClassifyTask` turns frames into the model's input with the shared
:func:`~toolkit.tasks.preprocess.preprocess` and turns the model's output into top-k
:class:`Classification` results, whether the model ends with logits or with probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolkit.errors import BadInputError, ToolkitError
from toolkit.model.spec import ModelSpec
from toolkit.tasks.classes import ModelClasses, check_class_ids
from toolkit.tasks.model_io import SpecIO, subset_indices
from toolkit.tasks.preprocess import FrameMeta

# A "logits" output whose rows are all in [0, 1] and sum to 1 within this is taken as probs.
PROBS_SUM_TOL = 1e-3


@dataclass(frozen=True)
class Classification:
    """The top-k classes of one image, best first: parallel arrays of equal length.

    Attributes:
        class_id: int64 class indices, in descending confidence.
        confidence: float32 probabilities of those classes.
        labels: the class names of ``class_id`` (the index as text when the model has none).

    Example:
        >>> c = Classification(np.array([2, 0]), np.array([0.9, 0.1]), ("spot", "ok"))
        >>> c.top1_label, c[c.confidence > 0.5].to_dict()
        ('spot', {'top': [{'class_id': 2, 'label': 'spot', 'confidence': 0.9}]})
    """

    class_id: np.ndarray
    confidence: np.ndarray
    labels: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        class_id = np.asarray(self.class_id)
        confidence = np.asarray(self.confidence, dtype=np.float32)
        if class_id.ndim != 1 or confidence.ndim != 1:
            raise ValueError(
                f"class_id and confidence must be 1-D, got shapes {class_id.shape} and "
                f"{confidence.shape}"
            )
        if class_id.size and not np.issubdtype(class_id.dtype, np.integer):
            raise ValueError(f"class_id must hold integers, got {class_id.dtype}")
        labels = tuple(str(s) for s in self.labels) or tuple(str(int(i)) for i in class_id)
        if not len(class_id) == len(confidence) == len(labels):
            raise ValueError(
                f"class_id, confidence and labels differ in length: {len(class_id)}, "
                f"{len(confidence)}, {len(labels)}"
            )
        # Frozen dataclass: normalised values are set through object.__setattr__.
        object.__setattr__(self, "class_id", class_id.astype(np.int64, copy=False))
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return len(self.class_id)

    def __getitem__(self, index: int | slice | np.ndarray | Sequence[int]) -> Classification:
        """A subset (slice, index array or boolean mask), still a Classification."""
        idx = subset_indices(index, len(self))
        return Classification(
            self.class_id[idx], self.confidence[idx], tuple(self.labels[i] for i in idx)
        )

    @property
    def top1(self) -> int:
        """The best class index (raises on an empty result)."""
        if not len(self):
            raise IndexError("empty classification")
        return int(self.class_id[0])

    @property
    def top1_label(self) -> str:
        if not len(self):
            raise IndexError("empty classification")
        return self.labels[0]

    @property
    def top1_confidence(self) -> float:
        if not len(self):
            raise IndexError("empty classification")
        return float(self.confidence[0])

    def to_dict(self) -> dict[str, Any]:
        """The result as predict and the live loop's events report it:
        ``{"top": [{"class_id", "label", "confidence"}, ...]}``.
        """
        return {
            "top": [
                {"class_id": int(c), "label": lab, "confidence": round(float(p), 6)}
                for c, lab, p in zip(self.class_id, self.labels, self.confidence, strict=True)
            ]
        }


# The result type is also known by its plural name (like supervision's Detections).
Classifications = Classification


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float32."""
    z = np.asarray(x, dtype=np.float32)
    z = z - z.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z


def looks_like_probs(x: np.ndarray, tol: float = PROBS_SUM_TOL) -> bool:
    """True when every row of ``[N, C]`` is in [0, 1] and sums to 1 within ``tol``."""
    x = np.asarray(x)
    if x.size == 0 or not np.all(np.isfinite(x)):
        return False
    if x.min() < 0.0 or x.max() > 1.0:
        return False
    return bool(np.all(np.abs(x.sum(axis=-1) - 1.0) <= tol))


def topk(probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest entries per row of ``[N, C]``: (indices, values), best first.

    ``argpartition`` finds them in O(C); only those k are sorted. Ties go to the lower class
    index, as ``argmax`` does, so top-1 always equals ``probs.argmax(1)``.
    """
    probs = np.asarray(probs)
    n, c = probs.shape
    k = max(1, min(int(k), c))
    idx = np.argpartition(-probs, k - 1, axis=1)[:, :k] if k < c else np.tile(np.arange(c), (n, 1))
    vals = np.take_along_axis(probs, idx, axis=1)
    order = np.lexsort((idx, -vals), axis=-1)
    idx = np.take_along_axis(idx, order, axis=1)
    return idx, np.take_along_axis(vals, order, axis=1)


class ClassifyTask(SpecIO):
    """Pre- and post-processing for a classifier described by a :class:`ModelSpec`.

    Example:
        >>> task = ClassifyTask(session.spec, topk=3)
        >>> inputs, metas = task.preprocess([frame])
        >>> [result] = task.postprocess(session.infer(inputs), metas)
        >>> result.top1_label
        'scratch'
    """

    def __init__(
        self, spec: ModelSpec, topk: int = 5, classes: Sequence[int] | None = None
    ) -> None:
        if spec.task != "classify":
            raise BadInputError(
                f"a classification task needs a classifier, not a '{spec.task}' model"
            )
        if spec.output.format not in ("logits", "probs"):
            raise BadInputError(
                f"output format '{spec.output.format}' is not a classifier output "
                "(expected logits or probs: pass --output-format)"
            )
        if int(topk) < 1:
            raise BadInputError(f"--topk must be at least 1, got {topk}")
        check_class_ids(classes, ModelClasses.of(spec), "--classes")
        self.spec = spec
        self.topk = int(topk)
        # Like a detector's --classes: the ranking (and so the top-1) is among these alone.
        self.classes = None if classes is None else tuple(sorted({int(c) for c in classes}))

    def probabilities(self, outputs: dict[str, np.ndarray], n: int | None = None) -> np.ndarray:
        """Class probabilities ``[N, C]`` (float32) from the raw outputs.

        Args:
            outputs: what ``Session.infer`` returned.
            n: the expected batch size, checked when given.
        """
        out = self.select_output(outputs)
        if out.ndim == 4 and out.shape[2:] == (1, 1):
            out = out[:, :, 0, 0]
        elif out.ndim == 1 and n == 1:
            out = out[None]
        if out.ndim != 2:
            raise BadInputError(
                f"a classifier output must be [N, C] or [N, C, 1, 1], got shape {list(out.shape)}"
            )
        if n is not None and out.shape[0] != n:
            raise ToolkitError(f"the model returned {out.shape[0]} results for {n} images")
        if out.shape[1] == 1:
            # One output column is a binary classifier (BCE-trained): softmax over one class
            # would always say 1.0, so it becomes [P(class 0), P(class 1)] with a sigmoid.
            p = out.astype(np.float32)
            if self.spec.output.format != "probs":
                p = 1.0 / (1.0 + np.exp(-p))
            return np.concatenate([1.0 - p, p], axis=1)
        if self.spec.output.format == "probs":
            return out.astype(np.float32, copy=False)
        # Foreign classifiers often end with a Softmax node while their spec (inferred from the
        # output shape) says "logits": a second softmax would flatten the scores towards 1/C,
        # so rows that already are distributions are used as they are.
        if looks_like_probs(out):
            return out.astype(np.float32, copy=False)
        return softmax(out, axis=1)

    def postprocess(
        self, outputs: dict[str, np.ndarray], metas: list[FrameMeta] | None = None
    ) -> list[Classification]:
        """Raw outputs -> one top-k :class:`Classification` per image."""
        probs = self.probabilities(outputs, None if metas is None else len(metas))
        if self.classes is not None:
            return self._ranked_among(probs, self.classes)
        idx, vals = topk(probs, self.topk)
        return [
            Classification(i, v, tuple(self.spec.label(int(c)) for c in i))
            for i, v in zip(idx, vals, strict=True)
        ]

    def _ranked_among(self, probs: np.ndarray, classes: tuple[int, ...]) -> list[Classification]:
        """Top-k among ``classes`` only (ids past the output's width are left out)."""
        keep = np.asarray([c for c in classes if c < probs.shape[1]], np.int64)
        if keep.size == 0:
            return [Classification(np.zeros(0, np.int64), np.zeros(0, np.float32))] * len(probs)
        sub_idx, vals = topk(probs[:, keep], self.topk)
        idx = keep[sub_idx]  # keep is sorted: ties still go to the lower class id
        return [
            Classification(i, v, tuple(self.spec.label(int(c)) for c in i))
            for i, v in zip(idx, vals, strict=True)
        ]
