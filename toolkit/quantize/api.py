"""``quantize_model``: float ONNX -> fp16 or int8 QDQ, measured against the float model.

Bad input (a missing model, an unusable calibration source or ``--eval`` folder, an existing
output without ``force``) fails before any slow work and writes nothing. A model that fails the
gate is not written either: the report says why.

An int8 model is gated. With ``--eval`` the gate is the accuracy drop on the labelled set
(``--max-drop``; without it the accuracies are reported, not gated, as before). Without
``--eval`` the gate needs no labels: the held-out calibration samples must agree with the float
model (top-1 agreement for a classifier, box F1 at IoU 0.5 for a detector) at least
``--min-agreement`` percent (default :data:`DEFAULT_MIN_AGREEMENT`). Below it, the most
sensitive layers are kept in float one by one (:func:`toolkit.quantize.gate.fallback`); if
``--max-fallback`` layers do not reach it, nothing is written. So a model that saturates ONNX
Runtime's AVX2 kernels (86% where float has 99.6%) is refused, or shown on --eval, never
written silently. The agreement is reported either way.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import BadInputError, ToolkitError
from toolkit.evaluate.agreement import agreement, check_eval_data, evaluate, ort_outputs
from toolkit.model.spec import ModelSpec, SpecOverrides
from toolkit.quantize.calibration import CalibrationSet, load_calibration
from toolkit.quantize.gate import (
    agreement_value,
    box_f1,
    drop_pp,
    fallback,
    gate_step,
    layer_units,
    prescreen,
    rank_layers,
)
from toolkit.quantize.int8 import METHODS, TARGETS, Int8Quantizer, IsaChoice, choose_isa
from toolkit.quantize.report import QuantizeReport, artifact_size

log = logging.getLogger(__name__)

PRECISIONS = ("fp16", "int8")
# Calibration samples used to rank layers by sensitivity (enough to see a broken layer).
RANK_SAMPLES = 64
# Layers ranked one by one (each a re-quantization); more are prescreened in one pass.
RANK_MAX = 12
PRESCREEN_SAMPLES = 16

# The label-free gate's default, in percent: top-1 agreement (classify), box F1 (detect).
# A classifier's int8 model that agrees with float on fewer than 99 of 100 frames is not
# "the same model"; box F1 is noisier (one box shifting across IoU 0.5 counts twice).
DEFAULT_MIN_AGREEMENT = {"classify": 99.0, "detect": 95.0}
EMULATION_NOTE = (
    "checked with TensorRT int8 semantics on CPU (Q/DQ as float), not ONNX Runtime's int8 kernels"
)

StageProgress = Callable[[str, int, int], None]
DETECT_NOTE = (
    "the detector's output node stays float: boxes (pixels) and scores (0..1) share one "
    "tensor, and one int8 scale cannot serve both"
)


def output_nodes(model: Any) -> list[str]:
    """Names of the nodes that produce the graph's outputs."""
    outs = {o.name for o in model.graph.output}
    return [n.name for n in model.graph.node if set(n.output) & outs and n.name]


@dataclass(frozen=True)
class GateRule:
    """What an int8 model is held to: an accuracy drop on --eval, or agreement with float."""

    kind: str  # "accuracy" | "agreement"
    float_value: float  # the float model's value of the gate metric (agreement: 1.0)
    max_drop: float  # percentage points below float_value
    min_agreement: float | None = None  # percent (agreement kind)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "max_drop": self.max_drop,
                "min_agreement": self.min_agreement}  # fmt: skip


def gate_rule(
    task: str, eval_data: Any, max_drop: float | None, min_agreement: float | None,
    float_value: float,
) -> GateRule | None:  # fmt: skip
    """The gate: accuracy with ``--eval`` (None, report only, without ``--max-drop``), else
    agreement with float.

    Labels outrank agreement: on calibration frames unlike the production images (synthetic
    parts for a colour classifier) the float model's own near-ties flip, and agreement
    refuses a model whose --eval accuracy equals float's. Without ``--eval``, ``--max-drop X``
    on a classifier keeps its old meaning (top-1 disagreement with float of at most X points),
    i.e. ``--min-agreement 100-X``.
    """
    if eval_data is not None:
        return None if max_drop is None else GateRule("accuracy", float_value, float(max_drop))
    if max_drop is not None:
        least = 100.0 - float(max_drop)
    else:
        least = DEFAULT_MIN_AGREEMENT.get(task, 99.0) if min_agreement is None else min_agreement
    return GateRule("agreement", 1.0, round(100.0 - least, 6), least)


def _check_args(
    precision: str, target: str, method: str, calib: str | None, calib_size: int,
    max_drop: float | None, max_fallback: int, min_agreement: float | None = None,
    eval_data: str | None = None,
) -> None:  # fmt: skip
    if precision not in PRECISIONS:
        raise BadInputError(f"--precision must be fp16 or int8, got '{precision}'")
    if precision == "int8":
        if target not in TARGETS:
            raise BadInputError(f"--target must be one of {', '.join(TARGETS)}, got '{target}'")
        if method not in METHODS:
            raise BadInputError(f"--method must be one of {', '.join(METHODS)}, got '{method}'")
        if calib is None:
            raise BadInputError("int8 needs calibration data: --calib DIR|VIDEO|FILE.npz|synthetic")
    if calib_size < 1:
        raise BadInputError(f"--calib-size must be at least 1, got {calib_size}")
    if max_drop is not None and max_drop < 0:
        raise BadInputError(f"--max-drop must be >= 0 (percentage points), got {max_drop}")
    if max_fallback < 0:
        raise BadInputError(f"--max-fallback must be >= 0, got {max_fallback}")
    if min_agreement is not None:
        _check_min_agreement(min_agreement, precision, max_drop, eval_data)


def _check_min_agreement(
    value: float, precision: str, max_drop: float | None, eval_data: str | None
) -> None:
    # A percentage, like --max-drop's points; a value under 1 is most likely a fraction.
    if not 0 <= value <= 100 or 0 < value < 1:
        hint = f" (a percentage: {value * 100:g} for {value:g})" if 0 < value < 1 else ""
        raise BadInputError(f"--min-agreement must be a percentage 0..100, got {value:g}{hint}")
    if precision != "int8":
        raise BadInputError("--min-agreement gates int8 models (fp16 is checked, not gated)")
    if max_drop is not None:
        raise BadInputError("give --max-drop (the accuracy gate, with --eval) or "
                            "--min-agreement (agreement with the float model), not both")  # fmt: skip
    if eval_data is not None:
        raise BadInputError("--min-agreement is the gate without labels; with --eval, gate "
                            "on accuracy with --max-drop (the agreement is reported)")  # fmt: skip


def quantize_model(
    model: str | Path,
    output: str | Path,
    *,
    precision: str = "int8",
    target: str = "tensorrt",
    calib: str | Path | None = None,
    calib_size: int = 128,
    method: str = "minmax",
    eval_data: str | Path | None = None,
    max_drop: float | None = None,
    max_fallback: int = 5,
    min_agreement: float | None = None,
    cpu: str | None = None,
    force: bool = False,
    overrides: SpecOverrides | None = None,
    seed: int = 0,
    progress: StageProgress | None = None,
    strict: bool = False,
) -> QuantizeReport:
    """Convert a float ONNX model to fp16 or int8 (static QDQ for ``target``) and measure it.

    Args:
        model: the float ``.onnx`` file (its spec drives the calibration preprocessing).
        output: the file to write (atomically; not replaced unless ``force``).
        precision: ``fp16`` or ``int8``.
        target: int8 layout, ``tensorrt`` (symmetric int8) or ``cpu`` (uint8 activations).
        cpu: the cpu target's instruction set, ``avx2`` (7-bit weights: no int8 dot product),
            ``vnni`` or ``arm`` (8-bit weights); None: this machine's.
        calib: an image folder, a video file, an ``.npz`` of tensors or ``synthetic``
            (required for int8; for fp16 it only feeds the parity check).
        calib_size: calibration samples (some more are held out for the agreement check).
        method: ``minmax``, ``entropy`` or ``percentile``.
        eval_data: a labelled set (ImageFolder, or YOLO for detection) for the accuracy gate.
        max_drop: with ``eval_data``, the largest accepted drop in percentage points of its
            metric (top-1, or mAP50-95 for a detector); without, a classifier's top-1
            disagreement with float (``min_agreement = 100 - max_drop``).
        max_fallback: the most layers int8 may keep in float to pass the gate.
        min_agreement: the label-free gate, in percent: held-out samples' top-1 agreement
            (classify) or box F1 (detect) with the float model; default 99 / 95.
        force: replace an existing ``output``.
        overrides: spec values for a foreign ONNX file (``--imgsz``...).
        seed: seed of the synthetic calibration images.
        progress: called with (stage, done, total) during long stages.
        strict: an unreadable image in ``calib`` or ``eval_data`` is an error; by default
            it is skipped and the report says so (calibration warnings, notes).

    Returns:
        The report; ``report.passed`` is False (and nothing is written) when the gate failed
        (for int8 there is always a gate: see the module's docstring).

    Raises:
        BadInputError: bad options, missing/corrupt model, unusable calibration or eval data,
            existing output.
        ToolkitError: conversion failures.
    """
    from toolkit.fileio import check_output
    from toolkit.model.modelfile import load_onnx, spec_from_onnx

    started = time.perf_counter()
    calib_s = None if calib is None else str(calib)
    _check_args(precision, target, method, calib_s, calib_size, max_drop, max_fallback,
                min_agreement, None if eval_data is None else str(eval_data))  # fmt: skip
    if cpu is not None and precision != "int8":
        raise BadInputError("--cpu chooses the instruction set of an int8 --target cpu model")
    isa = choose_isa(target, cpu) if precision == "int8" else None
    src = Path(model)
    out = Path(output)
    if out.exists() and src.exists() and out.resolve() == src.resolve():
        raise BadInputError(f"the output is the input model: {out} (choose another -o)")
    check_output(out, force)  # before any slow work; it creates nothing
    proto = load_onnx(src)
    spec = spec_from_onnx(proto)
    if overrides is not None:
        spec = overrides.apply(spec)
    if spec.precision != "fp32":
        raise BadInputError(f"{src} is already {spec.precision}: quantize the float model")
    if eval_data is not None:
        check_eval_data(eval_data, spec.task)
    elif max_drop is not None and spec.task != "classify":
        raise BadInputError("--max-drop on a detection model needs --eval DATA (a YOLO set); "
                            "without labels, --min-agreement gates the box F1")  # fmt: skip

    def tick(stage: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda d, t: progress(stage, d, t))

    cal: CalibrationSet | None = None
    if calib_s is not None:
        cal = load_calibration(calib_s, spec, size=calib_size, seed=seed, progress=tick("read"),
                               strict=strict)  # fmt: skip

    report = QuantizeReport(
        source_model=str(src),
        output=str(out),
        precision=precision,
        target=target if precision == "int8" else None,
        method=method if precision == "int8" else None,
        calibration=_calib_info(cal),
        sizes={"float_bytes": artifact_size(src)},
        isa=None if isa is None else isa.to_dict(),
    )
    with tempfile.TemporaryDirectory(prefix="edgetk-q-") as tmp:
        measurer = _Measurer(proto, spec, cal, eval_data, Path(tmp), src, tick, overrides,
                             strict)  # fmt: skip
        report.notes += measurer.eval_notes()
        if precision == "fp16":
            final = _fp16(proto, measurer, report, max_drop)
            kept: list[str] = []
        else:
            assert cal is not None and isa is not None
            rule = gate_rule(spec.task, eval_data, max_drop, min_agreement, measurer.float_value)
            final, kept = _int8(proto, spec, cal, target, method, measurer, report,
                                _Gate(rule, max_fallback, isa), tick)  # fmt: skip
        report.kept_float = kept
        if report.passed:
            _save(final, spec, report, cal, src, out, force)
            report.sizes["quantized_bytes"] = artifact_size(out)
            report.sizes["ratio"] = round(
                report.sizes["quantized_bytes"] / report.sizes["float_bytes"], 4
            )
        else:
            report.output = None  # rejected: nothing is written under the output name
            report.sizes["rejected_bytes"] = final.ByteSize()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _calib_info(cal: CalibrationSet | None) -> dict[str, Any] | None:
    if cal is None:
        return None
    return {"source": cal.source, "kind": cal.kind, "count": cal.count,
            "held_out": int(cal.holdout.shape[0]), "warnings": list(cal.warnings),
            "skipped": [s.to_dict() for s in cal.skipped]}  # fmt: skip


class _Measurer:
    """Runs the float model once, then measures candidates: agreement and, with --eval, accuracy.

    ``emulate``: candidates run with each Q/DQ pair as float (int32-exact int8), for a model
    whose target computes int8 differently from this CPU's ONNX Runtime kernels (TensorRT;
    8-bit weights on an AVX2-only host). ``candidate_spec`` is stamped into every candidate
    evaluated on --eval, so the backend sees an int8 model of its target.
    """

    def __init__(
        self, proto: Any, spec: ModelSpec, cal: CalibrationSet | None, eval_data: Any,
        tmp: Path, src: Path, tick: Callable[[str], Any], overrides: SpecOverrides | None,
        strict: bool = False,
    ) -> None:  # fmt: skip
        self.spec = spec
        self.candidate_spec = spec
        self.emulate = False
        self.gate_on_accuracy = False
        self.strict = strict
        self.tmp = tmp
        self.eval_data = eval_data
        self.tick = tick
        self.input = spec.input.name
        if cal is not None and cal.holdout.shape[0] > 0:
            self.samples, self.kind = cal.holdout, "held-out calibration samples"
        elif cal is not None:
            self.samples, self.kind = cal.calib, "calibration samples (none held out)"
        else:  # fp16 without --calib: random inputs of the model's shape
            c, (h, w) = spec.input.channels, spec.input.hw
            self.samples = np.random.default_rng(0).standard_normal((8, c, h, w)).astype(np.float32)
            self.kind = "random inputs"
        self.reference = ort_outputs(proto, self.samples, self.input)
        self.float_eval = None
        if eval_data is not None:
            self.float_eval = evaluate(
                src, eval_data, overrides=overrides, progress=tick("eval float"), strict=strict
            )
        self._n = 0

    @property
    def agreement_metric(self) -> str:
        return "box_f1" if self.spec.task == "detect" else "top1_agreement"

    def agreement(self, candidate: Any) -> dict[str, Any]:
        out = ort_outputs(candidate, self.samples, self.input, emulate=self.emulate)
        result = {"inputs": self.kind, **agreement(self.reference, out, self.spec.task),
                  "emulated": self.emulate}  # fmt: skip
        if self.spec.task == "detect":
            from toolkit.evaluate.agreement import detection_agreement

            det = detection_agreement(self.spec, self.reference, out)
            det["box_f1"] = result["box_f1"] = box_f1(det)
            result["detection"] = det
        return result

    def measure(self, candidate: Any) -> dict[str, Any]:
        """The gate metric of ``candidate`` (``metric``, ``value``), with its ``agreement``
        and, with --eval, its ``accuracy``."""
        a = self.agreement(candidate)
        value = agreement_value(a)
        result = {"metric": self.agreement_metric, "value": value, "agreement": a,
                  "agreement_value": value, "accuracy": None}  # fmt: skip
        if self.eval_data is not None:
            acc = self.accuracy_of(candidate)
            result["accuracy"] = acc
            if self.gate_on_accuracy:
                result.update(metric=acc["metric"], value=acc["value"])
        return result

    def accuracy_of(self, candidate: Any) -> dict[str, Any]:
        from toolkit.model.modelfile import write_spec

        self._n += 1
        path = self.tmp / f"candidate_{self._n}.onnx"
        write_spec(candidate, self.candidate_spec)
        _save_plain(candidate, path)
        result = evaluate(path, self.eval_data, progress=self.tick("eval quantized"),
                          strict=self.strict, emulate=self.emulate)  # fmt: skip
        path.unlink(missing_ok=True)
        return result

    def eval_notes(self) -> list[str]:
        """What the --eval set lost to unreadable images (the same ones for every candidate)."""
        from toolkit.data.images import SkippedImage, skipped_text

        details = (self.float_eval or {}).get("details") or {}
        skipped = [SkippedImage(d["source"], d["reason"]) for d in details.get("skipped", [])]
        return [f"--eval {skipped_text(skipped)}"] if skipped else []

    @property
    def float_value(self) -> float:
        return 1.0 if self.float_eval is None else float(self.float_eval["value"])


def _save_plain(proto: Any, path: Path) -> None:
    import onnx

    big = proto.ByteSize() > 1_500_000_000
    onnx.save_model(proto, str(path), save_as_external_data=big, location=path.name + ".data")


def _eval_entry(m: _Measurer, metric: dict[str, Any]) -> dict[str, Any] | None:
    acc = metric.get("accuracy")
    if m.float_eval is None or acc is None:
        return None
    return {
        "data": str(m.eval_data),
        "metric": acc["metric"],
        "float": m.float_eval["value"],
        "quantized": acc["value"],
        "drop": drop_pp(m.float_value, acc["value"]),
        "float_details": m.float_eval["details"],
        "quantized_details": acc.get("details"),
    }


def _fp16(proto: Any, m: _Measurer, report: QuantizeReport, max_drop: float | None) -> Any:
    from toolkit.quantize.fp16 import GPU_NOTE, convert_fp16

    converted = convert_fp16(proto)
    report.agreement = m.agreement(converted)
    report.notes.append(GPU_NOTE)
    if m.eval_data is not None:
        report.eval = _eval_entry(m, {"accuracy": m.accuracy_of(converted)})
    # fp16 is gated only when asked (--max-drop): its parity is near-exact by construction.
    if report.eval is not None and max_drop is not None:
        report.passed = report.eval["drop"] <= max_drop
    elif max_drop is not None and "top1_agreement" in report.agreement:
        report.passed = drop_pp(1.0, report.agreement["top1_agreement"]) <= max_drop
    return converted


@dataclass(frozen=True)
class _Gate:
    rule: GateRule | None  # None: --eval without --max-drop (measured, not gated)
    max_fallback: int
    isa: IsaChoice


def _int8(
    proto: Any, spec: ModelSpec, cal: CalibrationSet, target: str, method: str, m: _Measurer,
    report: QuantizeReport, gate: _Gate, tick: Callable[[str], Any],
) -> tuple[Any, list[str]]:  # fmt: skip
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
        base = output_nodes(prepared) if spec.task == "detect" else []
        if base:
            report.notes.append(DETECT_NOTE)

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
    report.eval = _eval_entry(m, metric)
    return result_model, kept


def _run_gate(
    q: Int8Quantizer, proto: Any, prepared: Any, quant: Callable[[list[str]], Any],
    base: list[str], first: tuple[Any, dict[str, Any]], gate: _Gate, cal: CalibrationSet,
    m: _Measurer, tick: Callable[[str], Any],
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
        units = prescreen(onnx.load(str(q.prepared)), quant([]), units,
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


def _save(
    final: Any, spec: ModelSpec, report: QuantizeReport, cal: CalibrationSet | None,
    src: Path, out: Path, force: bool,
) -> None:  # fmt: skip
    from toolkit.errors import OutputExistsError
    from toolkit.fileio import check_output, save_onnx
    from toolkit.model.modelfile import write_spec
    from toolkit.model.spec import portable_spec

    info = {
        "target": report.target,
        "method": report.method if report.precision == "int8" else "float16",
        "calibration_count": cal.count if (cal is not None and report.precision == "int8") else 0,
        "kept_float": list(report.kept_float),
        "source_model": src.name,
    }
    if report.precision == "int8" and report.isa is not None:
        # The instruction set the weights fit (None for tensorrt: int32 sums on every GPU).
        info["cpu_isa"] = report.isa["cpu_isa"]
        info["reduce_range"] = report.isa["reduce_range"]
    new_spec = spec.with_changes(
        precision=report.precision, extra={**spec.extra, "quantization": info}
    )
    # The float model's recorded files are relative to its folder; the output may be elsewhere.
    new_spec = portable_spec(new_spec, out.parent, read_from=src.parent)
    write_spec(final, new_spec)
    if out.exists() and not force:  # it appeared while we were working
        raise OutputExistsError(f"output exists: {out} (pass --force to overwrite)")
    check_output(out, force)  # still writable after the minutes of work
    save_onnx(final, out)
    report.spec = new_spec
