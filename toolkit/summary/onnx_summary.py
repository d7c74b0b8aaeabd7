"""Per-node summary of an ONNX graph: shapes from ONNX shape inference at batch 1.

Parameters are the weight tensors (initializers) a node reads, each counted once: floating
point and int8/uint8 (quantized) tensors of rank >= 1 and int32 quantized biases, less what
PyTorch keeps as buffers or constants (BatchNorm running mean/var, quantization scales and zero
points, shape and index tensors, scalars). MACs are counted for Conv, ConvTranspose, Gemm and
MatMul (and their integer / QLinear forms).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError
from toolkit.summary.types import LayerInfo, ModelSummary, Shape

# Inputs that hold statistics or quantization constants, not learned weights.
_NOT_PARAMS: dict[str, set[int]] = {
    "BatchNormalization": {3, 4},
    "QuantizeLinear": {1, 2},
    "DequantizeLinear": {1, 2},
    "QLinearConv": {1, 2, 4, 5, 6, 7},
    "QLinearMatMul": {1, 2, 4, 5, 6, 7},
    "ConvInteger": {2, 3},
    "MatMulInteger": {2, 3},
}
# Weight input index for the MAC count of each convolution-like op.
_CONV_WEIGHT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}
_MATMUL_OPS = {"MatMul", "MatMulInteger", "QLinearMatMul"}


def summarize_onnx(
    model: str | Path | Any,
    *,
    imgsz: tuple[int, int] | None = None,
    channels: int | None = None,
    model_name: str | None = None,
) -> ModelSummary:
    """Tabulate every node of an ONNX model with its output shape, parameters and MACs.

    The batch axis is fixed to 1; a dynamic image size is taken from ``imgsz`` /
    ``channels``, else from the edgetk spec stored in the file.

    Args:
        model: A path to an ``.onnx`` file, or a loaded ``ModelProto`` (not modified).
        imgsz: (height, width) for a 4-D input with a dynamic size.
        channels: Channels for a 4-D input with a dynamic channel axis.
        model_name: Shown as the summary's ``model`` (default: the file name).

    Raises:
        BadInputError: unreadable file, or an input size that is unknown or conflicts.
    """
    proto, name = _load(model, model_name)
    inits = {i.name: i for i in proto.graph.initializer}
    fallback = _spec_shape(proto)
    input_shape: Shape = ()
    for i, value in enumerate(v for v in proto.graph.input if v.name not in inits):
        dims = _fix_input(value, imgsz, channels, fallback)
        if i == 0:
            input_shape = dims
    graph, shapes = _infer_shapes(proto, name)
    rows = _node_rows(graph, inits, shapes)
    total = sum(r.params for r in rows)
    return ModelSummary(
        model=name,
        input_shape=input_shape,
        layers=tuple(rows),
        total_params=total,
        trainable_params=total,
        total_macs=sum(r.macs for r in rows),
        framework="onnx",
    )


def _load(model: str | Path | Any, model_name: str | None) -> tuple[Any, str]:
    """A copy of the model to change (functions inlined, weights not loaded) and its name."""
    import onnx

    from toolkit.model.modelfile import load_onnx

    if isinstance(model, (str, Path)):
        # Weights are not needed: initializer shapes are in the graph without their data.
        proto = load_onnx(model, load_weights=False)
        name = model_name or Path(model).name
    else:
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
        name = model_name or (proto.graph.name or "model")
    if proto.functions:
        proto = onnx.inliner.inline_local_functions(proto)
    return proto, name


def _infer_shapes(proto: Any, name: str) -> tuple[Any, dict[str, Shape]]:
    """The shape-inferred graph (inputs fixed first) and the shape of every tensor in it."""
    import onnx

    graph = proto.graph
    # Stale intermediate shapes (symbolic batch) would survive inference: drop them.
    del graph.value_info[:]
    for out in graph.output:
        out.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    except (onnx.shape_inference.InferenceError, ValueError) as e:
        raise BadInputError(f"ONNX shape inference failed for {name}: {e}") from e
    shapes: dict[str, Shape] = {}
    g = inferred.graph
    for v in [*g.input, *g.value_info, *g.output]:
        if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape"):
            shapes[v.name] = _dims(v)
    for init in g.initializer:
        shapes[init.name] = tuple(int(d) for d in init.dims)
    return g, shapes


def _node_rows(graph: Any, inits: dict[str, Any], shapes: dict[str, Shape]) -> list[LayerInfo]:
    """One row per node: output shape, the weights it reads first, its MACs."""
    counted: set[str] = set()
    rows: list[LayerInfo] = []
    for idx, node in enumerate(graph.node):
        params = 0
        skip = _NOT_PARAMS.get(node.op_type, set())
        for j, inp in enumerate(node.input):
            if (
                inp in inits
                and inp not in counted
                and j not in skip
                and _is_weight(inits[inp], node.op_type, j)
            ):
                counted.add(inp)
                params += math.prod(inits[inp].dims)
        outs = [shapes.get(o, ()) for o in node.output if o]
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        rows.append(
            LayerInfo(
                name=node.name or f"{node.op_type}_{idx}",
                op=op,
                output_shape=outs[0] if len(outs) == 1 else tuple(outs),
                params=params,
                macs=_node_macs(node, shapes),
            )
        )
    return rows


def _dims(value: Any) -> Shape:
    dims = value.type.tensor_type.shape.dim
    return tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in dims)


def _spec_shape(proto: Any) -> Shape | None:
    """The input shape stored in the file's edgetk spec, if it has one.

    The spec is read as every command reads it (schema, labels against the graph): a file
    with invalid metadata is refused here too, not summarized on half-read values.
    """
    from toolkit.model.modelfile import read_metadata, spec_from_onnx
    from toolkit.model.spec import METADATA_KEY

    if METADATA_KEY not in read_metadata(proto):
        return None  # foreign files: any graph can be summarized, image model or not
    return spec_from_onnx(proto).input.shape


def _fix_input(
    value: Any,
    imgsz: tuple[int, int] | None,
    channels: int | None,
    fallback: Shape | None,
) -> Shape:
    """Make every dim of a graph input concrete (batch 1) and return the shape."""
    dims = value.type.tensor_type.shape.dim
    asked: dict[int, int] = {}  # from the caller: must agree with fixed axes
    filler: dict[int, int] = {0: 1}  # fills dynamic axes only
    if len(dims) == 4:
        if fallback is not None and len(fallback) == 4:
            filler.update({k: int(v) for k, v in enumerate(fallback) if k > 0 and v is not None})
        if channels is not None:
            asked[1] = channels
        if imgsz is not None:
            asked[2], asked[3] = imgsz
    out: list[int] = []
    for k, d in enumerate(dims):
        if d.HasField("dim_value") and d.dim_value > 0:
            if k in asked and asked[k] != d.dim_value:
                raise BadInputError(
                    f"input '{value.name}' has a fixed size {d.dim_value} on axis {k}, "
                    f"not {asked[k]} (the ONNX graph's size cannot be changed)"
                )
        else:
            size = asked.get(k, filler.get(k))
            if size is None:
                raise BadInputError(
                    f"input '{value.name}' has a dynamic axis {k}: pass --imgsz/--channels"
                )
            d.Clear()
            d.dim_value = size
        out.append(int(d.dim_value))
    return tuple(out)


def _is_weight(init: Any, op: str, index: int) -> bool:
    """A learned tensor: float, or quantized (int8/uint8; int32 biases behind a dequantize)."""
    from onnx import TensorProto

    if len(init.dims) == 0:  # scalars are constants (clip bounds, scales), not weights
        return False
    if init.data_type in (
        TensorProto.FLOAT,
        TensorProto.FLOAT16,
        TensorProto.BFLOAT16,
        TensorProto.DOUBLE,
        TensorProto.INT8,
        TensorProto.UINT8,
    ):
        return True
    # int32/int64 tensors are shapes and indices, except quantized biases.
    quantized_bias = (op == "DequantizeLinear" and index == 0) or (
        op == "QLinearConv" and index == 8
    )
    return init.data_type == TensorProto.INT32 and quantized_bias


def _known(shape: Shape | None) -> bool:
    return shape is not None and len(shape) > 0 and all(d is not None for d in shape)


def _node_macs(node: Any, shapes: dict[str, Shape]) -> int:
    op = node.op_type
    out = shapes.get(node.output[0]) if node.output else None
    if op in _CONV_WEIGHT or op == "ConvTranspose":
        w_idx = _CONV_WEIGHT.get(op, 1)
        w = shapes.get(node.input[w_idx]) if len(node.input) > w_idx else None
        if not _known(w):
            return 0
        if op == "ConvTranspose":
            x = shapes.get(node.input[0])
            return math.prod(x) * math.prod(w[1:]) if _known(x) else 0  # type: ignore[arg-type,index]
        return math.prod(out) * math.prod(w[1:]) if _known(out) else 0  # type: ignore[arg-type,index]
    if op == "Gemm" or op in _MATMUL_OPS:
        a = shapes.get(node.input[0])
        if not _known(out) or not _known(a):
            return 0
        trans_a = any(at.name == "transA" and at.i for at in node.attribute)
        k = a[0] if op == "Gemm" and trans_a else a[-1]  # type: ignore[index]
        return math.prod(out) * int(k)  # type: ignore[arg-type]
    return 0
