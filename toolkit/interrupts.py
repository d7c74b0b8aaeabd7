"""Ctrl-C stays Ctrl-C through third-party code that turns it into another exception.

``torch.onnx.export`` is one: torch.export imports ``torch._dynamo`` lazily, a Ctrl-C during
that import leaves the module half made, the exporter's ``except torch._dynamo.exc.UserError``
clause then raises AttributeError (with the KeyboardInterrupt as its context), and the
exporter reports that as ``TorchExportError`` (or tries its next capture strategy). The CLI
would say "export failed" and exit 1 instead of 130.

:func:`keep_interrupts` notes a SIGINT while the block runs (its handler raises
KeyboardInterrupt, as Python's own does) and re-raises KeyboardInterrupt when the block ends
with any other exception, or even with success after an interrupt was swallowed. Off the main
thread, or under a handler someone else installed, it only looks for a KeyboardInterrupt in
the exception's cause/context chain.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType


def interrupted_chain(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, or was caused by or raised while handling, a KeyboardInterrupt."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class keep_interrupts:  # noqa: N801 (used like a function: ``with keep_interrupts():``)
    """Context manager: a Ctrl-C inside the block leaves it as KeyboardInterrupt."""

    def __init__(self) -> None:
        self.hit = False
        self._installed = False

    def __enter__(self) -> keep_interrupts:
        self.hit = False
        self._installed = (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        )
        if self._installed:
            signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.hit = True
        raise KeyboardInterrupt

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if isinstance(exc, KeyboardInterrupt):
            return False
        if self.hit or interrupted_chain(exc):
            # Whatever the library made of it, the user asked to stop.
            raise KeyboardInterrupt from None
        return False
