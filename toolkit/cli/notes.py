"""One-line notices the commands print beside their results (never errors, never on stdout
with ``--json``: they go through ``console``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from toolkit.cli.common import console

if TYPE_CHECKING:
    from toolkit.data.images import SkippedImage


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
    from toolkit.backends.ort_options import emulation_note

    return emulation_note(emulated)


def note_skipped(skipped: Sequence[SkippedImage | dict[str, str]]) -> None:
    """``warning: skipped 1: zz.png: cannot decode``: unreadable images were left out (nothing
    is printed when none were; --strict makes one an error)."""
    from toolkit.data.images import SkippedImage, skipped_text

    if not skipped:
        return
    items = [s if isinstance(s, SkippedImage) else SkippedImage(s["source"], s["reason"])
             for s in skipped]  # fmt: skip
    console.print(f"[yellow]warning:[/yellow] {escape(skipped_text(items))}", soft_wrap=True)
