"""The live loop's sinks as one: each call to every sink, off the loop's thread where it can
be, and what a failing one means.

Which sinks leave the loop's thread (:class:`~toolkit.live.offload.Offloaded`), and how:

| sink | where | a full queue |
| --- | --- | --- |
| display (the window) | the loop's thread: OpenCV's GUI lives on the main thread | - |
| events (the file, or ``-``) | its own thread | waits: the events file is the record, one line per verdict, never a gap |
| video, snapshots, MQTT, OPC UA, web view, any other sink | its own thread | live source: drops and counts; file source: waits |

A live source must not age: a stalled disk, broker or browser loses what it cannot take
(counted in :meth:`SinkFanout.dropped`) rather than holding the loop. A file source is read in
order with nothing dropped, so there a full queue waits instead, as the file's reader does. A
sink may say where it goes with a class attribute ``offload`` (False: stays on the loop's
thread; ``"lossless"``: its own thread, never drops).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.live.offload import Offloaded
from toolkit.live.sinks import EventsSink, Sink, SinkError, sink_name
from toolkit.live.stop import StopFlag

log = logging.getLogger(__name__)


def offload_policy(sink: Sink, live: bool) -> str | None:
    """``None`` (the loop's thread), ``"lossless"`` or ``"drop"``: where ``sink`` runs."""
    from toolkit.live.display import DisplaySink

    wanted = getattr(sink, "offload", None)
    if wanted is False or isinstance(sink, DisplaySink):
        return None
    if wanted == "lossless" or isinstance(sink, EventsSink) or not live:
        return "lossless"
    return "drop"


class SinkFanout:
    """The loop's sinks: one that fails is recorded, written no more, and stops the run.

    The others go on until the loop has drained, and every sink is closed at the end, the
    failed one too (a video is finalized with the frames it has). ``failed`` is the first
    failure, ``{"sink", "error"}`` (None while there is none). ``live``: a source is live
    (what a full queue means: see the module's table).
    """

    def __init__(self, sinks: Sequence[Sink], stop: StopFlag, *, live: bool = False) -> None:
        foreign = [type(s).__name__ for s in sinks if not isinstance(s, Sink)]
        if foreign:  # a sink is a toolkit.live.sinks.Sink: its write/tick/close/quit are relied on
            raise BadInputError(f"not a toolkit.live.sinks.Sink: {', '.join(foreign)}")
        self.stop = stop
        self.needs_image = any(s.needs_image for s in sinks)
        self.failed: dict[str, str] | None = None
        self._dead: set[int] = set()
        self.sinks: list[Sink] = []
        try:
            for s in sinks:
                policy = offload_policy(s, live)
                self.sinks.append(s if policy is None else Offloaded(s, lossless=policy != "drop"))
        except BaseException:
            for s in self.sinks:
                if isinstance(s, Offloaded):
                    s.close()
            raise

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
        """The running figures to every sink, with the sinks' own (``sinks``: ``dropped`` per
        sink, ``failed``)."""
        report = {**report, "sinks": {"dropped": self.dropped(), "failed": self.failed}}
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
        """Close every sink (an offloaded one drains its queue first)."""
        for i, sink in enumerate(self.sinks):
            try:
                sink.close()
            except (SinkError, OSError) as e:
                self._fail(i, sink, e)

    def dropped(self) -> dict[str, int]:
        """Per sink name, what it dropped: calls on its full queue plus what the sink counted
        itself (a broker's buffer, a browser too slow for the stream); 0 for every sink."""
        out: dict[str, int] = {}
        for s in self.sinks:
            own = s.dropped_total if isinstance(s, Offloaded) else getattr(s, "dropped", 0)
            name = sink_name(s)
            out[name] = out.get(name, 0) + (own if isinstance(own, int) else 0)
        return out

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
