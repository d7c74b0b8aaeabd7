"""The call into torch.onnx.export, kept quiet and with errors reduced to their cause.

torch 2.13's exporter (``dynamo=True``) logs warnings, tracebacks of fallbacks and progress
lines; they are collected (and logged at debug level, shown with ``--verbose``) so that the
command's own output, and ``--json``'s single document on stdout, stay clean.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from toolkit.export.checks import ExportError
from toolkit.interrupts import keep_interrupts

log = logging.getLogger(__name__)

# Loggers the exporter stack writes through. torch attaches its own stderr handler to many
# of its loggers (with propagate off), so their handlers are swapped, not just silenced.
_NOISY = ("torch", "onnxscript", "onnx_ir", "onnxslim")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The legacy (TorchScript) exporter is only used for TorchScript programs; 20 is the newest
# opset it writes in torch 2.13.
_LEGACY_DEFAULT_OPSET = 20


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


@contextlib.contextmanager
def quiet_exporter() -> Iterator[list[str]]:
    """Collect the exporter's logs, warnings and prints into the yielded list.

    With debug logging on (``--verbose``) nothing is hidden.
    """
    lines: list[str] = []
    if logging.getLogger("toolkit").isEnabledFor(logging.DEBUG):
        yield lines
        return
    handler = _Collect(lines)
    saved = []
    for logger in _loggers():
        saved.append((logger, logger.handlers[:], logger.propagate))
        logger.handlers = [handler]
        logger.propagate = False
    stdout = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(stdout):
            warnings.simplefilter("always")
            yield lines
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers = handlers
            logger.propagate = propagate
        lines.extend(f"warning: {w.message}" for w in caught)
        lines.extend(ln for ln in stdout.getvalue().splitlines() if ln.strip())
        for line in lines:
            log.debug("exporter: %s", line)


def _loggers() -> list[logging.Logger]:
    names = [n for n in logging.Logger.manager.loggerDict if n.split(".")[0] in _NOISY]
    loggers = [logging.getLogger(n) for n in {*_NOISY, *names}]
    # Only those that would print: their own handlers, or propagation to the root's.
    return [lg for lg in loggers if lg.handlers or lg.parent is logging.root]


def root_cause(e: BaseException) -> str:
    """The innermost exception of a chain, as ``Type: first line``."""
    seen = set()
    while (e.__cause__ or e.__context__) is not None and id(e) not in seen:
        seen.add(id(e))
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    text = _ANSI.sub("", str(e)).strip()
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def torch_to_onnx(
    module: Any,
    example: Any,
    *,
    output_names: list[str],
    dynamic: bool,
    max_batch: int | None,
    opset: int | None,
    hw_stride: int | None = None,
) -> tuple[Any, str, list[str]]:
    """Export ``module`` at ``example``'s shape; return (ModelProto, exporter, log lines).

    nn.Modules and torch.export programs go through the dynamo exporter, in memory (no file
    is written); TorchScript programs need the legacy exporter, which writes a temp file.
    ``hw_stride``: the input's height and width are dynamic, any multiple of it.

    Raises:
        ExportError: the exporter failed; the message gives the innermost cause.
        KeyboardInterrupt: Ctrl-C, also where torch turned it into another exception.
    """
    import torch

    # keep_interrupts: torch can turn a Ctrl-C into TorchExportError (toolkit/interrupts.py).
    with keep_interrupts(), quiet_exporter() as lines:
        log.debug("torch.onnx.export of %s started", type(module).__name__)
        try:
            if isinstance(module, torch.jit.ScriptModule):
                proto = _legacy(module, example, output_names, dynamic, opset, hw_stride)
                return proto, "torchscript", lines
            dynamic_shapes = _dynamic_shapes(dynamic, max_batch, hw_stride)
            program = torch.onnx.export(
                module,
                (example,),
                None,
                dynamo=True,
                external_data=False,
                dynamic_shapes=dynamic_shapes,
                opset_version=opset,
                input_names=["images"],
                output_names=output_names,
                verbose=False,
            )
            return program.model_proto, "dynamo", lines
        except ExportError:
            raise
        except Exception as e:  # the exporter raises many types; all mean "could not export"
            raise ExportError(
                f"torch.onnx.export failed: {root_cause(e)} (run with --verbose for details)"
            ) from e


def _dynamic_shapes(dynamic: bool, max_batch: int | None, hw_stride: int | None) -> Any:
    """torch.export's dynamic shapes of the one input (positional: whatever forward()'s
    argument is called): the batch, and the height and width as multiples of ``hw_stride``
    (a derived dim: strided convs and 2x upsampling concatenated with skips need it)."""
    import torch

    from toolkit.model.spec_schema import MAX_IMGSZ

    axes: dict[int, Any] = {}
    if dynamic:
        axes[0] = torch.export.Dim("batch", min=1, max=max_batch)
    if hw_stride is not None:
        top = MAX_IMGSZ // hw_stride
        axes[2] = hw_stride * torch.export.Dim("height_blocks", min=1, max=top)
        axes[3] = hw_stride * torch.export.Dim("width_blocks", min=1, max=top)
    return (axes,) if axes else None


def _legacy(
    module: Any,
    example: Any,
    output_names: list[str],
    dynamic: bool,
    opset: int | None,
    hw_stride: int | None,
) -> Any:
    import onnx
    import torch

    axes: dict[str, dict[int, str]] | None = None
    if dynamic or hw_stride is not None:
        axes = {n: {0: "batch"} if dynamic else {} for n in ("images", *output_names)}
        if hw_stride is not None:
            axes["images"].update({2: "height", 3: "width"})
    with tempfile.TemporaryDirectory(prefix="edgetk-export-") as tmp:
        path = Path(tmp) / "model.onnx"
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,
            input_names=["images"],
            output_names=output_names,
            dynamic_axes=axes,
            opset_version=opset or _LEGACY_DEFAULT_OPSET,
        )
        return onnx.load(str(path))
