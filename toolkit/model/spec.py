"""ModelSpec: what a model expects and returns, carried inside the model file.

Export writes it into the ONNX file as JSON (``metadata_props["edgetk"]``); every command reads
it back, so ``edgetk predict model.onnx`` needs no flags. Foreign files without it are filled in
from flags (:class:`SpecOverrides`) and defaults.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from toolkit._version import __version__
from toolkit.errors import BadInputError
from toolkit.model.paths import portable_ref, resolve_ref
from toolkit.model.spec_schema import (
    MAX_IMGSZ,
    MAX_METADATA_CHARS,
    OUTPUT_FORMATS,
    SpecFieldError,
    check_spec_data,
    value_kind,
)

Task = Literal["classify", "detect"]
ColorOrder = Literal["rgb", "bgr", "gray"]
ResizeMode = Literal["letterbox", "stretch", "center-crop"]

METADATA_KEY = "edgetk"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputSpec:
    """The model's image input. ``shape`` is NCHW; a dynamic axis is ``None``."""

    name: str = "images"
    shape: tuple[int | None, ...] = (None, 3, 224, 224)
    layout: str = "NCHW"
    color: ColorOrder = "rgb"
    dtype: str = "float32"

    @property
    def channels(self) -> int:
        return int(self.shape[1] or 3)

    @property
    def hw(self) -> tuple[int, int]:
        """(height, width) of the network input."""
        h, w = self.shape[2], self.shape[3]
        if h is None or w is None:
            raise BadInputError(
                f"input '{self.name}' has a dynamic image size {self.shape}: pass --imgsz"
            )
        return int(h), int(w)

    @property
    def batch(self) -> int | None:
        """The static batch size, or None when the batch axis is dynamic."""
        return self.shape[0]


@dataclass(frozen=True)
class PreprocessSpec:
    """How a BGR uint8 frame becomes the input tensor: resize, scale, then (x - mean) / std."""

    resize: ResizeMode = "stretch"
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    pad_value: int = 114
    # center-crop: resize the short side to size / crop_pct, then crop the centre (timm's way).
    crop_pct: float = 0.875


@dataclass(frozen=True)
class OutputSpec:
    """What the model's first output holds."""

    format: str = "logits"
    name: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to feed a model and read its output, without guessing."""

    task: Task = "classify"
    input: InputSpec = field(default_factory=InputSpec)
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    labels: tuple[str, ...] = ()
    output: OutputSpec = field(default_factory=OutputSpec)
    precision: str = "fp32"
    # The PyTorch reference it was exported from. A file in it (``net.py:Net``, ``m.pt``) is
    # relative to the model file's folder, so the pair can move together (see portable_ref).
    source: str | None = None
    # True: the weights are a fresh random initialization (a zoo entry without shipped
    # weights, a hub architecture, no --weights): outputs mean nothing. None: not known
    # (the model's own code may load weights; files written before this field existed).
    random_weights: bool | None = None
    version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict)

    def label(self, class_id: int) -> str:
        """The name of ``class_id``, or its number when the model has no labels."""
        if 0 <= class_id < len(self.labels):
            return self.labels[class_id]
        return str(class_id)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input"]["shape"] = list(self.input.shape)
        d["labels"] = list(self.labels)
        d["preprocess"]["mean"] = list(self.preprocess.mean)
        d["preprocess"]["std"] = list(self.preprocess.std)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        """Build a spec from JSON data, ignoring unknown keys (files from newer versions).

        The data is checked against the schema (:data:`~toolkit.model.spec_schema.SCHEMA`)
        before anything is built, so every command sees only well-typed values.

        Raises:
            BadInputError: ``invalid model metadata: <field>: <why>``.
        """
        if not isinstance(d, dict):
            raise BadInputError(f"invalid model metadata: expected an object, got {value_kind(d)}")
        try:
            check_spec_data(d)
            spec = _build_spec(cls, d)
            spec.validate()
        except SpecFieldError as e:
            raise BadInputError(f"invalid model metadata: {e}") from e
        return spec

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        if len(text) > MAX_METADATA_CHARS:
            raise BadInputError(
                f"invalid model metadata: {METADATA_KEY}: longer than {MAX_METADATA_CHARS:,} "
                "characters"
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise BadInputError(f"invalid model metadata: {METADATA_KEY}: not JSON ({e})") from e
        except RecursionError:  # "[[[[..." deeper than the parser's stack
            raise BadInputError(
                f"invalid model metadata: {METADATA_KEY}: not JSON (nested too deeply)"
            ) from None
        if not isinstance(data, dict):
            raise BadInputError(
                f"invalid model metadata: {METADATA_KEY}: expected a JSON object, "
                f"got {value_kind(data)}"
            )
        return cls.from_dict(data)

    def validate(self) -> None:
        """Raise BadInputError (``<field>: <why>``) when a field holds a value no command can use.

        The same schema as for the JSON read from a file, on this spec's values, plus the
        checks that span fields (mean/std against the channel count).
        """
        check_spec_data(self.to_dict())
        ch = self.input.channels
        for key in ("mean", "std"):
            n = len(getattr(self.preprocess, key))
            if n not in (1, ch):
                raise SpecFieldError(
                    f"preprocess.{key}", f"expected 1 or {ch} values for {ch} channels, got {n}"
                )

    def with_changes(self, **changes: Any) -> ModelSpec:
        spec = replace(self, **changes)
        spec.validate()
        return spec


def _known(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


def _build_spec(cls: type[ModelSpec], d: dict[str, Any]) -> ModelSpec:
    """A spec from data that passed :func:`check_spec_data` (lists become tuples)."""
    inp = _known(InputSpec, d.get("input", {}))
    if "shape" in inp:
        inp["shape"] = tuple(inp["shape"])
    pre = _known(PreprocessSpec, d.get("preprocess", {}))
    for key in ("mean", "std"):
        if key in pre:
            pre[key] = tuple(float(v) for v in pre[key])
    top = _known(cls, d)
    top["input"] = InputSpec(**inp)
    top["preprocess"] = PreprocessSpec(**pre)
    top["output"] = OutputSpec(**_known(OutputSpec, d.get("output", {})))
    top["labels"] = tuple(d.get("labels", ()))
    top["extra"] = dict(d.get("extra") or {})
    return cls(**top)


def portable_spec(
    spec: ModelSpec, folder: str | Path, *, read_from: str | Path | None = None
) -> ModelSpec:
    """``spec`` with ``source`` and ``extra["weights"]`` relative to ``folder`` (see :func:`~toolkit.model.paths.portable_ref`).

    ``read_from``: the folder of the model file ``spec`` was read from (its paths are relative
    to it); None: they are as the user typed them (relative to the working folder).
    """

    def move(ref: str, any_file: bool) -> str:
        if read_from is not None:
            ref = resolve_ref(ref, read_from, any_file=any_file)
        return portable_ref(ref, folder, any_file=any_file)

    changes: dict[str, Any] = {}
    if spec.source:
        changes["source"] = move(spec.source, False)
    weights = spec.extra.get("weights")
    if isinstance(weights, str) and weights:
        changes["extra"] = {**spec.extra, "weights": move(weights, True)}
    return spec.with_changes(**changes) if changes else spec


def class_count(spec: ModelSpec, output_shape: tuple[int | None, ...]) -> int | None:
    """The classes the model's output holds, when its shape tells (else None).

    Classifier logits/probs ``[N, C]`` (or ``[N, C, 1, 1]``); ``yolov8`` ``[N, 4 + C, A]``;
    ``yolov5`` ``[N, A, 5 + C]``. ``yolo-nms`` rows carry a class id, not a count.
    """
    shape, fmt = tuple(output_shape), spec.output.format
    if fmt in ("logits", "probs"):
        if len(shape) == 2 or (len(shape) == 4 and shape[2:] == (1, 1)):
            return shape[1]
        return None
    if fmt == "yolov8" and len(shape) == 3 and shape[1] is not None and shape[1] > 4:
        return shape[1] - 4
    if fmt == "yolov5" and len(shape) == 3 and shape[2] is not None and shape[2] > 5:
        return shape[2] - 5
    return None


def check_label_count(
    spec: ModelSpec, output_shape: tuple[int | None, ...], field_name: str
) -> None:
    """Refuse labels that do not fit the output: they would name the wrong classes.

    Raises:
        SpecFieldError: ``<field_name>: N labels for a model with C classes ...``.
    """
    n = class_count(spec, output_shape)
    if spec.labels and n is not None and n != len(spec.labels):
        shape = ", ".join("N" if d is None else str(d) for d in output_shape)
        raise SpecFieldError(
            field_name,
            f"{len(spec.labels)} labels for a model with {n} classes "
            f"(its {spec.output.format} output is [{shape}])",
        )


@dataclass(frozen=True)
class SpecOverrides:
    """Values given on the command line; each one that is set wins over the model's own."""

    task: str | None = None
    labels: tuple[str, ...] | None = None
    imgsz: tuple[int, int] | None = None
    channels: int | None = None
    color: str | None = None
    scale: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    resize: str | None = None
    output_format: str | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def apply(self, spec: ModelSpec) -> ModelSpec:
        """Return ``spec`` with every set override applied, validated."""
        inp, pre, out = spec.input, spec.preprocess, spec.output
        shape = list(inp.shape)
        if self.imgsz is not None:
            shape[2], shape[3] = self.imgsz
        if self.channels is not None:
            shape[1] = self.channels
        color = self.color or inp.color
        if self.channels == 1 and self.color is None:
            color = "gray"
        inp = replace(inp, shape=tuple(shape), color=color)
        pre = replace(
            pre,
            scale=pre.scale if self.scale is None else self.scale,
            mean=pre.mean if self.mean is None else self.mean,
            std=pre.std if self.std is None else self.std,
            resize=self.resize or pre.resize,
        )
        if self.output_format is not None:
            if self.output_format not in OUTPUT_FORMATS:
                raise BadInputError(
                    f"unknown output format '{self.output_format}' "
                    f"(expected one of {', '.join(OUTPUT_FORMATS)})"
                )
            out = replace(out, format=self.output_format)
        # Channel-count changes must carry matching mean/std lengths.
        if len(pre.mean) not in (1, inp.channels):
            pre = replace(pre, mean=(pre.mean[0],) * inp.channels)
        if len(pre.std) not in (1, inp.channels):
            pre = replace(pre, std=(pre.std[0],) * inp.channels)
        return spec.with_changes(
            task=self.task or spec.task,
            input=inp,
            preprocess=pre,
            output=out,
            labels=spec.labels if self.labels is None else self.labels,
        )


def parse_labels(value: str | None) -> tuple[str, ...] | None:
    """``--labels``: a file with one label per line, or a comma-separated list."""
    if value is None:
        return None
    p = Path(value)
    if p.suffix in {".txt", ".names", ".labels"} or p.is_file():
        if not p.is_file():
            raise BadInputError(f"labels file not found: {value}")
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
        labels = tuple(ln for ln in lines if ln)
    else:
        labels = tuple(s.strip() for s in value.split(",") if s.strip())
    if not labels:
        raise BadInputError(f"no labels in '{value}'")
    return labels


def parse_imgsz(value: str | int | None) -> tuple[int, int] | None:
    """``--imgsz``: ``224`` or ``h,w``, each side 1..:data:`MAX_IMGSZ`."""
    if value is None:
        return None
    text = str(value)
    parts = [p.strip() for p in text.replace("x", ",").split(",") if p.strip()]
    digits = all(re.fullmatch(r"[+-]?[0-9]+", p) for p in parts)
    if not digits or len(parts) not in (1, 2):
        raise BadInputError(f"--imgsz expects an int or h,w, got '{text[:40]}'")
    # A number too long for int() (Python refuses 4300+ digits) is just too large.
    nums = [int(p) if len(p) < 20 else MAX_IMGSZ + 1 for p in parts]
    if len(nums) == 1:
        nums = nums * 2
    if not all(1 <= n <= MAX_IMGSZ for n in nums):
        # An image side past this is a typo, not a camera: 100000x100000 float32 is 447 GiB.
        raise BadInputError(f"--imgsz must be 1..{MAX_IMGSZ} pixels per side, got '{text[:40]}'")
    return nums[0], nums[1]


def parse_floats(value: str | None, flag: str) -> tuple[float, ...] | None:
    """A comma list of floats (``--mean``, ``--std``)."""
    if value is None:
        return None
    try:
        nums = tuple(float(p) for p in value.split(",") if p.strip())
    except ValueError:
        raise BadInputError(f"{flag} expects comma-separated numbers, got '{value}'") from None
    if not nums:
        raise BadInputError(f"{flag} expects comma-separated numbers, got '{value}'")
    return nums


def parse_scale(value: str | None) -> float | None:
    """``--scale``: a float or a fraction such as ``1/255``."""
    if value is None:
        return None
    try:
        if "/" in value:
            num, den = value.split("/", 1)
            return float(num) / float(den)
        return float(value)
    except (ValueError, ZeroDivisionError):
        raise BadInputError(f"--scale expects a number or a fraction, got '{value}'") from None
