"""Checks and edits on an exported ONNX graph: names, batch axis, opset, validity, simplify.

torch.onnx.export (2.13) can quietly give something other than what was asked (see
docs/onnx-runtime.md): a fixed batch when a dynamic one was requested, a higher opset than the
one requested. Each check here turns such a surprise into a clear error.
"""

from __future__ import annotations

import logging
from typing import Any

from toolkit.errors import ToolkitError

log = logging.getLogger(__name__)


class ExportError(ToolkitError):
    """The exporter failed, or produced a graph that is not what was asked for."""


def default_opset(model: Any) -> int:
    """The version of the default ONNX domain the graph imports."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ExportError("the exported model imports no default ONNX opset")


def check_opset(model: Any, requested: int | None, log_lines: list[str]) -> int:
    """Raise when the exporter ignored ``requested`` (its down-conversion only logs)."""
    got = default_opset(model)
    if requested is not None and got != requested:
        why = next((ln for ln in reversed(log_lines) if "convert" in ln.lower()), "")
        detail = f" ({why.strip().splitlines()[0]})" if why else ""
        raise ExportError(
            f"--opset {requested} was requested but the exporter produced opset {got}"
            f"{detail}; use --opset {got} or newer"
        )
    return got


def rename_value(model: Any, old: str, new: str) -> None:
    """Rename graph value ``old`` to ``new`` everywhere it is used, subgraphs included."""
    if old == new:
        return
    graph = model.graph
    taken = {v.name for v in (*graph.input, *graph.output, *graph.value_info)}
    taken |= {i.name for i in graph.initializer}
    taken |= {o for n in graph.node for o in n.output}
    if new in taken:
        raise ExportError(f"cannot rename '{old}' to '{new}': the graph already has '{new}'")
    _rename_in_graph(graph, old, new)


def _rename_in_graph(graph: Any, old: str, new: str) -> None:
    import onnx

    for seq in (graph.input, graph.output, graph.value_info, graph.initializer):
        for v in seq:
            if v.name == old:
                v.name = new
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
        # If/Loop/Scan bodies may read outer values by name.
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                _rename_in_graph(attr.g, old, new)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    _rename_in_graph(g, old, new)


def name_io(model: Any, input_name: str, output_name: str) -> None:
    """Name the image input ``input_name`` and the outputs ``output_name``, ``output1``..."""
    from toolkit.model.modelfile import graph_io

    ins, outs = graph_io(model)
    if len(ins) != 1:
        raise ExportError(f"expected one image input, the graph has {len(ins)}")
    rename_value(model, ins[0][0], input_name)
    for i, (name, _) in enumerate(outs):
        rename_value(model, name, output_name if i == 0 else f"output{i}")


def check_batch_axis(model: Any, dynamic: bool, batch: int | None) -> None:
    """The input's batch axis must be symbolic when dynamic was asked, else equal ``batch``."""
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    symbolic = dim.HasField("dim_param") or not dim.HasField("dim_value")
    if dynamic and not symbolic:
        raise ExportError(
            f"the model fixes its batch size to {dim.dim_value}: torch specialized the dynamic "
            "batch axis (something in forward() depends on the batch size, such as "
            f"x.view(1, -1)); export a static batch with --batch {dim.dim_value}"
        )
    if not dynamic and (symbolic or dim.dim_value != batch):
        raise ExportError(f"asked for batch {batch}, the exported input has batch axis {dim}")


def check_graph(model: Any) -> Any:
    """Run the ONNX checker and shape inference; return the model with inferred shapes."""
    import onnx

    try:
        onnx.checker.check_model(model)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        first = str(e).strip().splitlines()[0]
        raise ExportError(f"the exported graph does not pass the ONNX checker: {first}") from e
    return inferred


def simplify(model: Any) -> Any:
    """onnxslim's graph simplification (constant folding, dead code, fusions)."""
    import onnxslim

    try:
        return onnxslim.slim(model)
    except Exception as e:  # onnxslim raises assorted errors on graphs it cannot handle
        raise ExportError(
            f"onnxslim failed: {type(e).__name__}: {e}; retry with --no-simplify"
        ) from e


def output_shapes(model: Any) -> dict[str, list[int | None]]:
    from toolkit.model.modelfile import graph_io

    return {name: list(shape) for name, shape in graph_io(model)[1]}


def check_hw_axes(model: Any) -> None:
    """With ``--dynamic-hw`` the input's height and width must be symbolic; they are named
    ``height`` and ``width`` (the exporter writes expressions such as ``32*height_blocks``)."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    fixed = [d.dim_value for d in dims[2:4] if d.HasField("dim_value")]
    if len(dims) != 4 or fixed:
        raise ExportError(
            "the model fixes its input height and width: torch specialized the dynamic axes "
            "(something in forward() depends on the image size, such as a Linear layer after "
            "a flatten); export without --dynamic-hw"
        )
    dims[2].dim_param, dims[3].dim_param = "height", "width"
