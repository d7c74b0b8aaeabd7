"""`edgetk build model.onnx -o model.engine`: a TensorRT engine and its sidecar."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.common import (
    ChannelsOpt,
    ColorOpt,
    ForceOpt,
    ImgszOpt,
    JsonOpt,
    LabelsOpt,
    MeanOpt,
    OutputFormatOpt,
    ResizeOpt,
    ScaleOpt,
    StdOpt,
    TaskOpt,
    VerboseOpt,
    cli_command,
    console,
    make_overrides,
    print_json,
)
from toolkit.errors import BadInputError

_UNITS = {"": 1 << 30, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(value: str | None) -> int | None:
    """``--workspace``: ``4`` or ``4G`` (GiB), ``512M``, ``1.5g`` -> bytes.

    A bare number is GiB, as in Ultralytics' ``workspace=4``.
    """
    if value is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)(?:i?[bB])?\s*", value)
    if not m or float(m.group(1)) <= 0:
        raise BadInputError(
            f"--workspace expects a size such as 4G, 512M or 2 (GiB), got '{value}'"
        )
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


@cli_command
def command(
    model: Annotated[
        str, typer.Argument(help="The ONNX model (fp32, fp16, or int8 QDQ made for tensorrt).")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The engine file (default: MODEL.engine).")
    ] = None,
    min_batch: Annotated[
        int | None, typer.Option("--min-batch", help="Smallest batch of the profile (default 1).")
    ] = None,
    opt_batch: Annotated[
        int | None,
        typer.Option("--opt-batch", help="Batch TensorRT tunes for (default: --min-batch)."),
    ] = None,
    max_batch: Annotated[
        int | None, typer.Option("--max-batch", help="Largest batch of the profile (default 8).")
    ] = None,
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace", help="Workspace memory limit: 4G, 512M, or GiB (default: TensorRT's)."
        ),
    ] = None,
    timing_cache: Annotated[
        Path | None,
        typer.Option("--timing-cache", help="Timing cache file: read if present, updated after."),
    ] = None,
    opt_level: Annotated[
        int,
        typer.Option("--opt-level", help="builder_optimization_level 0..5 (higher: slower build)."),
    ] = 3,
    dla: Annotated[
        int | None,
        typer.Option("--dla", help="Build for DLA core N with GPU fallback (Jetson Orin)."),
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="MODEL is an engine: rebuild it from the ONNX file and options in its sidecar.",
        ),
    ] = False,
    task: TaskOpt = None,
    labels: LabelsOpt = None,
    imgsz: ImgszOpt = None,
    channels: ChannelsOpt = None,
    color: ColorOpt = None,
    scale: ScaleOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    resize: ResizeOpt = None,
    output_format: OutputFormatOpt = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Build a TensorRT engine; the precision is the ONNX file's (fp32, fp16 or int8 QDQ).

    Writes MODEL.engine (a plain plan: trtexec and DeepStream load it) and its sidecar
    MODEL.engine.json (spec, TensorRT version, GPU, ONNX hash, build options). A QDQ model
    made for the cpu target is refused with the reason.

    Example: edgetk build model.trt-int8.onnx -o model.engine --max-batch 8 --timing-cache trt.cache
    """
    from toolkit.build.builder import BuildOptions, build_engine, rebuild_options

    overrides = make_overrides(task, labels, imgsz, channels, color, scale, mean, std, resize,
                               output_format)  # fmt: skip
    if rebuild:
        if output is not None:
            raise BadInputError("--rebuild writes the engine it is given; drop -o")
        onnx_path, options = rebuild_options(model)
        out, force = Path(model), True
    else:
        onnx_path = Path(model)
        out = output if output is not None else onnx_path.with_suffix(".engine")
        options = BuildOptions(
            min_batch=min_batch,
            opt_batch=opt_batch,
            max_batch=max_batch,
            workspace=parse_size(workspace),
            timing_cache=str(timing_cache) if timing_cache is not None else None,
            opt_level=opt_level,
            dla_core=dla,
        )
    with console.status(f"building {out.name}", spinner="dots") as status:
        report = build_engine(
            onnx_path,
            out,
            options,
            overrides=None if overrides.is_empty() else overrides,
            force=force,
            progress=lambda msg: status.update(f"building {out.name}: {msg}"),
        )
    if json_out:
        print_json(report.to_dict())
        return
    mn, opt, mx = (report.profile[k] for k in ("min_batch", "opt_batch", "max_batch"))
    target = f" ({report.target} target)" if report.target else ""
    console.print(
        f"wrote {report.engine} ({report.size_bytes / 1e6:.1f} MB) and {Path(report.sidecar).name} "
        f"in {report.seconds:.1f} s: {report.precision}{target}, batch {mn}..{mx} (opt {opt}), "
        f"TensorRT {report.tensorrt} on {report.gpu or 'unknown GPU'}",
        markup=False,
        soft_wrap=True,
    )
