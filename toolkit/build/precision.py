"""The precision an ONNX file will really build to, read from the file itself.

TensorRT 11 removed the precision flags and the INT8 calibrators, and a strongly typed network
takes every type from the graph: the precision lives in the ONNX file (docs/
tensorrt.md). So the builder never *chooses* a precision; it reads it here, records it in the
sidecar, and refuses a QDQ model that TensorRT cannot take:

- ``fp32``: float initializers (TensorRT may still use TF32 kernels);
- ``fp16``: mostly float16 initializers / casts (``edgetk quantize --precision fp16``,
  onnxconverter-common's ``convert_float_to_float16``);
- ``int8``: QuantizeLinear/DequantizeLinear nodes. Symmetric int8 zero points are the
  ``tensorrt`` target; uint8 zero points are the ``cpu`` target (ONNX Runtime's fast CPU
  layout), which TensorRT refuses. The quantizer's declaration
  (``spec.extra["quantization"]["target"]``) wins when present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError
from toolkit.model.spec import ModelSpec

_QDQ = ("QuantizeLinear", "DequantizeLinear")
# onnx.TensorProto data types (numbers, so that this module needs no onnx import to load).
_FLOAT, _UINT8, _INT8, _FLOAT16, _BFLOAT16 = 1, 2, 3, 10, 16


@dataclass(frozen=True)
class PrecisionReport:
    """What an ONNX file holds and whether TensorRT can build it.

    Attributes:
        precision: ``fp32``, ``fp16``, ``bf16`` or ``int8`` (what the engine will compute in).
        target: for int8, ``tensorrt`` or ``cpu`` (None for float models).
        declared_target: the quantizer's ``spec.extra["quantization"]["target"]``, if any.
        problems: why TensorRT would refuse the file (empty: buildable).
        details: counts (Q/DQ nodes, float16/float32 weights, zero point types).
    """

    precision: str
    target: str | None = None
    declared_target: str | None = None
    problems: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def buildable(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "target": self.target,
            "declared_target": self.declared_target,
            "problems": list(self.problems),
            "details": dict(self.details),
        }


def _numel(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _float_counts(graph: Any) -> dict[str, int]:
    """Elements of float32 / float16 / bfloat16 weights, and Casts to 16-bit floats."""
    counts = {"fp32_weights": 0, "fp16_weights": 0, "bf16_weights": 0, "casts_to_fp16": 0}
    key = {_FLOAT: "fp32_weights", _FLOAT16: "fp16_weights", _BFLOAT16: "bf16_weights"}
    tensors = list(graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Constant" and attr.name == "value":
                tensors.append(attr.t)
            if node.op_type == "Cast" and attr.name == "to" and attr.i in (_FLOAT16, _BFLOAT16):
                counts["casts_to_fp16"] += 1
    for t in tensors:
        if t.data_type in key:
            counts[key[t.data_type]] += _numel(t.dims)
    return counts


def _zero_point_types(graph: Any) -> dict[str, int]:
    """How many Q/DQ zero points are int8, uint8, other, or absent (absent = uint8 by ONNX)."""
    types = {t.name: t.data_type for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = attr.t.data_type
    out = {"int8": 0, "uint8": 0, "other": 0, "absent": 0}
    for node in graph.node:
        if node.op_type not in _QDQ:
            continue
        if len(node.input) < 3 or not node.input[2]:
            out["absent"] += 1
            continue
        dtype = types.get(node.input[2])
        out["int8" if dtype == _INT8 else "uint8" if dtype == _UINT8 else "other"] += 1
    return out


def declared_target(spec: ModelSpec | None) -> str | None:
    """``spec.extra["quantization"]["target"]`` (the shared quantization convention)."""
    if spec is None:
        return None
    quant = spec.extra.get("quantization") if isinstance(spec.extra, dict) else None
    target = quant.get("target") if isinstance(quant, dict) else None
    return str(target) if target else None


def _tensorrt_problems(path: Path | None, model: Any) -> list[str]:
    """The onnx-tensorrt QDQ rules, from the quantize module's offline check."""
    from toolkit.quantize.trtcheck import check_tensorrt

    if path is not None:
        return list(check_tensorrt(path).problems)  # loads the weights: zero points, scales
    return list(check_tensorrt(model).problems)


def detect_precision(model: Any, spec: ModelSpec | None = None) -> PrecisionReport:
    """Read the precision (and, for int8, the target) of an ONNX file or ModelProto.

    Args:
        model: a path to an ``.onnx`` file, or a loaded ``onnx.ModelProto``.
        spec: the file's spec, for the quantizer's declared target (read from the file
            when None and ``model`` is a path).

    Example:
        >>> detect_precision("model.cpu-int8.onnx").to_dict()["target"]
        'cpu'
    """
    path: Path | None = None
    if isinstance(model, (str, Path)):
        from toolkit.model.modelfile import load_onnx, spec_from_onnx

        path = Path(model)
        model = load_onnx(path, load_weights=False)  # dtypes and dims only: cheap
        if spec is None:
            try:
                spec = spec_from_onnx(model)
            except BadInputError:
                spec = None
    graph = model.graph
    counts = _float_counts(graph)
    qdq = sum(1 for n in graph.node if n.op_type in _QDQ)
    declared = declared_target(spec)
    details: dict[str, Any] = {"qdq_nodes": qdq, **counts}
    if qdq:
        zps = _zero_point_types(graph)
        details["zero_points"] = zps
        graph_target = "cpu" if zps["uint8"] or zps["absent"] else "tensorrt"
        target = declared or graph_target
        problems: list[str] = []
        if declared == "cpu":
            problems.append(
                "it was quantized for the cpu target (uint8 activations, the fast ONNX Runtime "
                "CPU layout)"
            )
        problems += _tensorrt_problems(path, model)
        if counts["fp16_weights"] > counts["fp32_weights"]:
            details["high_precision"] = "fp16"
        return PrecisionReport("int8", target, declared, tuple(problems), details)
    if counts["bf16_weights"] > max(counts["fp32_weights"], counts["fp16_weights"]):
        precision = "bf16"
    elif counts["fp16_weights"] > counts["fp32_weights"] or (
        counts["casts_to_fp16"] and counts["fp16_weights"]
    ):
        precision = "fp16"
    else:
        precision = "fp32"
    return PrecisionReport(precision, None, declared, (), details)


def require_buildable(
    report: PrecisionReport, model_path: str | Path, spec: ModelSpec | None
) -> None:
    """Refuse, in one line with the reason, a model TensorRT cannot build.

    Raises:
        BadInputError: an int8 QDQ model made for the cpu target, or breaking TensorRT's rules.
    """
    if report.buildable:
        return
    name = Path(model_path).name
    quant = (spec.extra.get("quantization") if spec is not None else None) or {}
    source = quant.get("source_model") if isinstance(quant, dict) else None
    # The zero-point rule is the one a cpu-target file breaks: name it first.
    problems = sorted(report.problems, key=lambda p: "zero point" not in p)
    first = problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
    what = f"made for the {report.target} target" if report.target else "TensorRT cannot take"
    raise BadInputError(
        f"{name} is an int8 QDQ model {what}; TensorRT cannot build it: {first}; quantize "
        f"for TensorRT: edgetk quantize {source or 'model.onnx'} --precision int8 "
        "--target tensorrt"
    )
