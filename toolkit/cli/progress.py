"""The commands' one progress display: rich bars and spinners on a terminal, nothing elsewhere
(CI logs, ``--json`` pipes), so that a script reads the results alone."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from toolkit.cli.common import console


class ProgressBars:
    """One bar per stage (read, calibrate, validating, training...), named by the stage.

    The object is the library's ``progress(stage, done, total)`` callback (``edgetk quantize``);
    :meth:`stage` and :meth:`epochs` give the narrower callbacks other library functions take.
    Use it as a context manager. ``transient`` bars vanish when done.
    """

    def __init__(self, enabled: bool | None = None, *, transient: bool = True) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.enabled = console.is_terminal if enabled is None else enabled
        self.bars = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[text]}"),
            console=console, transient=transient, disable=not self.enabled,
        )  # fmt: skip
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> ProgressBars:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.__exit__(None, None, None)

    def __call__(self, stage: str, done: int, total: int, text: str = "") -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bars.add_task(stage, total=total, text=text)
        self.bars.update(self.tasks[stage], completed=done, total=total, text=text)

    def stage(self, name: str) -> Callable[[int, int], None] | None:
        """``progress(done, total)`` drawing the bar ``name``; None when disabled."""
        if not self.enabled:
            return None
        return lambda done, total: self(name, done, total)

    def epochs(self, name: str = "training") -> Callable[[int, int, str], None] | None:
        """``progress(done_epochs, total_epochs, text)`` (training); None when disabled."""
        if not self.enabled:
            return None
        return lambda done, total, text: self(name, done, total, text)


@contextlib.contextmanager
def spinner(text: str) -> Iterator[Callable[[str], None]]:
    """A spinner showing ``text`` on a terminal; yields a function that shows ``text: detail``."""
    if not console.is_terminal:
        yield lambda detail: None
        return
    with console.status(text, spinner="dots") as status:
        yield lambda detail: status.update(f"{text}: {detail}")
