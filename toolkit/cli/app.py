"""The Typer app: one small module per command, each a thin layer over the library."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from toolkit._version import __version__
from toolkit.cli import (
    cmd_benchmark,
    cmd_build,
    cmd_demo,
    cmd_explain,
    cmd_export,
    cmd_export_triton,
    cmd_info,
    cmd_inspect,
    cmd_predict,
    cmd_quantize,
    cmd_run,
    cmd_serve,
    cmd_train,
    cmd_val,
    cmd_zoo,
)
from toolkit.cli.common import err_console, print_json

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
    ("export-triton", cmd_export_triton),
    ("quantize", cmd_quantize),
    ("build", cmd_build),
    ("predict", cmd_predict),
    ("val", cmd_val),
    ("explain", cmd_explain),
    ("benchmark", cmd_benchmark),
    ("run", cmd_run),
    ("serve", cmd_serve),
    ("train", cmd_train),
    ("demo", cmd_demo),
]:
    app.command(_name)(_mod.command)


def main(argv: list[str] | None = None) -> None:
    """The console script. Parser errors get the same conventions as command errors: exit 2,
    and with ``--json`` one JSON document on stdout."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        code = app(args, prog_name="edgetk", standalone_mode=False)
    except typer.TyperException as e:  # a usage error found by the parser
        e.show()
        if "--json" in args:
            print_json({"error": e.format_message(), "exit_code": e.exit_code})
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        err_console.print("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
