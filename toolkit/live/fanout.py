"""The live loop's sinks as one: each frame to every sink, and what a failing one means."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.live.sinks import Sink, SinkError, sink_name
from toolkit.live.stop import StopFlag

log = logging.getLogger(__name__)


class SinkFanout:
    """The loop's sinks: one that fails is recorded, written no more, and stops the run.

    The others go on until the loop has drained, and every sink is closed at the end, the
    failed one too (a video is finalized with the frames it has). ``failed`` is the first
    failure, ``{"sink", "error"}`` (None while there is none).
    """

    def __init__(self, sinks: Sequence[Sink], stop: StopFlag) -> None:
        foreign = [type(s).__name__ for s in sinks if not isinstance(s, Sink)]
        if foreign:  # a sink is a toolkit.live.sinks.Sink: its write/tick/close/quit are relied on
            raise BadInputError(f"not a toolkit.live.sinks.Sink: {', '.join(foreign)}")
        self.sinks, self.stop = list(sinks), stop
        self.needs_image = any(s.needs_image for s in self.sinks)
        self.failed: dict[str, str] | None = None
        self._dead: set[int] = set()

    def write(self, event: dict[str, Any], annotated: np.ndarray | None, captured: float) -> None:
        """A processed frame to every sink."""
        for i, sink in self._live():
            try:
                sink.write(event, annotated, captured)
            except (SinkError, OSError) as e:
                self._fail(i, sink, e)

    def verdict(self, event: dict[str, Any], image: np.ndarray | None) -> None:
        """A verdict (a frame's or a part's) to every sink."""
        for i, sink in self._live():
            try:
                sink.verdict(event, image)
            except (SinkError, OSError) as e:
                self._fail(i, sink, e)

    def status(self, report: dict[str, Any]) -> None:
        """The running figures to every sink."""
        for i, sink in self._live():
            try:
                sink.status(report)
            except (SinkError, OSError) as e:
                self._fail(i, sink, e)

    def tick(self, now: float, lost_since: float | None) -> None:
        """Let sinks that follow the clock (the video) mark time while no frame comes."""
        for i, sink in self._live():
            try:
                sink.tick(now, lost_since)
            except (SinkError, OSError) as e:
                self._fail(i, sink, e)

    def close(self) -> None:
        for i, sink in enumerate(self.sinks):
            try:
                sink.close()
            except (SinkError, OSError) as e:
                self._fail(i, sink, e)

    @property
    def quit(self) -> bool:
        """A sink asks the loop to stop (a window's ``q``)."""
        return any(s.quit for s in self.sinks)

    def _live(self) -> list[tuple[int, Sink]]:
        return [(i, s) for i, s in enumerate(self.sinks) if i not in self._dead]

    def _fail(self, i: int, sink: Sink, e: SinkError | OSError) -> None:
        self._dead.add(i)
        reason = e.reason if isinstance(e, SinkError) else (e.strerror or str(e))
        log.warning("%s sink failed: %s", sink_name(sink), reason)
        if self.failed is None:
            self.failed = {"sink": sink_name(sink), "error": reason}
        self.stop.request("sink_error")
