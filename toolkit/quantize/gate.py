"""The accuracy gate's fallback: find the layers int8 hurts most and keep them in float.

Sensitivity is measured where it matters, at the model's output: for each candidate layer the
model is re-quantized with only that layer kept in float (the calibration ranges are cached, so
this costs no new calibration), run on calibration samples, and its output error against the
float model is compared with the all-int8 error. The layers whose float version removes the most
error come first; they are then kept in float one more at a time, each step measured with the
gate's metric, until the drop is within the limit or ``max_fallback`` layers are float. The
metric is the accuracy on a labelled set, or, with no labels, the agreement with the float
model on held-out calibration samples (top-1 agreement, or for a detector the mean box F1
over IoU 0.5:0.95).

A "layer" is a compute node together with the chain of pass-through nodes feeding it (Relu,
MaxPool, Reshape...): ONNX Runtime quantizes the tensors *into* a node, and in the symmetric
(TensorRT) layout a Relu keeps its own Q/DQ pair, so keeping a Conv's input in float means
excluding that chain too.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolkit.evaluate.agreement import ort_outputs, output_error

log = logging.getLogger(__name__)

# Ops that pass a quantized tensor through (same scale in and out); they join the unit of the
# compute node they feed.
PASSTHROUGH = frozenset(
    {"Relu", "Clip", "MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze",
     "Resize", "Identity", "LeakyRelu", "Gather", "Slice", "Split"}
)  # fmt: skip
# Nodes that never carry int8 data themselves.
_SKIP = frozenset({"QuantizeLinear", "DequantizeLinear", "Constant", "Shape", "Cast"})
# Ops whose first output is not float: not exposed for the prescreen.
_NOT_FLOAT = frozenset(
    {"ArgMax", "ArgMin", "NonMaxSuppression", "NonZero", "Size", "Equal", "Greater", "Less",
     "And", "Or", "Not", "Where"}
)  # fmt: skip


@dataclass
class Candidate:
    """A layer the gate may keep in float, with its output error when it alone is float."""

    nodes: list[str]
    error: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": list(self.nodes), "error_when_float": round(self.error, 6)}


@dataclass
class GateResult:
    """What the fallback did: the accepted model (or the last try), and every step."""

    passed: bool
    model: Any
    metric: dict[str, Any]
    drop: float
    kept_float: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    ranking: list[Candidate] = field(default_factory=list)


def layer_units(model: Any) -> list[list[str]]:
    """Candidate layers of a (float, prepared) graph: compute node + pass-through feeders."""
    nodes = [n for n in model.graph.node if n.op_type not in _SKIP and n.name]
    producer = {out: n for n in model.graph.node for out in n.output}
    consumers: dict[str, int] = defaultdict(int)
    for n in model.graph.node:
        for name in n.input:
            consumers[name] += 1
    units = []
    for node in nodes:
        if node.op_type in PASSTHROUGH:
            continue
        unit = [node.name]
        src = producer.get(node.input[0]) if node.input else None
        # Walk up single-consumer pass-through chains: their Q/DQ feed only this node.
        while (
            src is not None
            and src.op_type in PASSTHROUGH
            and src.name
            and all(consumers[o] == 1 for o in src.output)
        ):
            unit.append(src.name)
            src = producer.get(src.input[0]) if src.input else None
        units.append(unit)
    return units


def prescreen(
    float_model: Any,
    int8_model: Any,
    units: list[list[str]],
    samples: np.ndarray,
    input_name: str,
    keep: int,
    *,
    emulate: bool = False,
) -> list[list[str]]:
    """The ``keep`` units whose head node adds the most error, from one run of each model.

    Every unit head's output is exposed in both graphs (same node names; the int8 graph's
    tensor may be renamed); a unit's added error is its output error minus the largest error
    of the unit outputs feeding it. Leave-one-out ranking then runs on these only, so a big
    graph costs ``keep`` re-quantizations, not one per layer. ``emulate``: the int8 model runs
    with Q/DQ as float (:func:`toolkit.evaluate.agreement.ort_outputs`).

    Kept over ONNX Runtime's ``qdq_loss_debug`` (per-tensor SQNR before vs after its Q/DQ):
    at the same cost, this ranking finds the layer that hurts the output where an outlier
    channel makes SQNR look fine (measured: docs/benchmarks.md, issue 11).
    """
    if len(units) <= keep:
        return units
    heads = [u[0] for u in units]
    f_out = _expose(float_model, heads)
    q_out = _expose(int8_model, heads)
    names = [h for h in heads if h in f_out and h in q_out]
    ref = _run_all(float_model, [f_out[h] for h in names], samples, input_name)
    got = _run_all(int8_model, [q_out[h] for h in names], samples, input_name, emulate)
    err = {h: output_error(r, g) for h, r, g in zip(names, ref, got, strict=True)}
    producer = {o: n for n in float_model.graph.node for o in n.output}
    scored = []
    for unit in units:
        head = unit[0]
        if head not in err:
            continue
        node = next(n for n in float_model.graph.node if n.name == head)
        upstream = [err.get(_feeding_head(producer, t), 0.0) for t in node.input if t]
        scored.append((err[head] - max(upstream, default=0.0), unit))
    scored.sort(key=lambda x: -x[0])
    return [u for _, u in scored[:keep]]


def _feeding_head(producer: dict[str, Any], tensor: str) -> str:
    src = producer.get(tensor)
    while src is not None and (src.op_type in PASSTHROUGH or src.op_type in _SKIP) and src.input:
        src = producer.get(src.input[0])
    return src.name if src is not None else ""


def _expose(model: Any, heads: list[str]) -> dict[str, str]:
    """Add each head node's first output to ``model``'s graph outputs; head -> tensor name."""
    from onnx import TensorProto, helper

    present = {o.name for o in model.graph.output}
    found = {}
    for node in model.graph.node:
        if node.name in heads and node.output and node.op_type not in _NOT_FLOAT:
            found[node.name] = node.output[0]
            if node.output[0] not in present:
                model.graph.output.append(
                    helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)
                )
                present.add(node.output[0])
    return found


def _run_all(
    model: Any, names: list[str], samples: np.ndarray, input_name: str, emulate: bool = False
) -> list[np.ndarray]:
    from toolkit.backends.ort_options import cpu_inference_session

    sess = cpu_inference_session(model, emulate=emulate)
    outs = [sess.run(names, {input_name: samples[i : i + 1]}) for i in range(len(samples))]
    return [np.concatenate([o[k] for o in outs]) for k in range(len(names))]


def rank_layers(
    quantize: Callable[[list[str]], Any],
    units: list[list[str]],
    samples: np.ndarray,
    reference: np.ndarray,
    input_name: str,
    *,
    progress: Callable[[int, int], None] | None = None,
    emulate: bool = False,
) -> tuple[float, list[Candidate]]:
    """(all-int8 output error, candidates sorted most-helpful-first).

    Args:
        quantize: makes the int8 ModelProto with the given nodes kept float.
        units: candidate layers (:func:`layer_units`).
        samples: inputs to measure on; ``reference`` are the float model's outputs for them.
        emulate: run the int8 models with Q/DQ as float (the target's int32 semantics).
    """
    base = output_error(reference, ort_outputs(quantize([]), samples, input_name,
                                               emulate=emulate))  # fmt: skip
    ranked = []
    for i, unit in enumerate(units):
        out = ort_outputs(quantize(unit), samples, input_name, emulate=emulate)
        ranked.append(Candidate(unit, output_error(reference, out)))
        if progress is not None:
            progress(i + 1, len(units))
    ranked.sort(key=lambda c: c.error)
    return base, ranked


def fallback(
    quantize: Callable[[list[str]], Any],
    measure: Callable[[Any], dict[str, Any]],
    ranking: list[Candidate],
    *,
    float_value: float,
    max_drop: float,
    max_fallback: int,
    first: tuple[Any, dict[str, Any]],
) -> GateResult:
    """Keep the ranked layers in float, one more per step, until ``measure`` is within
    ``max_drop`` or ``max_fallback`` layers are float.

    Layers accumulate rather than being kept only when one step helps: single-layer effects
    on a small eval set are within its noise (one image of 320 is 0.31 pt) and interact, while
    every float layer brings the model closer to the float one (measured on the demo
    classifier: docs/benchmarks.md, issue 4).

    Args:
        quantize: makes the int8 ModelProto with the given nodes kept float.
        measure: the gate metric of a ModelProto, ``{"metric", "value", ...}`` (and
            ``agreement_value``, the agreement with float, which every step records).
        ranking: candidates, most helpful first (:func:`rank_layers`).
        float_value: the float model's metric value (a fraction, e.g. top-1 0.97).
        max_drop: the allowed drop in percentage points.
        max_fallback: the most layers kept in float.
        first: the all-int8 model and its measurement (already made by the caller).
    """
    model, metric = first
    drop = drop_pp(float_value, metric["value"])
    steps = [gate_step([], metric, drop)]
    kept: list[str] = []
    for cand in ranking[:max_fallback]:
        if drop <= max_drop:
            break
        kept = kept + [n for n in cand.nodes if n not in kept]
        model = quantize(kept)
        metric = measure(model)
        drop = drop_pp(float_value, metric["value"])
        steps.append(gate_step(kept, metric, drop))
        log.info("gate: float %s -> drop %.3f pt", kept, drop)
    return GateResult(
        passed=drop <= max_drop,
        model=model,
        metric=metric,
        drop=drop,
        kept_float=kept,
        steps=steps,
        ranking=ranking,
    )


def gate_step(kept: list[str], metric: dict[str, Any], drop: float) -> dict[str, Any]:
    """One line of the gate's record: the layers float, the gate metric, its agreement."""
    step = {"kept_float": list(kept), "metric": metric.get("metric"), "value": metric["value"],
            "drop": drop}  # fmt: skip
    if metric.get("agreement_value") is not None:
        step["agreement"] = metric["agreement_value"]
    return step


def agreement_value(a: dict[str, Any]) -> float:
    """The label-free gate's number from an agreement record: top-1 agreement, else the mean
    box F1 over IoU 0.5:0.95 (``detection_agreement``'s ``box_f1_50_95``).

    A classifier whose output has no class axis to compare scores 0 (the gate refuses it
    rather than letting it pass unmeasured).
    """
    if "top1_agreement" in a:
        return float(a["top1_agreement"])
    return float(a.get("box_f1_50_95", 0.0))


def drop_pp(float_value: float, value: float) -> float:
    """The drop in percentage points (positive = worse than float), rounded for display."""
    return round((float(float_value) - float(value)) * 100.0, 4)
