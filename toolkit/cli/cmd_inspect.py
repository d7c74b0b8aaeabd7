"""`edgetk inspect MODEL`: per-layer table (op, output shape, params, MACs) and totals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from toolkit.cli import options as opt
from toolkit.cli.common import cli_command, console, print_json

if TYPE_CHECKING:
    from toolkit.model.spec import SpecOverrides

DepthOpt = Annotated[
    int | None,
    typer.Option(
        "--depth", help="PyTorch: group rows at this module depth (1 = top-level blocks)."
    ),
]


@cli_command
@opt.spec_options(*opt.SIZE_FLAGS)
def command(
    model: Annotated[str, typer.Argument(help="zoo:NAME, file.onnx, or a PyTorch reference.")],
    spec: SpecOverrides = opt.GROUP,
    weights: opt.WeightsOpt = None,
    depth: DepthOpt = None,
    json_out: opt.JsonOpt = False,
    verbose: opt.VerboseOpt = False,
) -> None:
    """Per-layer summary like Keras' model.summary(): output shapes, parameters, MACs."""
    from rich.table import Table

    from toolkit.summary import format_count, format_shape, summarize

    summary = summarize(model, overrides=spec, weights=weights, depth=depth)
    if json_out:
        print_json(summary.to_dict())
        return
    table = Table(
        title=f"{summary.model}  input {format_shape(summary.input_shape)}", title_justify="left"
    )
    table.add_column("layer")
    table.add_column("op")
    table.add_column("output shape")
    table.add_column("params", justify="right")
    table.add_column("MACs", justify="right")
    for row in summary.layers:
        table.add_row(
            row.name,
            row.op,
            format_shape(row.output_shape),
            f"{row.params:,}" if row.params else "0",
            format_count(row.macs) if row.macs else "0",
        )
    console.print(table)
    console.print(f"total params:     {summary.total_params:,}")
    if summary.framework == "torch":
        console.print(f"trainable params: {summary.trainable_params:,}")
    console.print(f"MACs:             {summary.total_macs:,} ({format_count(summary.total_macs)})")
