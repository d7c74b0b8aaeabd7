"""How a live run is asked to stop: a flag that keeps its reason, and the signals that set it.

The loop, its threads and a reconnecting source all watch one :class:`StopFlag`; the first
request names the reason the summary reports (``stopped_by``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class StopFlag(threading.Event):
    """A stop request that remembers its first reason (``signal``, ``duration``, ``window``).

    ``signal`` is the name of the first signal received (``SIGTERM``, ``SIGINT``), if any.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reason: str | None = None
        self.signal: str | None = None

    def request(self, reason: str) -> None:
        if not self.is_set():
            self.reason = reason
            self.set()


@contextlib.contextmanager
def stop_on_signals(stop: StopFlag) -> Iterator[None]:
    """SIGINT / SIGTERM ask ``stop`` to end the loop cleanly; a second SIGINT interrupts.

    The first signal's name is kept in ``stop.signal``: SIGTERM is a requested stop (exit 0),
    Ctrl-C an interruption (exit 130), both after the sinks are closed and the summary shown.
    Only the main thread can install handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    interrupts = 0

    def handler(signum: int, _frame: FrameType | None) -> None:
        nonlocal interrupts
        if signum == signal.SIGINT:
            interrupts += 1
            if interrupts > 1:  # the user insists: no more finalizing
                raise KeyboardInterrupt
        if stop.signal is None:
            stop.signal = signal.Signals(signum).name
        stop.request("signal")

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
