"""The TensorRT optimization profile, planned from the ONNX input shapes and the batch flags.

A dynamic batch axis becomes ``min..max`` tuned for ``opt`` (``--min/--opt/--max-batch``);
other dynamic axes take the spec's size (``--imgsz``); a static batch is its own profile and
batch flags that contradict it are refused. Pure Python: testable without TensorRT.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from toolkit.errors import BadInputError
from toolkit.model.spec import ModelSpec

# Default largest batch of a dynamic engine: enough for `benchmark --batch 1,8` and small
# multi-camera batches, without the memory a large profile costs on a Jetson.
DEFAULT_MAX_BATCH = 8


@dataclass(frozen=True)
class InputProfile:
    """min/opt/max shapes of one input (``IOptimizationProfile.set_shape``)."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "min": list(self.min),
            "opt": list(self.opt),
            "max": list(self.max),
        }


@dataclass(frozen=True)
class BuildProfile:
    """The optimization profile of every input; ``dynamic`` when any shape varies."""

    inputs: tuple[InputProfile, ...]

    @property
    def dynamic(self) -> bool:
        return any(p.min != p.max for p in self.inputs)

    @property
    def batch(self) -> tuple[int, int, int]:
        """(min, opt, max) batch of the first input."""
        p = self.inputs[0]
        return p.min[0], p.opt[0], p.max[0]

    def to_dict(self) -> dict[str, Any]:
        mn, opt, mx = self.batch
        return {
            "min_batch": mn,
            "opt_batch": opt,
            "max_batch": mx,
            "inputs": [p.to_dict() for p in self.inputs],
        }


def check_batches(min_batch: int | None, opt_batch: int | None, max_batch: int | None) -> None:
    """Each given batch >= 1 and, among those given, min <= opt <= max."""
    named = [("--min-batch", min_batch), ("--opt-batch", opt_batch), ("--max-batch", max_batch)]
    for flag, value in named:
        if value is not None and value < 1:
            raise BadInputError(f"{flag} must be >= 1, got {value}")
    given = [(f, v) for f, v in named if v is not None]
    for (fa, a), (fb, b) in itertools.pairwise(given):
        if a > b:  # type: ignore[operator]
            raise BadInputError(
                f"batch sizes must satisfy --min-batch <= --opt-batch <= --max-batch, "
                f"got {fa} {a} > {fb} {b}"
            )


def _resolve(
    min_batch: int | None, opt_batch: int | None, max_batch: int | None
) -> tuple[int, int, int]:
    """Fill unspecified batches: min 1, max = max(given, DEFAULT_MAX_BATCH), opt = min."""
    mn = min_batch if min_batch is not None else 1
    mx = max_batch if max_batch is not None else max(DEFAULT_MAX_BATCH, mn, opt_batch or 1)
    # the live loop runs batch 1: tune for the smallest batch unless told
    opt = opt_batch if opt_batch is not None else mn
    if not mn <= opt <= mx:
        raise BadInputError(
            f"batch sizes must satisfy --min-batch <= --opt-batch <= --max-batch, "
            f"got {mn} / {opt} / {mx}"
        )
    return mn, opt, mx


def plan_profile(
    inputs: list[tuple[str, tuple[int | None, ...]]],
    spec: ModelSpec | None = None,
    *,
    min_batch: int | None = None,
    opt_batch: int | None = None,
    max_batch: int | None = None,
) -> BuildProfile:
    """Plan the optimization profile for graph ``inputs`` ((name, shape), None = dynamic).

    Args:
        inputs: the ONNX graph inputs (``modelfile.graph_io``), first one the image.
        spec: the model's spec; fills dynamic non-batch axes of its input (``--imgsz``).
        min_batch, opt_batch, max_batch: the batch flags (None: defaults 1 / min / 8).

    Raises:
        BadInputError: bad ordering, a batch flag against a static batch, an unknown axis.

    Example:
        >>> plan_profile([("images", (None, 3, 224, 224))], max_batch=16).batch
        (1, 1, 16)
    """
    check_batches(min_batch, opt_batch, max_batch)
    if not inputs:
        raise BadInputError("the ONNX model has no inputs")
    resolved: tuple[int, int, int] | None = None
    profiles: list[InputProfile] = []
    for name, shape in inputs:
        dims = list(shape)
        if spec is not None and name == spec.input.name and len(dims) == len(spec.input.shape):
            # axis 0 stays the graph's: the spec's batch is not a build decision
            dims = [dims[0]] + [
                g if g is not None else s
                for g, s in zip(dims[1:], spec.input.shape[1:], strict=True)
            ]
        missing = [i for i, d in enumerate(dims) if d is None and i > 0]
        if missing or not dims:
            raise BadInputError(
                f"input '{name}' has dynamic axes {missing} in shape "
                f"{['?' if d is None else d for d in shape]}: pass --imgsz (and --channels) "
                "or export with a fixed image size"
            )
        rest = tuple(int(d) for d in dims[1:])  # type: ignore[arg-type]
        if dims[0] is not None:
            static = int(dims[0])
            for flag, value in (("--min-batch", min_batch), ("--opt-batch", opt_batch),
                                ("--max-batch", max_batch)):  # fmt: skip
                if value is not None and value != static:
                    raise BadInputError(
                        f"input '{name}' has a static batch of {static}, {flag} {value} cannot "
                        "apply: re-export with a dynamic batch (edgetk export --dynamic)"
                    )
            b = (static, static, static)
        else:
            if resolved is None:
                resolved = _resolve(min_batch, opt_batch, max_batch)
            b = resolved
        profiles.append(
            InputProfile(
                name=name,
                min=(b[0], *rest),
                opt=(b[1], *rest),
                max=(b[2], *rest),
            )
        )
    return BuildProfile(inputs=tuple(profiles))
