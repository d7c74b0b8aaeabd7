"""``quantize_model``: float ONNX -> fp16 or int8 QDQ, measured against the float model.

Bad input (a missing model, an unusable calibration source or ``--eval`` folder, an existing
output without ``force``) fails before any slow work and writes nothing. A model that fails the
accuracy gate is not written either: the report says why.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import BadInputError, ToolkitError
from toolkit.quantize.calibration import CalibrationSet, load_calibration
from toolkit.quantize.compare import agreement, check_eval_data, evaluate, ort_outputs
from toolkit.quantize.gate import drop_pp, fallback, layer_units, prescreen, rank_layers
from toolkit.quantize.int8 import METHODS, TARGETS, Int8Quantizer
from toolkit.quantize.report import QuantizeReport, artifact_size
from toolkit.spec import ModelSpec, SpecOverrides

log = logging.getLogger(__name__)

PRECISIONS = ("fp16", "int8")
# Calibration samples used to rank layers by sensitivity (enough to see a broken layer).
RANK_SAMPLES = 64
# Layers ranked one by one (each a re-quantization); more are prescreened in one pass.
RANK_MAX = 12
PRESCREEN_SAMPLES = 16

StageProgress = Callable[[str, int, int], None]
DETECT_NOTE = (
    "the detector's output node stays float: boxes (pixels) and scores (0..1) share one "
    "tensor, and one int8 scale cannot serve both"
)


def output_nodes(model: Any) -> list[str]:
    """Names of the nodes that produce the graph's outputs."""
    outs = {o.name for o in model.graph.output}
    return [n.name for n in model.graph.node if set(n.output) & outs and n.name]


def _check_args(
    precision: str, target: str, method: str, calib: str | None, calib_size: int,
    max_drop: float | None, max_fallback: int,
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
        calib: an image folder, a video file, an ``.npz`` of tensors or ``synthetic``
            (required for int8; for fp16 it only feeds the parity check).
        calib_size: calibration samples (some more are held out for the agreement check).
        method: ``minmax``, ``entropy`` or ``percentile``.
        eval_data: a labelled set (ImageFolder, or YOLO for detection) for the accuracy gate.
        max_drop: the largest accepted drop in percentage points of the gate's metric (top-1
            on ``eval_data``, else top-1 agreement with the float model on held-out frames).
        max_fallback: the most layers int8 may keep in float to meet ``max_drop``.
        force: replace an existing ``output``.
        overrides: spec values for a foreign ONNX file (``--imgsz``...).
        seed: seed of the synthetic calibration images.
        progress: called with (stage, done, total) during long stages.
        strict: an unreadable image in ``calib`` or ``eval_data`` is an error; by default
            it is skipped and the report says so (calibration warnings, notes).

    Returns:
        The report; ``report.passed`` is False (and nothing is written) when the gate failed.

    Raises:
        BadInputError: bad options, missing/corrupt model, unusable calibration or eval data,
            existing output.
        ToolkitError: conversion failures.
    """
    from toolkit.fileio import check_output
    from toolkit.modelfile import load_onnx, spec_from_onnx

    started = time.perf_counter()
    calib_s = None if calib is None else str(calib)
    _check_args(precision, target, method, calib_s, calib_size, max_drop, max_fallback)
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
        raise BadInputError("--max-drop on a detection model needs --eval DATA (a YOLO set)")

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
    )
    with tempfile.TemporaryDirectory(prefix="edgetk-q-") as tmp:
        measurer = _Measurer(proto, spec, cal, eval_data, Path(tmp), src, tick, overrides,
                             strict)  # fmt: skip
        report.notes += measurer.eval_notes()
        if precision == "fp16":
            final = _fp16(proto, measurer, report)
            kept: list[str] = []
        else:
            assert cal is not None
            final, kept = _int8(proto, spec, cal, target, method, measurer, report,
                                max_drop, max_fallback, tick)  # fmt: skip
        report.kept_float = kept
        if report.eval is not None and max_drop is not None:
            report.passed = report.eval["drop"] <= max_drop
        elif max_drop is not None and "top1_agreement" in report.agreement:
            report.passed = drop_pp(1.0, report.agreement["top1_agreement"]) <= max_drop
        if report.passed:
            _save(final, spec, report, cal, src, out, force)
            report.sizes["quantized_bytes"] = artifact_size(out)
            report.sizes["ratio"] = round(
                report.sizes["quantized_bytes"] / report.sizes["float_bytes"], 4
            )
        else:
            report.output = None  # rejected: nothing is written under the output name
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _calib_info(cal: CalibrationSet | None) -> dict[str, Any] | None:
    if cal is None:
        return None
    return {"source": cal.source, "kind": cal.kind, "count": cal.count,
            "held_out": int(cal.holdout.shape[0]), "warnings": list(cal.warnings),
            "skipped": [s.to_dict() for s in cal.skipped]}  # fmt: skip


class _Measurer:
    """Runs the float model once, then measures candidates: agreement and, with --eval, accuracy."""

    def __init__(
        self, proto: Any, spec: ModelSpec, cal: CalibrationSet | None, eval_data: Any,
        tmp: Path, src: Path, tick: Callable[[str], Any], overrides: SpecOverrides | None,
        strict: bool = False,
    ) -> None:  # fmt: skip
        self.spec = spec
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

    def agreement(self, candidate: Any) -> dict[str, Any]:
        out = ort_outputs(candidate, self.samples, self.input)
        result = {"inputs": self.kind, **agreement(self.reference, out, self.spec.task)}
        if self.spec.task == "detect":
            from toolkit.quantize.compare import detection_agreement

            result["detection"] = detection_agreement(self.spec, self.reference, out)
        return result

    def measure(self, candidate: Any) -> dict[str, Any]:
        """The gate metric of ``candidate``: accuracy on --eval, else top-1 agreement."""
        if self.eval_data is None:
            a = self.agreement(candidate)
            return {
                "metric": "top1_agreement",
                "value": a.get("top1_agreement", 0.0),
                "agreement": a,
            }
        from toolkit.modelfile import write_spec

        self._n += 1
        path = self.tmp / f"candidate_{self._n}.onnx"
        write_spec(candidate, self.spec)
        _save_plain(candidate, path)
        result = evaluate(path, self.eval_data, progress=self.tick("eval quantized"),
                          strict=self.strict)  # fmt: skip
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
    if m.float_eval is None:
        return None
    return {
        "data": str(m.eval_data),
        "metric": metric["metric"],
        "float": m.float_eval["value"],
        "quantized": metric["value"],
        "drop": drop_pp(m.float_value, metric["value"]),
        "float_details": m.float_eval["details"],
        "quantized_details": metric.get("details"),
    }


def _fp16(proto: Any, m: _Measurer, report: QuantizeReport) -> Any:
    from toolkit.quantize.fp16 import GPU_NOTE, convert_fp16

    converted = convert_fp16(proto)
    report.agreement = m.agreement(converted)
    report.notes.append(GPU_NOTE)
    if m.eval_data is not None:
        report.eval = _eval_entry(m, m.measure(converted))
    return converted


def _int8(
    proto: Any, spec: ModelSpec, cal: CalibrationSet, target: str, method: str, m: _Measurer,
    report: QuantizeReport, max_drop: float | None, max_fallback: int,
    tick: Callable[[str], Any],
) -> tuple[Any, list[str]]:  # fmt: skip
    from toolkit.quantize.trtcheck import check_tensorrt

    with Int8Quantizer(proto, cal.calib, spec.input.name, target=target, method=method,
                       progress=tick("calibrate")) as q:  # fmt: skip
        import onnx

        report.preprocessing = q.preprocessing
        prepared = onnx.load(str(q.prepared), load_external_data=False)
        base = output_nodes(prepared) if spec.task == "detect" else []
        if base:
            report.notes.append(DETECT_NOTE)

        def quant(extra: list[str]) -> Any:
            return q.quantize(base + [n for n in extra if n not in base])

        first = quant([])
        metric = m.measure(first)
        result_model, kept = first, list(base)
        if max_drop is not None and drop_pp(m.float_value, metric["value"]) > max_drop:
            units = [u for u in layer_units(prepared) if not set(u) & set(base)]
            keep = max(RANK_MAX, 2 * max_fallback)
            if len(units) > keep:
                units = prescreen(onnx.load(str(q.prepared)), quant([]), units,
                                  cal.calib[:PRESCREEN_SAMPLES], spec.input.name, keep)  # fmt: skip
            samples = cal.calib[:RANK_SAMPLES]
            reference = ort_outputs(proto, samples, spec.input.name)
            err, ranking = rank_layers(quant, units, samples, reference, spec.input.name,
                                       progress=tick("rank layers"))  # fmt: skip
            helpful = [c for c in ranking if c.error < err]
            gate = fallback(quant, m.measure, helpful, float_value=m.float_value,
                            max_drop=max_drop, max_fallback=max_fallback,
                            first=(first, metric))  # fmt: skip
            result_model, metric = gate.model, gate.metric
            kept = base + [n for n in gate.kept_float if n not in base]
            report.gate = {
                "max_drop": max_drop,
                "max_fallback": max_fallback,
                "passed": gate.passed,
                "base_output_error": round(err, 6),
                "ranking": [c.to_dict() for c in ranking[:10]],
                "steps": gate.steps,
            }
        elif max_drop is not None:
            report.gate = {"max_drop": max_drop, "max_fallback": max_fallback, "passed": True,
                           "steps": [{"kept_float": [], "value": metric["value"],
                                      "drop": drop_pp(m.float_value, metric["value"])}]}  # fmt: skip
    check = check_tensorrt(result_model)
    report.trt_check = check.to_dict()
    if target == "tensorrt" and not check.passed:
        raise ToolkitError("the tensorrt-target model breaks TensorRT's QDQ rules: "
                           + "; ".join(check.problems))  # fmt: skip
    if target == "cpu":
        report.notes.append("target cpu: uint8 activations, fast on x86/ARM CPUs; TensorRT "
                            "refuses it (use --target tensorrt for a GPU)")  # fmt: skip
    else:
        report.notes.append("target tensorrt: symmetric int8 for TensorRT; ONNX Runtime on an "
                            "x86 CPU runs it no faster than fp32 (use --target cpu there)")  # fmt: skip
    report.agreement = metric.get("agreement") or m.agreement(result_model)
    report.eval = _eval_entry(m, metric)
    return result_model, kept


def _save(
    final: Any, spec: ModelSpec, report: QuantizeReport, cal: CalibrationSet | None,
    src: Path, out: Path, force: bool,
) -> None:  # fmt: skip
    from toolkit.errors import OutputExistsError
    from toolkit.fileio import check_output, save_onnx
    from toolkit.modelfile import write_spec
    from toolkit.spec import portable_spec

    info = {
        "target": report.target,
        "method": report.method if report.precision == "int8" else "float16",
        "calibration_count": cal.count if (cal is not None and report.precision == "int8") else 0,
        "kept_float": list(report.kept_float),
        "source_model": src.name,
    }
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
