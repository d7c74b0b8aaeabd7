"""``quantize_model``: float ONNX -> fp16 or int8 QDQ, measured against the float model.

Bad input (a missing model, an unusable calibration source or ``--eval`` folder, an existing
output without ``force``) fails before any slow work and writes nothing. A model that fails the
gate is not written either: the report says why.

An int8 model is gated. With ``--eval`` the gate is the accuracy drop on the labelled set
(``--max-drop``; without it the accuracies are reported, not gated, as before). Without
``--eval`` the gate needs no labels: the held-out calibration samples must agree with the float
model (top-1 agreement for a classifier, the mean box F1 over IoU 0.5:0.95 for a detector) at
least ``--min-agreement`` percent (default :data:`~toolkit.quantize.options.DEFAULT_MIN_AGREEMENT`).
Below it, the most sensitive layers are kept in float one by one
(:func:`toolkit.quantize.gate.fallback`); if ``--max-fallback`` layers do not reach it, nothing
is written. So a model that saturates ONNX
Runtime's AVX2 kernels is refused, or shown on --eval, never written silently. The agreement
is reported either way.

The options are checked in :mod:`toolkit.quantize.options`; the conversions and the gate run
in :mod:`toolkit.quantize.convert`, measured by :mod:`toolkit.quantize.measure`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError
from toolkit.model.spec import ModelSpec, SpecOverrides
from toolkit.quantize.calibration import CalibrationSet, load_calibration
from toolkit.quantize.convert import Gate, run_fp16, run_int8
from toolkit.quantize.int8 import IsaChoice, choose_isa
from toolkit.quantize.measure import Measurer
from toolkit.quantize.options import QuantizeOptions, gate_rule
from toolkit.quantize.report import QuantizeReport, artifact_size

StageProgress = Callable[[str, int, int], None]
StageTick = Callable[[str], Callable[[int, int], None] | None]


def quantize_model(
    model: str | Path, output: str | Path, *, precision: str = "int8", target: str = "tensorrt",
    calib: str | Path | None = None, calib_size: int = 128, method: str = "minmax",
    eval_data: str | Path | None = None, max_drop: float | None = None, max_fallback: int = 5,
    min_agreement: float | None = None, cpu: str | None = None, force: bool = False,
    overrides: SpecOverrides | None = None, seed: int = 0, progress: StageProgress | None = None,
    strict: bool = False,
) -> QuantizeReport:  # fmt: skip
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
            (classify) or mean box F1 over IoU 0.5:0.95 (detect) with the float model;
            default 99 / 90.
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
    opts = QuantizeOptions(precision, target, None if calib is None else str(calib), calib_size,
                           method, eval_data, max_drop, max_fallback, min_agreement, cpu, seed,
                           strict)  # fmt: skip
    opts.check()
    return _quantize(opts, Path(model), Path(output), force, overrides, progress)


def _quantize(
    opts: QuantizeOptions, src: Path, out: Path, force: bool, overrides: SpecOverrides | None,
    progress: StageProgress | None,
) -> QuantizeReport:  # fmt: skip
    """:func:`quantize_model` once its options are checked."""
    started = time.perf_counter()
    isa = choose_isa(opts.target, opts.cpu) if opts.precision == "int8" else None
    proto, spec = _load_float(src, out, force, overrides)
    opts.check_model(src, spec)
    tick = _stage_ticker(progress)
    cal: CalibrationSet | None = None
    if opts.calib is not None:
        cal = load_calibration(opts.calib, spec, size=opts.calib_size, seed=opts.seed,
                               progress=tick("read"), strict=opts.strict)  # fmt: skip
    report = _new_report(opts, src, out, cal, isa)
    with tempfile.TemporaryDirectory(prefix="edgetk-q-") as tmp:
        measurer = Measurer(proto, spec, cal, opts.eval_data, Path(tmp), src, tick, overrides,
                            opts.strict)  # fmt: skip
        report.notes += measurer.eval_notes()
        if opts.precision == "fp16":
            final, report.kept_float = run_fp16(proto, measurer, report, opts.max_drop), []
        else:
            assert cal is not None and isa is not None
            rule = gate_rule(spec.task, opts.eval_data, opts.max_drop, opts.min_agreement,
                             measurer.float_value)  # fmt: skip
            final, report.kept_float = run_int8(
                proto, spec, cal, opts.target, opts.method, measurer, report,
                Gate(rule, opts.max_fallback, isa), tick,
            )  # fmt: skip
        _write_or_reject(final, spec, report, cal, src, out, force)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _load_float(
    src: Path, out: Path, force: bool, overrides: SpecOverrides | None
) -> tuple[Any, ModelSpec]:
    """The float model and its spec, once the output is known to be writable."""
    from toolkit.fileio import check_output
    from toolkit.model.modelfile import load_onnx, spec_from_onnx

    if out.exists() and src.exists() and out.resolve() == src.resolve():
        raise BadInputError(f"the output is the input model: {out} (choose another -o)")
    check_output(out, force)  # before any slow work; it creates nothing
    proto = load_onnx(src)
    spec = spec_from_onnx(proto)
    if overrides is not None:
        spec = overrides.apply(spec)
    return proto, spec


def _stage_ticker(progress: StageProgress | None) -> StageTick:
    """``tick(stage)``: the ``(done, total)`` callback of one stage (None without ``progress``)."""

    def tick(stage: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda d, t: progress(stage, d, t))

    return tick


def _new_report(
    opts: QuantizeOptions, src: Path, out: Path, cal: CalibrationSet | None,
    isa: IsaChoice | None,
) -> QuantizeReport:  # fmt: skip
    int8 = opts.precision == "int8"
    return QuantizeReport(
        source_model=str(src),
        output=str(out),
        precision=opts.precision,
        target=opts.target if int8 else None,
        method=opts.method if int8 else None,
        calibration=_calib_info(cal),
        sizes={"float_bytes": artifact_size(src)},
        isa=None if isa is None else isa.to_dict(),
    )


def _write_or_reject(
    final: Any, spec: ModelSpec, report: QuantizeReport, cal: CalibrationSet | None,
    src: Path, out: Path, force: bool,
) -> None:  # fmt: skip
    """Save a model that passed (and its sizes); a rejected one is only sized."""
    if report.passed:
        _save(final, spec, report, cal, src, out, force)
        report.sizes["quantized_bytes"] = artifact_size(out)
        report.sizes["ratio"] = round(
            report.sizes["quantized_bytes"] / report.sizes["float_bytes"], 4
        )
    else:
        report.output = None  # rejected: nothing is written under the output name
        report.sizes["rejected_bytes"] = final.ByteSize()


def _calib_info(cal: CalibrationSet | None) -> dict[str, Any] | None:
    if cal is None:
        return None
    return {"source": cal.source, "kind": cal.kind, "count": cal.count,
            "held_out": int(cal.holdout.shape[0]), "warnings": list(cal.warnings),
            "skipped": [s.to_dict() for s in cal.skipped]}  # fmt: skip


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
