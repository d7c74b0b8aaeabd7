"""One-line notices the commands print beside their results (never errors, never on stdout
with ``--json``: they go through ``console``)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from toolkit.cli.common import console


def random_weights_text(model: str | Path, source: str | None = None) -> str:
    """Why the outputs of ``model`` mean nothing yet, and what to pass instead.

    ``model`` is what the user named (a reference or an ``.onnx`` file); ``source`` is the
    reference an ONNX file was exported from, when known.
    """
    text = str(model)
    if text.lower().endswith(".onnx"):
        why = f" ({_reason(source)})" if source else ""
        return (
            f"{Path(text).name} was exported with random weights{why}; "
            "its outputs mean nothing (export it with --weights)"
        )
    return f"{_reason(text)}; using random initialization (pass --weights)"


def _reason(ref: str) -> str:
    if ref.startswith("zoo:"):
        return f"{ref} has no shipped weights"
    return f"{ref} is built without pretrained weights (edgetk downloads none)"


def note_random_weights(model: str | Path, source: str | None = None) -> None:
    """Print the random-weights notice: one line, on the console (stderr with --json)."""
    console.print(
        f"[yellow]note:[/yellow] {escape(random_weights_text(model, source))}", soft_wrap=True
    )


def note_emulated(emulated: str | None) -> None:
    """``note: emulated: TensorRT int8 semantics on CPU (Q/DQ run as float)``: the results are
    the target's int8, not this CPU's int8 kernels (nothing is printed for a native session)."""
    if emulated is None:
        return
    console.print(f"[yellow]note:[/yellow] {escape(emulation_text(emulated))}", soft_wrap=True)


def emulation_text(emulated: str) -> str:
    from toolkit.backends.ort import EMULATED_TRT, EMULATION_NOTE

    return EMULATION_NOTE if emulated == EMULATED_TRT else f"emulated: {emulated}"
