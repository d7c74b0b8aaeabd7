"""The Typer app: one small module per command, each a thin layer over the library."""

from __future__ import annotations

from typing import Annotated

import typer

from toolkit._version import __version__
from toolkit.cli import (
    cmd_benchmark,
    cmd_build,
    cmd_demo,
    cmd_export,
    cmd_info,
    cmd_inspect,
    cmd_predict,
    cmd_quantize,
    cmd_run,
    cmd_train,
    cmd_val,
    cmd_zoo,
)

app = typer.Typer(
    name="edgetk",
    help="Take vision models from PyTorch to the edge: export, quantize, build, benchmark, run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgetk {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs and tracebacks for every command.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """edgetk: PyTorch -> ONNX -> int8 / TensorRT -> a real-time inspection loop."""


for _name, _mod in [
    ("info", cmd_info),
    ("zoo", cmd_zoo),
    ("inspect", cmd_inspect),
    ("export", cmd_export),
    ("quantize", cmd_quantize),
    ("build", cmd_build),
    ("predict", cmd_predict),
    ("val", cmd_val),
    ("benchmark", cmd_benchmark),
    ("run", cmd_run),
    ("train", cmd_train),
    ("demo", cmd_demo),
]:
    app.command(_name)(_mod.command)


def main() -> None:
    app()
