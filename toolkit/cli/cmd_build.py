"""`edgetk build model.onnx -o model.engine`: a TensorRT engine and its sidecar."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from toolkit.cli import options as opt
from toolkit.cli.common import cli_command, console, print_json
from toolkit.cli.progress import spinner
from toolkit.errors import BadInputError

if TYPE_CHECKING:
    from toolkit.build.builder import BuildOptions
    from toolkit.model.spec import SpecOverrides

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


ModelArg = Annotated[
    str, typer.Argument(help="The ONNX model (fp32, fp16, or int8 QDQ made for tensorrt).")
]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="The engine file (default: MODEL.engine).")
]
MinBatchOpt = Annotated[
    int | None, typer.Option("--min-batch", help="Smallest batch of the profile (default 1).")
]
OptBatchOpt = Annotated[
    int | None,
    typer.Option("--opt-batch", help="Batch TensorRT tunes for (default: --min-batch)."),
]
MaxBatchOpt = Annotated[
    int | None, typer.Option("--max-batch", help="Largest batch of the profile (default 8).")
]
WorkspaceOpt = Annotated[
    str | None,
    typer.Option(
        "--workspace", help="Workspace memory limit: 4G, 512M, or GiB (default: TensorRT's)."
    ),
]
TimingCacheOpt = Annotated[
    Path | None,
    typer.Option("--timing-cache", help="Timing cache file: read if present, updated after."),
]
OptLevelOpt = Annotated[
    int,
    typer.Option("--opt-level", help="builder_optimization_level 0..5 (higher: slower build)."),
]
DlaOpt = Annotated[
    int | None,
    typer.Option("--dla", help="Build for DLA core N with GPU fallback (Jetson Orin)."),
]
RebuildOpt = Annotated[
    bool,
    typer.Option(
        "--rebuild",
        help="MODEL is an engine: rebuild it from the ONNX file and options in its sidecar.",
    ),
]


def build_options(
    min_batch: MinBatchOpt = None,
    opt_batch: OptBatchOpt = None,
    max_batch: MaxBatchOpt = None,
    workspace: WorkspaceOpt = None,
    timing_cache: TimingCacheOpt = None,
    opt_level: OptLevelOpt = 3,
    dla: DlaOpt = None,
) -> BuildOptions:
    from toolkit.build.builder import BuildOptions

    return BuildOptions(
        min_batch=min_batch,
        opt_batch=opt_batch,
        max_batch=max_batch,
        workspace=parse_size(workspace),
        timing_cache=str(timing_cache) if timing_cache is not None else None,
        opt_level=opt_level,
        dla_core=dla,
    )


@cli_command
@opt.spec_options(options=build_options)
def command(
    model: ModelArg,
    output: OutputOpt = None,
    options: BuildOptions = opt.GROUP,
    rebuild: RebuildOpt = False,
    spec: SpecOverrides = opt.GROUP,
    force: opt.ForceOpt = False,
    json_out: opt.JsonOpt = False,
    verbose: opt.VerboseOpt = False,
) -> None:
    """Build a TensorRT engine; the precision is the ONNX file's (fp32, fp16 or int8 QDQ).

    Writes MODEL.engine (a plain plan: trtexec and DeepStream load it) and its sidecar
    MODEL.engine.json (spec, TensorRT version, GPU, ONNX hash, build options). A QDQ model
    made for the cpu target is refused with the reason.

    Example: edgetk build model.trt-int8.onnx -o model.engine --max-batch 8 --timing-cache trt.cache
    """
    from toolkit.build.builder import build_engine, rebuild_options

    if rebuild:
        if output is not None:
            raise BadInputError("--rebuild writes the engine it is given; drop -o")
        onnx_path, options = rebuild_options(model)
        out, force = Path(model), True
    else:
        onnx_path = Path(model)
        out = output if output is not None else onnx_path.with_suffix(".engine")
    with spinner(f"building {out.name}") as say:
        report = build_engine(onnx_path, out, options, overrides=None if spec.is_empty() else spec,
                              force=force, progress=say)  # fmt: skip
    if json_out:
        print_json(report.to_dict())
    else:
        _print_report(report)


def _print_report(report: Any) -> None:
    mn, opt, mx = (report.profile[k] for k in ("min_batch", "opt_batch", "max_batch"))
    target = f" ({report.target} target)" if report.target else ""
    console.print(
        f"wrote {report.engine} ({report.size_bytes / 1e6:.1f} MB) and {Path(report.sidecar).name} "
        f"in {report.seconds:.1f} s: {report.precision}{target}, batch {mn}..{mx} (opt {opt}), "
        f"TensorRT {report.tensorrt} on {report.gpu or 'unknown GPU'}",
        markup=False,
        soft_wrap=True,
    )
