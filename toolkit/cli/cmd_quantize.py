"""`edgetk quantize MODEL -o OUT`: fp16, or int8 QDQ for a target, with an accuracy gate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from toolkit.cli import options as opt
from toolkit.cli.common import cli_command, console, print_json
from toolkit.cli.progress import ProgressBars
from toolkit.errors import BadInputError

if TYPE_CHECKING:
    from toolkit.model.spec import SpecOverrides

METHOD_HELP = (
    "Calibration: minmax (fastest, least memory: ResNet-18 6.5 s / ~350 MB for 32 samples), "
    "entropy (KL thresholds from histograms, ~1.3 GB RSS on ResNet-18), percentile (clips at "
    "the 99.999th percentile, histograms too, ~1.3 GB)."
)
TARGET_HELP = (
    "int8 layout: tensorrt (symmetric int8, per-channel weights, float bias: what TensorRT "
    "accepts; no faster than fp32 on an x86 CPU) or cpu (uint8 activations: ~0.57x fp32 "
    "latency in ONNX Runtime on AVX2; TensorRT refuses it)."
)
CPU_HELP = (
    "The CPU a --target cpu model is for: avx2 (no int8 dot product: 7-bit weights, since "
    "ONNX Runtime's AVX2 kernels sum u8 x s8 pairs in int16 and 8-bit weights saturate them), "
    "vnni (AVX512-VNNI, AVX-VNNI or AMX) or arm (8-bit weights, int32 sums). Default: this "
    "machine's (edgetk info shows it)."
)
MIN_AGREEMENT_HELP = (
    "The label-free gate, in percent: held-out calibration samples must agree with the float "
    "model this much (top-1 agreement for a classifier, default 99; for a detector the mean box "
    "F1 over IoU 0.5:0.95, default 90). Below it, sensitive layers are kept in float; if that fails, exit 1 "
    "and write nothing. Without --eval only: with it, --max-drop gates on accuracy."
)


ModelArg = Annotated[str, typer.Argument(help="The float .onnx model.")]
OutputOpt = Annotated[
    str | None,
    typer.Option(
        "--output", "-o", help="The quantized .onnx to write (required, except with --check-only)."
    ),
]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="fp16 | int8")]
TargetOpt = Annotated[str, typer.Option("--target", help=TARGET_HELP)]
CpuOpt = Annotated[str | None, typer.Option("--cpu", help=CPU_HELP)]
CalibOpt = Annotated[
    str | None,
    typer.Option(
        "--calib",
        help="Calibration data: an image folder (recursive), a video file (frames sampled "
        "evenly), an .npz of preprocessed NCHW tensors, or 'synthetic' (demo parts).",
    ),
]
CalibSizeOpt = Annotated[
    int, typer.Option("--calib-size", help="Calibration samples (>= 100 recommended).")
]
MethodOpt = Annotated[str, typer.Option("--method", help=METHOD_HELP)]
EvalOpt = Annotated[
    str | None,
    typer.Option("--eval", help="Labelled set for the accuracy gate (ImageFolder or YOLO)."),
]
MaxDropOpt = Annotated[
    float | None,
    typer.Option(
        "--max-drop",
        help="Largest accepted drop in percentage points (top-1, or mAP50-95 for a YOLO set, on "
        "--eval; without --eval, a classifier's top-1 disagreement with the float model on "
        "held-out calibration frames: --min-agreement 100-X). Over it, sensitive layers "
        "are kept in float; if that fails, exit 1 and write nothing.",
    ),
]
MinAgreementOpt = Annotated[float | None, typer.Option("--min-agreement", help=MIN_AGREEMENT_HELP)]
MaxFallbackOpt = Annotated[
    int, typer.Option("--max-fallback", help="Most layers the gate may keep in float.")
]
CheckOnlyOpt = Annotated[
    bool,
    typer.Option("--check-only", help="Only check MODEL against TensorRT's QDQ rules."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of synthetic calibration.")]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="An unreadable image in --calib or --eval is an error (exit 2); by default "
        "it is skipped and counted.",
    ),
]


@cli_command
@opt.spec_options()
def command(
    model: ModelArg,
    output: OutputOpt = None,
    precision: PrecisionOpt = "int8",
    target: TargetOpt = "tensorrt",
    cpu: CpuOpt = None,
    calib: CalibOpt = None,
    calib_size: CalibSizeOpt = 128,
    method: MethodOpt = "minmax",
    eval_data: EvalOpt = None,
    max_drop: MaxDropOpt = None,
    min_agreement: MinAgreementOpt = None,
    max_fallback: MaxFallbackOpt = 5,
    check_only: CheckOnlyOpt = False,
    seed: SeedOpt = 0,
    strict: StrictOpt = False,
    force: opt.ForceOpt = False,
    json_out: opt.JsonOpt = False,
    spec: SpecOverrides = opt.GROUP,
    verbose: opt.VerboseOpt = False,
) -> None:
    """Quantize an ONNX model to fp16 or int8 (static QDQ), checked against the float model.

    Examples:
      edgetk quantize model.onnx --precision fp16 -o model.fp16.onnx
      edgetk quantize model.onnx --target tensorrt --calib calibration/defects -o m.trt-int8.onnx
      edgetk quantize model.onnx --target cpu --calib line.mp4 --eval data/val --max-drop 0.5
      edgetk quantize model.onnx --target cpu --cpu avx2 --calib line.mp4 -o m.avx2-int8.onnx
    """
    if check_only:
        _check_only(model, json_out)
        return
    if output is None:
        raise BadInputError("give the output file: -o OUT.onnx (or --check-only)")
    from toolkit.quantize.api import quantize_model

    with ProgressBars() as progress:
        report = quantize_model(
            model, output, precision=precision, target=target, calib=calib,
            calib_size=calib_size, method=method, eval_data=eval_data, max_drop=max_drop,
            max_fallback=max_fallback, min_agreement=min_agreement, cpu=cpu, force=force,
            overrides=spec, seed=seed, progress=progress, strict=strict,
        )  # fmt: skip
    for line in report.lines():
        console.print(line, soft_wrap=True)
    if json_out:
        print_json(report.to_dict())
    if not report.passed:
        raise typer.Exit(1)


def _check_only(model: str, json_out: bool) -> None:
    from toolkit.quantize.trtcheck import check_tensorrt

    result = check_tensorrt(model)
    console.print(f"TensorRT QDQ check of {model}: {result.summary()}", soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {note}", soft_wrap=True)
    if json_out:
        print_json({"model": model, "tensorrt_check": result.to_dict()})
    if not result.passed:
        raise typer.Exit(1)
