"""Class references on the command line (``--classes``, ``--reject``), checked against the model.

One parser for every command: a comma list of class names or ids becomes class ids, and each
one must exist in the model, its labels or its output's class axis. A reference the model
lacks is bad input (exit 2) whose message lists what the model has, e.g.
``--reject 99: no such class; the model has 0 ok, 1 scratch, 2 spot``: a filter that matches
nothing would otherwise run quietly with every frame OK.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from toolkit.errors import BadInputError

# The longest class list quoted in an error message (a COCO model has 80).
_LISTED = 20


@dataclass(frozen=True)
class ModelClasses:
    """The classes a model has: names (possibly none) and how many (None: not known).

    Example:
        >>> ModelClasses(("ok", "scratch")).describe()
        '0 ok, 1 scratch'
    """

    labels: tuple[str, ...] = ()
    count: int | None = None

    def __post_init__(self) -> None:
        if self.count is None and self.labels:
            object.__setattr__(self, "count", len(self.labels))

    @classmethod
    def of(cls, spec: Any, outputs: Sequence[Any] = ()) -> ModelClasses:
        """The classes of a model from its spec and, when known, its outputs' static shapes.

        The output's class axis is what the model computes, so it wins over the labels' count
        (labels can be fewer: the others are then known by id only).
        """
        labels = tuple(spec.labels or ())
        count = output_class_count(spec, outputs)
        return cls(labels, count if count is not None else (len(labels) or None))

    def name(self, class_id: int) -> str:
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else str(class_id)

    def has(self, class_id: int) -> bool:
        return class_id >= 0 and (self.count is None or class_id < self.count)

    def describe(self, ids: Iterable[int] | None = None) -> str:
        """``"0 ok, 1 scratch, 2 spot"`` (``ids``: only those), shortened for long lists."""
        if ids is None:
            if self.count is None:
                return "no class names (use class ids)"
            ids = range(self.count)
        ids = sorted(ids)
        if not ids:
            return "none"
        if not self.labels and ids == list(range(len(ids))):
            return f"{len(ids)} classes without names (ids 0-{len(ids) - 1})"
        # Unnamed classes read as their id alone ("3"), named ones as "3 crack".
        text = ", ".join(
            f"{i} {self.labels[i]}" if 0 <= i < len(self.labels) else str(i) for i in ids[:_LISTED]
        )
        return text + (f", ... ({len(ids)} in all)" if len(ids) > _LISTED else "")


def output_class_count(spec: Any, outputs: Sequence[Any]) -> int | None:
    """The class count that the first output's static shape implies, or None.

    Classifier ``[N, C]`` (one column: a binary classifier, 2 classes), YOLOv8 ``[N, 4 + C, A]``,
    YOLOv5 ``[N, A, 5 + C]``; ``yolo-nms`` outputs carry no class axis.
    """
    if not outputs:
        return None
    shape = tuple(getattr(outputs[0], "shape", ()) or ())
    fmt = spec.output.format
    axis, offset = {"logits": (1, 0), "probs": (1, 0), "yolov8": (1, 4), "yolov5": (2, 5)}.get(
        fmt, (None, 0)
    )
    if axis is None or len(shape) <= axis or not isinstance(shape[axis], int):
        return None
    count = int(shape[axis]) - offset
    if fmt in ("logits", "probs") and count == 1:
        return 2
    return count if count > 0 else None


def parse_classes(
    text: str | None, model: ModelClasses | Sequence[str], option: str
) -> frozenset[int] | None:
    """A comma list of class names or ids -> class ids, each checked against ``model``.

    Args:
        text: the option's value (None: not given, returns None). An empty list returns an
            empty set: the caller decides what keeping or rejecting nothing means.
        model: the model's classes (a bare label tuple is taken as all of them).
        option: the option's name for messages (``--classes``, ``--reject``).

    Raises:
        BadInputError: a name or id the model lacks; the message lists the model's classes.
    """
    if text is None:
        return None
    if not isinstance(model, ModelClasses):
        model = ModelClasses(tuple(model))
    ids: set[int] = set()
    for item in filter(None, (s.strip() for s in text.split(","))):
        if item.lstrip("-").isdigit():
            class_id = int(item)
        elif item in model.labels:
            class_id = model.labels.index(item)
        else:
            class_id = _case_insensitive(item, model.labels)
        if class_id is None or not model.has(class_id):
            raise BadInputError(f"{option} {item}: no such class; the model has {model.describe()}")
        ids.add(class_id)
    return frozenset(ids)


def check_class_ids(ids: Iterable[int] | None, model: ModelClasses, option: str) -> None:
    """Raise BadInputError for an id the model lacks (ids given as numbers, e.g. by the API)."""
    for class_id in sorted(ids or ()):
        if not model.has(int(class_id)):
            raise BadInputError(
                f"{option} {class_id}: no such class; the model has {model.describe()}"
            )


def _case_insensitive(item: str, labels: Sequence[str]) -> int | None:
    # "Scratch" for "scratch" is a clear intent; two labels differing only in case are not.
    matches = [i for i, lab in enumerate(labels) if lab.lower() == item.lower()]
    return matches[0] if len(matches) == 1 else None
