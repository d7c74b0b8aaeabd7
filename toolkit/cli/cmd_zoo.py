"""`edgetk zoo`: the built-in architectures, their input sizes and parameter counts."""

from __future__ import annotations

from toolkit.cli import options as opt
from toolkit.cli.common import cli_command, console, print_json


@cli_command
def command(json_out: opt.JsonOpt = False, verbose: opt.VerboseOpt = False) -> None:
    """List the built-in architectures (use them as zoo:NAME)."""
    from rich.table import Table

    from toolkit.zoo.create import shipped_weights_path
    from toolkit.zoo.info import describe_models

    rows = describe_models()
    if json_out:
        print_json({"models": rows})
        return
    from toolkit.zoo import get_registry

    registry = get_registry()
    table = Table(title="edgetk zoo: use as zoo:NAME", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("input (CxHxW)")
    table.add_column("params", justify="right")
    table.add_column("description")
    for row in rows:
        shipped = shipped_weights_path(registry.get(row["name"])) is not None
        table.add_row(
            row["name"],
            "x".join(str(d) for d in row["input_shape"]),
            f"{row['params']:,}",
            row["description"] + (" [weights]" if shipped else ""),
        )
    console.print(table)
