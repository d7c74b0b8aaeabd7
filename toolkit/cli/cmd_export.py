"""`edgetk export MODEL -o out.onnx`: PyTorch -> ONNX with checks, parity and the ModelSpec."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
    WeightsOpt,
    cli_command,
    console,
    make_overrides,
    print_json,
)
from toolkit.cli.notes import note_random_weights
from toolkit.errors import BadInputError


@cli_command
def command(
    model: Annotated[
        str,
        typer.Argument(
            help="zoo:NAME, file.py:Name, package.module:Name, torchvision:NAME, timm:NAME, "
            "file.ts / file.pt (TorchScript), file.pt2 (torch.export)."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .onnx file to write.")],
    weights: WeightsOpt = None,
    num_classes: Annotated[
        int | None,
        typer.Option("--num-classes", help="Output classes (default: the model's or labels')."),
    ] = None,
    imgsz: ImgszOpt = None,
    channels: ChannelsOpt = None,
    batch: Annotated[
        int | None, typer.Option("--batch", help="Static batch size (default: dynamic).")
    ] = None,
    dynamic: Annotated[
        bool, typer.Option("--dynamic", help="Dynamic batch axis (the default).")
    ] = False,
    max_batch: Annotated[
        int | None, typer.Option("--max-batch", help="Upper bound of the dynamic batch.")
    ] = None,
    opset: Annotated[
        int | None, typer.Option("--opset", help="ONNX opset (default: the exporter's).")
    ] = None,
    simplify: Annotated[
        bool, typer.Option("--simplify/--no-simplify", help="Simplify the graph with onnxslim.")
    ] = True,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check",
            help="Fail when ONNX Runtime differs from PyTorch beyond tolerance.",
        ),
    ] = True,
    atol: Annotated[float, typer.Option("--atol", help="Parity absolute tolerance.")] = 1e-4,
    rtol: Annotated[
        float, typer.Option("--rtol", help="Parity tolerance relative to max |output|.")
    ] = 1e-3,
    task: TaskOpt = None,
    labels: LabelsOpt = None,
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
    """Export a PyTorch model to ONNX, check it in ONNX Runtime, and embed its spec."""
    from toolkit.export import export_onnx

    if dynamic and batch is not None:
        raise BadInputError("--dynamic and --batch exclude each other")
    overrides = make_overrides(
        task, labels, imgsz, channels, color, scale, mean, std, resize, output_format
    )
    with (
        console.status(f"exporting {model}...", spinner="dots") if console.is_terminal else _null()
    ):
        report = export_onnx(
            model,
            output,
            weights=weights,
            num_classes=num_classes,
            batch=batch,
            max_batch=max_batch,
            opset=opset,
            simplify=simplify,
            check=check,
            force=force,
            overrides=overrides,
            atol=atol,
            rtol=rtol,
        )
    if json_out:
        print_json(report.to_dict())
    else:
        _print_report(report)
    if report.spec.random_weights:
        note_random_weights(model)


def _null() -> Any:
    import contextlib

    return contextlib.nullcontext()


def _shape(shape: list[int | None]) -> str:
    # Escaped: rich would read "[batch, 3]" as markup.
    return "\\[" + ", ".join("batch" if s is None else str(s) for s in shape) + "]"


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _print_report(report: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    p = report.parity
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("input", f"{report.input_name} {_shape(report.input_shape)}")
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
            f"({p.rows} images, ONNX Runtime CPU vs PyTorch) {mark}",
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
