"""What a build will do, decided before TensorRT is touched: the options, the precision the
ONNX file builds to, and the optimization profile from its input shapes and the batch flags.

A dynamic batch axis becomes ``min..max`` tuned for ``opt`` (``--min/--opt/--max-batch``);
other dynamic axes take the spec's size (``--imgsz``); a static batch is its own profile and
batch flags that contradict it are refused. Pure Python: testable without TensorRT.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.build.precision import PrecisionReport, detect_precision, require_buildable
from toolkit.errors import BadInputError
from toolkit.model.spec import ModelSpec, SpecOverrides

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
    flags = (min_batch, opt_batch, max_batch)
    resolved: tuple[int, int, int] | None = None
    profiles: list[InputProfile] = []
    for name, shape in inputs:
        dims = _sized_dims(name, shape, spec)
        rest = tuple(int(d) for d in dims[1:])  # type: ignore[arg-type]
        if dims[0] is not None:
            b = _static_batch(name, int(dims[0]), flags)
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


def _sized_dims(
    name: str, shape: tuple[int | None, ...], spec: ModelSpec | None
) -> list[int | None]:
    """The input's dims with the spec's sizes in its dynamic non-batch axes (``--imgsz``);
    any left unknown is an error."""
    dims = list(shape)
    if spec is not None and name == spec.input.name and len(dims) == len(spec.input.shape):
        # axis 0 stays the graph's: the spec's batch is not a build decision
        dims = [dims[0]] + [
            g if g is not None else s for g, s in zip(dims[1:], spec.input.shape[1:], strict=True)
        ]
    missing = [i for i, d in enumerate(dims) if d is None and i > 0]
    if missing or not dims:
        raise BadInputError(
            f"input '{name}' has dynamic axes {missing} in shape "
            f"{['?' if d is None else d for d in shape]}: pass --imgsz (and --channels) "
            "or export with a fixed image size"
        )
    return dims


def _static_batch(
    name: str, static: int, flags: tuple[int | None, int | None, int | None]
) -> tuple[int, int, int]:
    """A static batch is its own profile: a batch flag that says otherwise is refused."""
    for flag, value in zip(("--min-batch", "--opt-batch", "--max-batch"), flags, strict=True):
        if value is not None and value != static:
            raise BadInputError(
                f"input '{name}' has a static batch of {static}, {flag} {value} cannot "
                "apply: re-export with a dynamic batch (edgetk export --dynamic)"
            )
    return static, static, static


@dataclass(frozen=True)
class BuildOptions:
    """What ``edgetk build`` was asked for (recorded in the sidecar).

    Attributes:
        min_batch, opt_batch, max_batch: the dynamic-batch profile (None: defaults).
        workspace: the workspace memory pool limit in bytes (None: TensorRT's default).
        timing_cache: a timing cache file, read if present and updated after the build.
        opt_level: ``builder_optimization_level`` 0..5 (3 is TensorRT's default).
        dla_core: build for this DLA core with GPU fallback (Jetson, TensorRT 10.x).
    """

    min_batch: int | None = None
    opt_batch: int | None = None
    max_batch: int | None = None
    workspace: int | None = None
    timing_cache: str | None = None
    opt_level: int = 3
    dla_core: int | None = None

    def validate(self) -> None:
        if not 0 <= self.opt_level <= 5:
            raise BadInputError(f"--opt-level must be 0..5, got {self.opt_level}")
        if self.workspace is not None and self.workspace <= 0:
            raise BadInputError(f"--workspace must be > 0, got {self.workspace} bytes")
        if self.dla_core is not None and self.dla_core < 0:
            raise BadInputError(f"--dla must be a DLA core number >= 0, got {self.dla_core}")


@dataclass(frozen=True)
class BuildPlan:
    """Everything decided before TensorRT is touched (testable without it)."""

    onnx: Path
    spec: ModelSpec
    precision: PrecisionReport
    profile: BuildProfile


def plan_build(
    onnx_path: str | Path,
    options: BuildOptions,
    overrides: SpecOverrides | None = None,
) -> BuildPlan:
    """Read the ONNX file, its spec and precision, refuse what TensorRT cannot build, plan the
    profile. No TensorRT needed.

    Raises:
        BadInputError: missing/corrupt file, a cpu-target QDQ model, bad batch flags.
    """
    from toolkit.model.modelfile import graph_io, load_onnx, spec_from_onnx

    options.validate()
    path = Path(onnx_path)
    if path.suffix.lower() != ".onnx":
        raise BadInputError(f"edgetk build takes an .onnx file, got {path}")
    proto = load_onnx(path, load_weights=False)
    spec = spec_from_onnx(proto)
    if overrides is not None:
        spec = overrides.apply(spec)
    report = detect_precision(path, spec)
    require_buildable(report, path, spec)
    ins, _ = graph_io(proto)
    mn, opt, mx = options.min_batch, options.opt_batch, options.max_batch
    profile = plan_profile(ins, spec, min_batch=mn, opt_batch=opt, max_batch=mx)
    if options.dla_core is not None and report.precision not in ("fp16", "int8"):
        raise BadInputError(
            f"DLA runs fp16 or int8 only and {path.name} is {report.precision}: "
            "quantize it first (edgetk quantize --precision fp16|int8)"
        )
    return BuildPlan(onnx=path, spec=spec.with_changes(precision=report.precision),
                     precision=report, profile=profile)  # fmt: skip
