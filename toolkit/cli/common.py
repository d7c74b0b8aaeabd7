"""Shared CLI pieces: option types, error handling, output.

Human output goes to stderr (rich); ``--json`` prints one JSON document on stdout.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from toolkit.errors import ToolkitError
from toolkit.spec import SpecOverrides, parse_floats, parse_imgsz, parse_labels, parse_scale

console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show debug logs and tracebacks.")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")]
BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        help="auto | ort-cpu | ort-cuda | ort-trt | tensorrt | torch",
    ),
]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", help="CPU threads (default: physical cores).")
]
WeightsOpt = Annotated[
    str | None, typer.Option("--weights", help="A state dict (.pt/.pth/.safetensors) to load.")
]

# Preprocessing / spec flags: they fill the gaps of a foreign model and override ours.
TaskOpt = Annotated[str | None, typer.Option("--task", help="classify | detect")]
LabelsOpt = Annotated[
    str | None, typer.Option("--labels", help="Class names: a file (one per line) or a comma list.")
]
ImgszOpt = Annotated[str | None, typer.Option("--imgsz", help="Input size: N or H,W.")]
ChannelsOpt = Annotated[int | None, typer.Option("--channels", help="Input channels (1 or 3).")]
ColorOpt = Annotated[str | None, typer.Option("--color", help="rgb | bgr | gray")]
ScaleOpt = Annotated[str | None, typer.Option("--scale", help="Pixel scale (default 1/255).")]
MeanOpt = Annotated[str | None, typer.Option("--mean", help="Per-channel mean, comma list.")]
StdOpt = Annotated[str | None, typer.Option("--std", help="Per-channel std, comma list.")]
ResizeOpt = Annotated[
    str | None, typer.Option("--resize", help="letterbox | stretch | center-crop")
]
OutputFormatOpt = Annotated[
    str | None,
    typer.Option("--output-format", help="logits | probs | yolov8 | yolov5 | yolo-nms"),
]


def make_overrides(
    task: str | None = None,
    labels: str | None = None,
    imgsz: str | None = None,
    channels: int | None = None,
    color: str | None = None,
    scale: str | None = None,
    mean: str | None = None,
    std: str | None = None,
    resize: str | None = None,
    output_format: str | None = None,
) -> SpecOverrides:
    """Parse the spec flags into a validated :class:`SpecOverrides`."""
    from toolkit.errors import BadInputError
    from toolkit.spec import COLORS, RESIZE_MODES, TASKS

    if task is not None and task not in TASKS:
        raise BadInputError(f"--task must be one of {', '.join(TASKS)}, got '{task}'")
    if color is not None and color not in COLORS:
        raise BadInputError(f"--color must be one of {', '.join(COLORS)}, got '{color}'")
    if resize is not None and resize not in RESIZE_MODES:
        raise BadInputError(f"--resize must be one of {', '.join(RESIZE_MODES)}, got '{resize}'")
    if channels is not None and channels not in (1, 3):
        raise BadInputError(f"--channels must be 1 or 3, got {channels}")
    return SpecOverrides(
        task=task,
        labels=parse_labels(labels),
        imgsz=parse_imgsz(imgsz),
        channels=channels,
        color=color,
        scale=parse_scale(scale),
        mean=parse_floats(mean, "--mean"),
        std=parse_floats(std, "--std"),
        resize=resize,
        output_format=output_format,
    )


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


def _verbose_requested(kwargs: dict[str, Any]) -> bool:
    if kwargs.get("verbose"):
        return True
    ctx = click_context()
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and root.params.get("verbose"))


def click_context() -> Any:
    import click

    return click.get_current_context(silent=True)


def cli_command(func: F) -> F:
    """Turn ToolkitError into a one-line message and its exit code (2: bad input, 1: failure).

    Tracebacks are shown only with ``--verbose``.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verbose = _verbose_requested(kwargs)
        if verbose:
            logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except ToolkitError as e:
            if verbose:
                traceback.print_exc()
            console.print(f"[red]error:[/red] {escape(_one_line(str(e)))}", soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            console.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as e:
            if verbose:
                traceback.print_exc()
            console.print(
                f"[red]error:[/red] {type(e).__name__}: {escape(_one_line(str(e)))} "
                "(run with --verbose for the traceback)",
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _one_line(msg: str) -> str:
    line = " ".join(msg.split())
    return line if len(line) <= 400 else line[:397] + "..."
