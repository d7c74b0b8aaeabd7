"""Will TensorRT accept this QDQ graph? The onnx-tensorrt parser's rules, checked offline.

The parser's rules (docs/tensorrt.md):

- symmetric int8 only: every zero point is int8 and 0 (a uint8 zero point fails, even 0);
- weights quantized per output channel: axis 0 for Conv (and Gemm with ``transB=1``), 1 for
  ConvTranspose (and MatMul / Gemm without ``transB``), one scale per channel;
- activations per-tensor (one scale);
- no int32 bias DequantizeLinear ("only activation types allowed as input to this layer").

The check needs no GPU and no TensorRT, so ``edgetk quantize`` runs it on every int8 model and
``edgetk build`` can refuse a file made for the CPU with the reasons.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Which weight axis holds the output channels, per consuming op.
_OUT_AXIS = {"Conv": 0, "ConvTranspose": 1, "MatMul": 1}


@dataclass
class TrtCheck:
    """The result: ``passed``, the broken rules (``problems``) and softer ``notes``."""

    passed: bool
    qdq: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "qdq": self.qdq,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "counts": dict(self.counts),
        }

    def summary(self) -> str:
        """One line for the human output."""
        if not self.qdq:
            return "no QuantizeLinear/DequantizeLinear nodes (not an int8 QDQ model)"
        if self.passed:
            return "passed (symmetric int8, per-channel weights, per-tensor activations)"
        return "FAILED: " + "; ".join(self.problems)


def _constants(graph: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _attr(node: Any, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def _weight_axis(consumer: Any, input_index: int) -> int | None:
    """The output-channel axis of the weight feeding ``consumer`` (None: not a weight input)."""
    op = consumer.op_type
    if op in ("Conv", "ConvTranspose"):
        return _OUT_AXIS[op] if input_index == 1 else None
    if op == "Gemm" and input_index == 1:
        return 0 if _attr(consumer, "transB", 0) else 1
    if op == "MatMul" and input_index == 1:
        return 1
    return None


class _Findings:
    """Broken rules grouped by rule, with a count and an example tensor each."""

    def __init__(self) -> None:
        self.items: dict[str, list[str]] = defaultdict(list)

    def add(self, rule: str, tensor: str) -> None:
        self.items[rule].append(tensor)

    def lines(self) -> list[str]:
        out = []
        for rule, names in self.items.items():
            example = f"e.g. '{names[0]}'"
            out.append(
                f"{len(names)} {rule} ({example})" if len(names) > 1 else f"{rule} ({example})"
            )
        return out


def check_tensorrt(model: Any) -> TrtCheck:
    """Check a QDQ ONNX model (a ModelProto or a path) against TensorRT's QDQ rules.

    Example:
        >>> check_tensorrt("model.cpu-int8.onnx").problems
        ['21 zero points are uint8 (TensorRT takes symmetric int8 only, zero point 0) ...']
    """
    if isinstance(model, (str, Path)):
        from toolkit.model.modelfile import load_onnx

        model = load_onnx(model)
    graph = model.graph
    consts = _constants(graph)
    producers = {out: n for n in graph.node for out in n.output}
    consumers: dict[str, list[tuple[Any, int]]] = defaultdict(list)
    for n in graph.node:
        for i, name in enumerate(n.input):
            consumers[name].append((n, i))

    qnodes = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if not qnodes:
        return TrtCheck(passed=True, qdq=False, notes=["float model: nothing to check"])
    bad, notes = _Findings(), _Findings()
    counts = {"quantize_linear": 0, "dequantize_linear": 0, "per_channel_weights": 0,
              "per_tensor_activations": 0}  # fmt: skip
    for node in qnodes:
        counts["quantize_linear" if node.op_type == "QuantizeLinear" else "dequantize_linear"] += 1
        data = consts.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if data is not None and data.dtype == np.int32:
            bad.add("int32 DequantizeLinear inputs (quantized bias: TensorRT needs float bias)",
                    node.input[0])  # fmt: skip
            continue
        _check_zero_point(node, consts, bad)
        if node.op_type != "DequantizeLinear":
            _check_activation_scale(node, consts, bad, counts)
            continue
        src = producers.get(node.input[0])
        is_weight = data is not None or (src is not None and src.op_type == "Constant")
        if not is_weight:
            _check_activation_scale(node, consts, bad, counts)
            continue
        _check_weight(node, data, consts, consumers, bad, notes, counts)
    problems = bad.lines()
    return TrtCheck(not problems, True, problems, notes.lines(), counts)


def _check_zero_point(node: Any, consts: dict[str, np.ndarray], bad: _Findings) -> None:
    if len(node.input) < 3 or not node.input[2]:
        # No zero point: the quantized type defaults to uint8.
        bad.add("Q/DQ nodes without a zero point (uint8 by default; TensorRT needs int8)",
                node.name or node.output[0])  # fmt: skip
        return
    zp = consts.get(node.input[2])
    if zp is None:
        bad.add("zero points are not constants", node.input[2])
    elif zp.dtype == np.uint8:
        bad.add("zero points are uint8 (TensorRT takes symmetric int8 only, zero point 0)",
                node.input[2])  # fmt: skip
    elif zp.dtype != np.int8:
        bad.add(f"zero points are {zp.dtype} (TensorRT int8 needs int8)", node.input[2])
    elif np.any(zp != 0):
        bad.add("zero points are not 0 (TensorRT takes symmetric quantization only)",
                node.input[2])  # fmt: skip


def _check_activation_scale(
    node: Any, consts: dict[str, np.ndarray], bad: _Findings, counts: dict[str, int]
) -> None:
    scale = consts.get(node.input[1])
    if scale is not None and scale.size > 1:
        bad.add("activations quantized per channel (TensorRT needs one scale per tensor)",
                node.input[0])  # fmt: skip
    else:
        counts["per_tensor_activations"] += 1


def _check_weight(
    node: Any,
    data: np.ndarray | None,
    consts: dict[str, np.ndarray],
    consumers: dict[str, list[tuple[Any, int]]],
    bad: _Findings,
    notes: _Findings,
    counts: dict[str, int],
) -> None:
    scale = consts.get(node.input[1])
    uses = [(c, i) for c, i in consumers.get(node.output[0], []) if _weight_axis(c, i) is not None]
    if scale is None or not uses or data is None:
        return
    consumer, index = uses[0]
    out_axis = _weight_axis(consumer, index)
    assert out_axis is not None
    if scale.size == 1:
        if consumer.op_type in ("Conv", "ConvTranspose"):
            notes.add("weights quantized per tensor (TensorRT accepts it; per channel is "
                      "more accurate)", node.input[0])  # fmt: skip
        return
    axis = _attr(node, "axis", 1)
    axis = axis + data.ndim if axis < 0 else axis
    if axis != out_axis:
        bad.add(f"weight scales on axis {axis} instead of the output-channel axis "
                f"{out_axis} of {consumer.op_type}", node.input[0])  # fmt: skip
    elif scale.size != data.shape[out_axis]:
        bad.add("weight scales whose count differs from the output channels", node.input[0])
    else:
        counts["per_channel_weights"] += 1
