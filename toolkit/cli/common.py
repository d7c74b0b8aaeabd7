"""Shared CLI pieces: error handling and output (the options are in :mod:`toolkit.cli.options`).

Human output goes to stdout (rich); with ``--json`` stdout holds one JSON document and the human
text goes to stderr. Errors always go to stderr.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from toolkit.errors import ToolkitError

# Human output. ``cli_command`` points it at stderr while a ``--json`` command runs; rich
# resolves sys.stdout / sys.stderr at each print, so test runners that swap them still work.
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


def print_json(data: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(obj: Any) -> Any:
    from pathlib import PurePath

    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, PurePath):
        return str(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _root_verbose(ctx: typer.Context | None) -> bool:
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and root.params.get("verbose"))


def _quiet_third_party(verbose: bool) -> None:
    """Silence OpenCV/FFmpeg log lines and library warnings unless ``--verbose``.

    A bad input then shows the one-line error alone. OpenCV reads ``OPENCV_LOG_LEVEL`` when it is
    imported and FFmpeg's level (``OPENCV_FFMPEG_LOGLEVEL``) when a capture first opens; both
    happen inside the command, after this runs. ``cv2.setLogLevel`` covers an earlier import.
    """
    if verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s", force=True)
        return
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")  # our own errors say what failed
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and hasattr(cv2, "setLogLevel"):
        cv2.setLogLevel(0)  # LOG_LEVEL_SILENT
    warnings.simplefilter("ignore")
    # Library loggers (torch.onnx, onnxruntime, ...) reach stderr only at ERROR and above.
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")


_CTX_PARAM = "_edgetk_ctx"


def cli_command(func: F) -> F:
    """Run a command: output routing, third-party noise, errors -> one line and an exit code.

    - Human output (``console``) goes to stdout; with ``--json`` it goes to stderr and stdout
      holds the JSON document alone, also on failure: ``{"error": "...", "exit_code": N}``.
    - :class:`ToolkitError` becomes a one-line message with its exit code (2 bad input,
      1 failure while running); Ctrl-C is 130; anything else is 1.
    - Tracebacks and library noise only with ``--verbose`` (on the command or on the root:
      ``edgetk --verbose CMD``).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.pop(_CTX_PARAM, None)
        json_out = bool(kwargs.get("json_out"))
        verbose = bool(kwargs.get("verbose"))
        console.stderr = json_out
        try:
            verbose = verbose or _root_verbose(ctx)
            _quiet_third_party(verbose)
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except ToolkitError as e:
            _fail(_one_line(str(e)), e.exit_code, verbose=verbose, json_out=json_out)
        except KeyboardInterrupt:
            _fail("interrupted", 130, verbose=False, json_out=json_out)
        except Exception as e:
            msg = f"{type(e).__name__}: {_one_line(str(e))}"
            hint = "" if verbose else " (run with --verbose for the traceback)"
            _fail(msg, 1, verbose=verbose, json_out=json_out, hint=hint)
        finally:
            console.stderr = False

    # Typer injects the click context into a parameter annotated typer.Context; the wrapper
    # takes it (without the command having to declare it) to read the root --verbose.
    sig = inspect.signature(func, eval_str=True)
    ctx_param = inspect.Parameter(
        _CTX_PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context
    )
    wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[*sig.parameters.values(), ctx_param]
    )
    wrapper.__annotations__ = {
        **{n: p.annotation for n, p in sig.parameters.items()},
        _CTX_PARAM: typer.Context,
    }
    return wrapper  # type: ignore[return-value]


def _fail(msg: str, code: int, *, verbose: bool, json_out: bool, hint: str = "") -> None:
    if verbose:
        traceback.print_exc()
    err_console.print(f"[red]error:[/red] {escape(msg)}{hint}", soft_wrap=True)
    if json_out:
        print_json({"error": msg, "exit_code": code})
    raise typer.Exit(code) from None


def _one_line(msg: str) -> str:
    line = " ".join(msg.split())
    return line if len(line) <= 400 else line[:397] + "..."
