"""The ModelSpec schema: each field's check, and the limits on what a spec may hold.

A model file is input like any other: its spec is checked once, when it is read, so that a
string scale or a 10^6-wide shape fails there with the field named, not deep in numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from toolkit.errors import BadInputError

# The values the spec's choice fields accept.
TASKS = ("classify", "detect")
COLORS = ("rgb", "bgr", "gray")
RESIZE_MODES = ("letterbox", "stretch", "center-crop")
OUTPUT_FORMATS = ("logits", "probs", "yolov8", "yolov5", "yolo-nms")

# Limits on what a spec may hold (the largest real cameras and models fit well inside).
MAX_IMGSZ = 8192  # pixels per side: --imgsz and the spec's input height and width
MAX_BATCH = 4096  # a static batch axis
MAX_CHANNELS = 16
MAX_LABELS = 100_000
MAX_LABEL_CHARS = 1_000
MAX_METADATA_CHARS = 4_000_000  # the JSON text of one spec
MAX_EXTRA_DEPTH = 16  # nesting of the free-form ``extra`` object


class SpecFieldError(BadInputError):
    """A spec field holds an unusable value; the message is ``<field>: <why>``."""

    def __init__(self, field_name: str, why: str) -> None:
        super().__init__(f"{field_name}: {why}")
        self.field = field_name
        self.why = why


Check = Callable[[Any], str | None]  # None when the value is fine, else why it is not


def value_kind(v: Any) -> str:
    """How a JSON value reads in a message: its type, and a short excerpt of strings."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str):
        return f"a string ({v[:40]!r})"
    if isinstance(v, (int, float)):
        return f"a number ({v!r})"
    if isinstance(v, (list, tuple)):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _string(v: Any) -> str | None:
    return None if isinstance(v, str) else f"expected a string, got {value_kind(v)}"


def _optional_string(v: Any) -> str | None:
    return None if v is None else _string(v)


def _optional_bool(v: Any) -> str | None:
    if v is None or isinstance(v, bool):
        return None
    return f"expected true, false or null, got {value_kind(v)}"


def _choice(what: str, options: tuple[str, ...]) -> Check:
    def check(v: Any) -> str | None:
        if isinstance(v, str) and v in options:
            return None
        shown = f"'{v[:40]}'" if isinstance(v, str) else value_kind(v)
        return f"unknown {what} {shown} (expected one of {', '.join(options)})"

    return check


def _number_in(lo: float, hi: float, *, lo_open: bool = False) -> Check:
    def check(v: Any) -> str | None:
        if not _is_number(v):
            return f"expected a number, got {value_kind(v)}"
        if v < lo or v > hi or (lo_open and v == lo):
            return f"{v!r} is outside {'(' if lo_open else '['}{lo:g}, {hi:g}]"
        return None

    return check


def _int_in(lo: int, hi: int) -> Check:
    def check(v: Any) -> str | None:
        if not _is_int(v):
            return f"expected an integer, got {value_kind(v)}"
        return None if lo <= v <= hi else f"{v} is outside {lo}..{hi}"

    return check


def _floats(*, nonzero: bool) -> Check:
    def check(v: Any) -> str | None:
        if not isinstance(v, (list, tuple)) or not 1 <= len(v) <= MAX_CHANNELS:
            return f"expected a list of 1 to {MAX_CHANNELS} numbers, got {value_kind(v)}"
        for i, x in enumerate(v):
            if not _is_number(x):
                return f"item {i} is not a finite number ({value_kind(x)})"
            if nonzero and x == 0:
                return f"item {i} is zero (it divides)"
        return None

    return check


# Axis -> (name, largest size) of the NCHW image input.
_AXES = (("batch", MAX_BATCH), ("channels", MAX_CHANNELS), ("height", MAX_IMGSZ),
         ("width", MAX_IMGSZ))  # fmt: skip


def _shape(v: Any) -> str | None:
    if not isinstance(v, (list, tuple)):
        return f"expected a list of 4 sizes (NCHW), got {value_kind(v)}"
    if len(v) != 4:
        return f"expected 4 sizes (NCHW), got {len(v)}"
    for (axis, hi), d in zip(_AXES, v, strict=True):
        if d is None:
            continue
        if not _is_int(d):
            return f"{axis} must be an integer or null, got {value_kind(d)}"
        if not 1 <= d <= hi:
            return f"{axis} {d} is outside 1..{hi}"
    return None


def _labels(v: Any) -> str | None:
    if not isinstance(v, (list, tuple)):
        return f"expected a list of strings, got {value_kind(v)}"
    if len(v) > MAX_LABELS:
        return f"{len(v):,} labels, more than {MAX_LABELS:,}"
    for i, x in enumerate(v):
        if not isinstance(x, str):
            return f"item {i} is not a string ({value_kind(x)})"
        if len(x) > MAX_LABEL_CHARS:
            return f"item {i} is longer than {MAX_LABEL_CHARS} characters"
    return None


def _depth_over(v: Any, limit: int) -> bool:
    """Whether JSON value ``v`` nests deeper than ``limit`` (iterative: no recursion to blow)."""
    stack = [(v, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children)
    return False


def _extra(v: Any) -> str | None:
    if not isinstance(v, dict):
        return f"expected an object, got {value_kind(v)}"
    if _depth_over(v, MAX_EXTRA_DEPTH):
        return f"nested deeper than {MAX_EXTRA_DEPTH} levels"
    weights = v.get("weights")
    if weights is not None and not isinstance(weights, str):
        return f"weights: expected a string or null, got {value_kind(weights)}"
    return None


# One table per dataclass: field -> check. A missing field takes the dataclass default; a
# nested dataclass is a (prefix, table) pair. Unknown keys are ignored (newer files).
INPUT_SCHEMA: dict[str, Check] = {
    "name": _string,
    "shape": _shape,
    "layout": _choice("layout", ("NCHW",)),
    "color": _choice("color order", COLORS),
    "dtype": _string,
}
PREPROCESS_SCHEMA: dict[str, Check] = {
    "resize": _choice("resize mode", RESIZE_MODES),
    "scale": _number_in(0.0, 1e6, lo_open=True),
    "mean": _floats(nonzero=False),
    "std": _floats(nonzero=True),
    "pad_value": _int_in(0, 255),
    "crop_pct": _number_in(0.0, 1.0, lo_open=True),
}
OUTPUT_SCHEMA: dict[str, Check] = {
    "format": _choice("output format", OUTPUT_FORMATS),
    "name": _optional_string,
}
SCHEMA: dict[str, Check | tuple[str, dict[str, Check]]] = {
    "task": _choice("task", TASKS),
    "input": ("input", INPUT_SCHEMA),
    "preprocess": ("preprocess", PREPROCESS_SCHEMA),
    "labels": _labels,
    "output": ("output", OUTPUT_SCHEMA),
    "precision": _string,
    "source": _optional_string,
    "random_weights": _optional_bool,
    "version": _string,
    "extra": _extra,
}


def check_spec_data(d: dict[str, Any]) -> None:
    """Check spec data (JSON-shaped: lists or tuples) against :data:`SCHEMA`.

    Raises:
        SpecFieldError: the first field that fails, as ``<field>: <why>``.
    """
    for key, rule in SCHEMA.items():
        if key not in d:
            continue
        value = d[key]
        if isinstance(rule, tuple):
            prefix, table = rule
            if not isinstance(value, dict):
                raise SpecFieldError(prefix, f"expected an object, got {value_kind(value)}")
            for sub, check in table.items():
                if sub in value and (why := check(value[sub])) is not None:
                    raise SpecFieldError(f"{prefix}.{sub}", why)
        elif (why := rule(value)) is not None:
            raise SpecFieldError(key, why)
