"""The two conversions of ``quantize_model``, each measured: fp16, and int8 behind its gate.

:func:`run_int8` quantizes with ONNX Runtime (:class:`~toolkit.quantize.int8.Int8Quantizer`),
measures the candidate (:class:`~toolkit.quantize.measure.Measurer`) and, when it fails the
gate, keeps the most sensitive layers in float (:func:`toolkit.quantize.gate.fallback`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.evaluate.agreement import ort_outputs
from toolkit.model.spec import ModelSpec
from toolkit.quantize.calibration import CalibrationSet
from toolkit.quantize.gate import drop_pp, fallback, gate_step, layer_units, prescreen, rank_layers
from toolkit.quantize.int8 import Int8Quantizer, IsaChoice
from toolkit.quantize.measure import Measurer, eval_entry
from toolkit.quantize.options import GateRule
from toolkit.quantize.report import QuantizeReport

# Calibration samples used to rank layers by sensitivity (enough to see a broken layer).
RANK_SAMPLES = 64
# Layers ranked one by one (each a re-quantization); more are prescreened in one pass.
RANK_MAX = 12
PRESCREEN_SAMPLES = 16

EMULATION_NOTE = (
    "checked with TensorRT int8 semantics on CPU (Q/DQ as float), not ONNX Runtime's int8 kernels"
)
DETECT_NOTE = (
    "the detector's box decoding stays float (the nodes after its last convolutions: anchor "
    "offsets in pixels, the class sigmoid, the output concat): one int8 scale over pixel "
    "coordinates is several pixels wide, which costs mAP50-95"
)
# Nodes that carry weights: the decode tail is what follows the last of them.
_WEIGHTED = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


def decode_tail(model: Any) -> list[str]:
    """Names of the nodes that no weighted node (Conv, Gemm...) follows: a detector's decoding
    of its head convolutions into boxes and scores, and the graph's output nodes."""
    consumers: dict[str, list[Any]] = {}
    for n in model.graph.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    feeds_weighted: set[int] = set()  # id() of the nodes: names may be empty or repeated
    for n in reversed(list(model.graph.node)):  # ONNX graphs are topologically sorted
        below = [c for o in n.output for c in consumers.get(o, ())]
        if any(c.op_type in _WEIGHTED or id(c) in feeds_weighted for c in below):
            feeds_weighted.add(id(n))
    return [n.name for n in model.graph.node
            if n.name and n.op_type not in _WEIGHTED and id(n) not in feeds_weighted]  # fmt: skip


def run_fp16(proto: Any, m: Measurer, report: QuantizeReport, max_drop: float | None) -> Any:
    """The fp16 model, measured into ``report`` (gated only with ``max_drop``)."""
    from toolkit.quantize.fp16 import GPU_NOTE, convert_fp16

    converted = convert_fp16(proto)
    report.agreement = m.agreement(converted)
    report.notes.append(GPU_NOTE)
    if m.eval_data is not None:
        report.eval = eval_entry(m, {"accuracy": m.accuracy_of(converted)})
    # fp16 is gated only when asked (--max-drop): its parity is near-exact by construction.
    if report.eval is not None and max_drop is not None:
        report.passed = report.eval["drop"] <= max_drop
    elif max_drop is not None and "top1_agreement" in report.agreement:
        report.passed = drop_pp(1.0, report.agreement["top1_agreement"]) <= max_drop
    return converted


@dataclass(frozen=True)
class Gate:
    """What :func:`run_int8` holds its model to, and how far it may fall back to float."""

    rule: GateRule | None  # None: --eval without --max-drop (measured, not gated)
    max_fallback: int
    isa: IsaChoice


def run_int8(
    proto: Any, spec: ModelSpec, cal: CalibrationSet, target: str, method: str, m: Measurer,
    report: QuantizeReport, gate: Gate, tick: Callable[[str], Any],
) -> tuple[Any, list[str]]:  # fmt: skip
    """The int8 model (passed or not: see ``report.passed``) and the nodes it keeps in float."""
    import onnx

    from toolkit.model.modelfile import write_spec
    from toolkit.quantize.trtcheck import check_tensorrt

    m.emulate = target == "tensorrt" or gate.isa.note is not None
    m.gate_on_accuracy = gate.rule is not None and gate.rule.kind == "accuracy"
    m.candidate_spec = _quantized_spec(spec, {"target": target, **_isa_fields(gate.isa)})
    with Int8Quantizer(proto, cal.calib, spec.input.name, target=target, method=method,
                       progress=tick("calibrate"), reduce_range=gate.isa.reduce_range) as q:  # fmt: skip
        report.preprocessing = q.preprocessing
        prepared = onnx.load(str(q.prepared), load_external_data=False)
        base = decode_tail(prepared) if spec.task == "detect" else []
        if base:
            report.notes.append(DETECT_NOTE)
            report.decode_float = list(base)

        def quant(extra: list[str]) -> Any:
            model = q.quantize(base + [n for n in extra if n not in base])
            write_spec(model, m.candidate_spec)  # an int8 model of its target, to any backend
            return model

        first = quant([])
        result_model, metric, kept = first, m.measure(first), list(base)
        if gate.rule is not None:
            result_model, metric, kept, report.gate = _run_gate(
                q, proto, prepared, quant, base, (first, metric), gate, cal, m, tick
            )
            report.passed = bool(report.gate["passed"])
    check = check_tensorrt(result_model)
    report.trt_check = check.to_dict()
    if target == "tensorrt" and not check.passed:
        raise ToolkitError("the tensorrt-target model breaks TensorRT's QDQ rules: "
                           + "; ".join(check.problems))  # fmt: skip
    report.notes += _int8_notes(target, gate.isa)
    report.agreement = metric["agreement"]
    report.eval = eval_entry(m, metric)
    return result_model, kept


def _run_gate(
    q: Int8Quantizer, proto: Any, prepared: Any, quant: Callable[[list[str]], Any],
    base: list[str], first: tuple[Any, dict[str, Any]], gate: Gate, cal: CalibrationSet,
    m: Measurer, tick: Callable[[str], Any],
) -> tuple[Any, dict[str, Any], list[str], dict[str, Any]]:  # fmt: skip
    """(model, its measurement, layers kept float, the report's gate entry)."""
    import onnx

    rule, model, metric = gate.rule, first[0], first[1]
    assert rule is not None
    info = {**rule.to_dict(), "metric": metric["metric"], "max_fallback": gate.max_fallback,
            "inputs": f"{len(m.samples)} {m.kind}"}  # fmt: skip
    drop = drop_pp(rule.float_value, metric["value"])
    if drop <= rule.max_drop or gate.max_fallback == 0:  # nothing to rank for
        step = gate_step([], metric, drop)
        return model, metric, list(base), {**info, "passed": drop <= rule.max_drop,
                                           "steps": [step]}  # fmt: skip
    units = [u for u in layer_units(prepared) if not set(u) & set(base)]
    keep = max(RANK_MAX, 2 * gate.max_fallback)
    name = m.input
    if len(units) > keep:
        all_int8 = onnx.ModelProto()
        all_int8.CopyFrom(model)  # prescreen adds graph outputs to it: not to the result's
        units = prescreen(onnx.load(str(q.prepared)), all_int8, units,
                          cal.calib[:PRESCREEN_SAMPLES], name, keep, emulate=m.emulate)  # fmt: skip
    samples = cal.calib[:RANK_SAMPLES]
    reference = ort_outputs(proto, samples, name)
    err, ranking = rank_layers(quant, units, samples, reference, name,
                               progress=tick("rank layers"), emulate=m.emulate)  # fmt: skip
    result = fallback(quant, m.measure, [c for c in ranking if c.error < err],
                      float_value=rule.float_value, max_drop=rule.max_drop,
                      max_fallback=gate.max_fallback, first=first)  # fmt: skip
    kept = base + [n for n in result.kept_float if n not in base]
    return result.model, result.metric, kept, {
        **info, "passed": result.passed, "base_output_error": round(err, 6),
        "ranking": [c.to_dict() for c in ranking[:10]], "steps": result.steps,
    }  # fmt: skip


def _isa_fields(isa: IsaChoice) -> dict[str, Any]:
    return {"cpu_isa": isa.cpu_isa, "reduce_range": isa.reduce_range}


def _quantized_spec(spec: ModelSpec, info: dict[str, Any]) -> ModelSpec:
    return spec.with_changes(precision="int8", extra={**spec.extra, "quantization": info})


def _int8_notes(target: str, isa: IsaChoice) -> list[str]:
    if target == "tensorrt":
        return ["target tensorrt: symmetric int8 for TensorRT; ONNX Runtime on an x86 CPU runs "
                "it no faster than fp32 (use --target cpu there)", EMULATION_NOTE]  # fmt: skip
    notes = ["target cpu: uint8 activations, fast on x86/ARM CPUs; TensorRT refuses it (use "
             "--target tensorrt for a GPU)"]  # fmt: skip
    if isa.note is not None:
        notes.append(isa.note)
        notes.append(f"checked with Q/DQ as float (int32 sums, as a {isa.cpu_isa} CPU "
                     "computes them), not this CPU's int8 kernels")  # fmt: skip
    return notes
