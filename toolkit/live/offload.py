"""A sink off the loop's thread: its hooks run on a thread of their own, behind a bounded queue.

The loop hands each call over in microseconds and goes on. What happens when the sink falls
behind is the policy the fan-out chooses (:mod:`toolkit.live.fanout`):

- ``lossless=False`` (a live source): a full queue drops the call and counts it; the loop never
  waits, so a stalled broker or a slow browser adds no frame age;
- ``lossless=True`` (a file source, the events file): a full queue makes the caller wait for
  room: nothing is lost, memory stays bounded.

Frames (``write``) and verdicts (``verdict``) have separate bounds: a frame is large and only
the newest matters, a verdict is small and each one counts. A hook that raises on the sink's
thread is kept and raised on the next call from the loop (or by :meth:`Offloaded.close`), as
the :class:`~toolkit.live.sinks.SinkError` the fan-out acts on; calls after it are discarded.
``close`` lets the queue drain, then closes the sink on its thread and waits for it.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

import numpy as np

from toolkit.live.sinks import Sink, SinkError, sink_name

log = logging.getLogger(__name__)

# Calls waiting per kind: frames are large (an annotated 1080p frame is 6 MB), verdicts small.
DEFAULT_BOUNDS = {"write": 4, "verdict": 256, "status": 4, "tick": 8}
CLOSE_TIMEOUT_S = 60.0


class Offloaded(Sink):
    """``inner``'s hooks on a thread of its own (started here), behind bounded queues.

    Attributes:
        dropped: calls dropped on a full queue, per hook (``write``, ``verdict``...).
        inner: the wrapped sink.
    """

    def __init__(
        self,
        inner: Sink,
        *,
        lossless: bool = False,
        bounds: dict[str, int] | None = None,
        close_timeout: float = CLOSE_TIMEOUT_S,
    ) -> None:
        self.inner, self.lossless, self.close_timeout = inner, lossless, close_timeout
        self.name, self.needs_image = sink_name(inner), inner.needs_image
        self.bounds = {**DEFAULT_BOUNDS, **(bounds or {})}
        self.dropped = dict.fromkeys(self.bounds, 0)
        self._items: collections.deque[tuple[str, tuple[Any, ...]]] = collections.deque()
        self._pending = dict.fromkeys(self.bounds, 0)
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._reported = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"sink-{self.name}", daemon=True)
        self._thread.start()

    @property
    def quit(self) -> bool:  # type: ignore[override]
        return self.inner.quit

    @property
    def dropped_total(self) -> int:
        """Everything dropped for this sink: on its queue plus what it dropped itself
        (a sink may count its own losses in an int ``dropped``: a broker's buffer)."""
        own = getattr(self.inner, "dropped", 0)
        return sum(self.dropped.values()) + (own if isinstance(own, int) else 0)

    def write(
        self, event: dict[str, Any], annotated: np.ndarray | None, captured: float | None = None
    ) -> None:
        self._put("write", (dict(event), annotated if self.needs_image else None, captured))

    def verdict(self, event: dict[str, Any], image: np.ndarray | None) -> None:
        self._put("verdict", (dict(event), image if self.needs_image else None))

    def status(self, report: dict[str, Any]) -> None:
        self._put("status", (report,))

    def tick(self, now: float, lost_since: float | None) -> None:
        self._put("tick", (now, lost_since))

    def close(self) -> None:
        """Drain the queue, close the sink on its thread; raise what failed there."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(self.close_timeout)
        if self._thread.is_alive():
            with self._cond:
                left = len(self._items)
            raise SinkError(self.name, f"did not finish within {self.close_timeout:.0f} s "
                            f"({left} calls still queued)")  # fmt: skip
        self._raise_error()

    def _put(self, kind: str, args: tuple[Any, ...]) -> None:
        self._raise_error()
        with self._cond:
            while self._pending[kind] >= self.bounds[kind]:
                if not self.lossless:
                    self.dropped[kind] += 1
                    return
                self._cond.wait(0.1)
                if self._error is not None or self._closing:
                    return
            self._items.append((kind, args))
            self._pending[kind] += 1
            self._cond.notify_all()

    def _raise_error(self) -> None:
        """Raise the sink thread's failure once (SinkError and OSError as they are)."""
        e = self._error
        if e is None or self._reported:
            return
        self._reported = True
        if isinstance(e, SinkError | OSError):
            raise e
        raise SinkError(self.name, f"{type(e).__name__}: {e}") from e

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closing:
                    self._cond.wait()
                if not self._items:
                    break  # closing, and everything is done
                kind, args = self._items.popleft()
                self._pending[kind] -= 1
                self._cond.notify_all()
            if self._error is None:
                self._call(kind, args)
        try:
            self.inner.close()
        except BaseException as e:  # raised on the loop's thread by close()
            if self._error is None:
                self._error = e

    def _call(self, kind: str, args: tuple[Any, ...]) -> None:
        t0 = time.perf_counter()
        try:
            getattr(self.inner, kind)(*args)
        except BaseException as e:  # raised on the loop's thread by the next call
            log.debug("%s sink failed on its thread after %.3f s", self.name,
                      time.perf_counter() - t0)  # fmt: skip
            self._error = e
