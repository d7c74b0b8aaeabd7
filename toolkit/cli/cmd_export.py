"""`edgetk export MODEL -o out.onnx`: PyTorch -> ONNX with checks, parity and the ModelSpec."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from toolkit.cli import options as opt
from toolkit.cli.common import cli_command, console, print_json
from toolkit.cli.notes import note_random_weights
from toolkit.cli.progress import spinner
from toolkit.errors import BadInputError

if TYPE_CHECKING:
    from toolkit.model.spec import SpecOverrides

ModelArg = Annotated[
    str,
    typer.Argument(
        help="zoo:NAME, file.py:Name, package.module:Name, torchvision:NAME, timm:NAME, "
        "file.ts / file.pt (TorchScript), file.pt2 (torch.export)."
    ),
]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="The .onnx file to write.")]
NumClassesOpt = Annotated[
    int | None,
    typer.Option("--num-classes", help="Output classes (default: the model's or labels')."),
]
BatchOpt = Annotated[
    int | None, typer.Option("--batch", help="Static batch size (default: dynamic).")
]
DynamicOpt = Annotated[bool, typer.Option("--dynamic", help="Dynamic batch axis (the default).")]
MaxBatchOpt = Annotated[
    int | None, typer.Option("--max-batch", help="Upper bound of the dynamic batch.")
]
OpsetOpt = Annotated[
    int | None, typer.Option("--opset", help="ONNX opset (default: the exporter's).")
]
SimplifyOpt = Annotated[
    bool, typer.Option("--simplify/--no-simplify", help="Simplify the graph with onnxslim.")
]
CheckOpt = Annotated[
    bool,
    typer.Option(
        "--check/--no-check",
        help="Fail when ONNX Runtime differs from PyTorch beyond tolerance.",
    ),
]
DynamicHwOpt = Annotated[
    bool,
    typer.Option(
        "--dynamic-hw",
        help="Detectors: dynamic input height and width (multiples of the stride 32), for "
        "rect inference; parity is checked at two sizes.",
    ),
]
AtolOpt = Annotated[float, typer.Option("--atol", help="Parity absolute tolerance.")]
RtolOpt = Annotated[
    float, typer.Option("--rtol", help="Parity tolerance relative to max |output|.")
]


@cli_command
@opt.spec_options(before={"imgsz": "batch", "channels": "batch"})
def command(
    model: ModelArg,
    output: OutputOpt,
    weights: opt.WeightsOpt = None,
    num_classes: NumClassesOpt = None,
    batch: BatchOpt = None,
    dynamic: DynamicOpt = False,
    max_batch: MaxBatchOpt = None,
    dynamic_hw: DynamicHwOpt = False,
    opset: OpsetOpt = None,
    simplify: SimplifyOpt = True,
    check: CheckOpt = True,
    atol: AtolOpt = 1e-4,
    rtol: RtolOpt = 1e-3,
    spec: SpecOverrides = opt.GROUP,
    force: opt.ForceOpt = False,
    json_out: opt.JsonOpt = False,
    verbose: opt.VerboseOpt = False,
) -> None:
    """Export a PyTorch model to ONNX, check it in ONNX Runtime, and embed its spec."""
    from toolkit.export import export_onnx

    if dynamic and batch is not None:
        raise BadInputError("--dynamic and --batch exclude each other")
    with spinner(f"exporting {model}..."):
        report = export_onnx(
            model, output, weights=weights, num_classes=num_classes, batch=batch,
            max_batch=max_batch, opset=opset, simplify=simplify, check=check, force=force,
            overrides=spec, atol=atol, rtol=rtol, dynamic_hw=dynamic_hw,
        )  # fmt: skip
    if json_out:
        print_json(report.to_dict())
    else:
        _print_report(report)
    if report.spec.random_weights:
        note_random_weights(model)


def _shape(shape: list[int | None]) -> str:
    # Escaped: rich would read "[batch, 3]" as markup.
    dims = [str(s) if s is not None else "batch" if i == 0 else "N" for i, s in enumerate(shape)]
    return "\\[" + ", ".join(dims) + "]"


def _sizes(report: Any) -> str:
    if not report.dynamic_hw:
        return ""
    return " at " + ", ".join(f"{h}x{w}" for h, w in report.parity_sizes)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _print_report(report: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    p = report.parity
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    hw = ", height and width dynamic (multiples of 32)" if report.dynamic_hw else ""
    table.add_row("input", f"{report.input_name} {_shape(report.input_shape)}{hw}")
    for name, shape in report.output_shapes.items():
        table.add_row("output", f"{name} {_shape(shape)}")
    spec = report.spec
    labels = f", {len(spec.labels)} labels" if spec.labels else ""
    table.add_row("task", f"{spec.task} ({spec.output.format}){labels}")
    slim = f" -> {report.nodes_after} (onnxslim)" if report.simplified else " (not simplified)"
    table.add_row("nodes", f"{report.nodes_before}{slim}")
    table.add_row("opset", str(report.opset))
    if p.max_abs_diff is not None:
        top1 = f", top-1 agreement {p.top1_agreement:.1%}" if p.top1_agreement is not None else ""
        mark = "[green]ok[/green]" if p.passed else f"[red]FAILED[/red]: {escape(str(p.reason))}"
        table.add_row(
            "parity",
            f"max abs diff {p.max_abs_diff:.2e}, rel {p.rel_error:.2e}{top1} "
            f"({p.rows} images{_sizes(report)}, ONNX Runtime CPU vs PyTorch) {mark}",
        )
    else:
        table.add_row("parity", f"[yellow]{escape(p.status)}[/yellow]")
    table.add_row("size", _size(report.file_size_bytes))
    table.add_row(
        "time", f"{report.total_seconds:.1f} s (torch.onnx.export {report.export_seconds:.1f} s)"
    )
    console.print(
        f"exported [bold]{escape(report.source)}[/bold] -> [bold]{escape(report.output)}[/bold]"
    )
    console.print(table)
