"""The capture thread: reads a source ahead of the loop, without lag for live sources.

A live source (camera, stream, paced synthetic belt) keeps only its newest frame: a frame that
the loop has not taken when the next one arrives is replaced and counted as dropped, so the
loop always works on the present, never on a backlog (the RTSP "minutes behind" complaint).
Files and folders go through a small bounded queue: the reader blocks when the loop is busy,
and nothing is dropped.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from toolkit.live.sources import Source

_POLL_S = 0.05


@dataclass
class Frame:
    """One captured frame and when it was captured."""

    image: np.ndarray
    index: int  # position in the source (gaps in the sequence are dropped frames)
    t_read: float  # perf_counter before the source's read call
    t_captured: float  # perf_counter when the frame was in hand
    wall: float  # time.time() at capture, for event timestamps


class FrameReader:
    """Reads ``source`` on a thread; :meth:`get` hands out frames in capture order.

    Args:
        source: the source (its ``live`` flag picks newest-only or blocking mode).
        stop: set by the loop to end reading (a reconnecting source also watches it).
        queue_size: frames read ahead for a file source.
        max_frames: stop after this many frames have been read.
        max_fps: a cap on the rate: a live source's frames that come sooner than ``1/max_fps``
            after the last one kept are dropped (counted); a file is read no faster.
        ready: set whenever a frame is ready or the source ended (one loop waits on several
            readers).
    """

    def __init__(
        self,
        source: Source,
        stop: threading.Event,
        *,
        queue_size: int = 4,
        max_frames: int | None = None,
        max_fps: float | None = None,
        ready: threading.Event | None = None,
    ) -> None:
        self.source, self.stop = source, stop
        self.live = bool(source.live)
        self.max_frames = max_frames
        self.min_interval = 1.0 / max_fps if max_fps else 0.0
        self.dropped = 0
        self.ready = ready or threading.Event()
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=max(1, queue_size))
        self._slot: Frame | None = None
        self._ended = False
        self._drained = False  # a file's end marker was taken
        self._closed = threading.Event()  # this reader only (the loop's stop ends them all)
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="edgetk-capture", daemon=True)

    def start(self) -> FrameReader:
        self._thread.start()
        return self

    def _stopped(self) -> bool:
        return self.stop.is_set() or self._closed.is_set()

    def _run(self) -> None:
        index = 0
        kept_t = -float("inf")  # capture time of the last frame kept (the FPS cap)
        try:
            while not self._stopped():
                if self.max_frames is not None and index >= self.max_frames:
                    break
                if not self.live and self.min_interval:
                    time.sleep(max(0.0, kept_t + self.min_interval - time.perf_counter()))
                t0 = time.perf_counter()
                image = self.source.read()
                t1 = time.perf_counter()
                if image is None:
                    break
                # A live source's index counts every frame it delivered, so drops show as gaps.
                frame = Frame(image, index, t0, t1, time.time())
                index += 1
                if self.live and t1 - kept_t < self.min_interval:
                    self.dropped += 1  # above the source's FPS cap
                    continue
                kept_t = t1
                self._put(frame)
        except BaseException as e:  # handed to the consumer by get(), re-raised there
            self._error = e
        finally:
            self._finish()

    def _put(self, frame: Frame) -> None:
        if self.live:
            with self._cond:
                if self._slot is not None:
                    self.dropped += 1
                self._slot = frame
                self._cond.notify_all()
            self.ready.set()
            return
        while not self._stopped():
            try:
                self._queue.put(frame, timeout=_POLL_S)
                self.ready.set()
                return
            except queue.Full:
                continue

    def _finish(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()
        self.ready.set()
        if not self.live:
            while True:
                try:
                    self._queue.put(None, timeout=_POLL_S)
                    self.ready.set()
                    return
                except queue.Full:
                    if self._stopped():
                        return

    @property
    def done(self) -> bool:
        """The source ended and every frame it read was taken."""
        if self.live:
            return self._ended and self._slot is None
        return self._drained or (self._ended and self._stopped())

    def get(self, timeout: float | None = None) -> Frame | None:
        """The next frame; ``None`` at the end of the source or when stopped.

        Raises:
            Exception: whatever the source raised on the reader thread.
            TimeoutError: no frame within ``timeout`` (the source is still running).
        """
        deadline = None if timeout is None else time.perf_counter() + timeout
        if self.live:
            with self._cond:
                while self._slot is None and not self._ended:
                    wait = _POLL_S if deadline is None else deadline - time.perf_counter()
                    if wait <= 0:
                        raise TimeoutError
                    self._cond.wait(min(wait, _POLL_S))
                    if self.stop.is_set() and self._slot is None:
                        break
                frame, self._slot = self._slot, None
            if frame is None:
                self._raise_error()
            return frame
        while True:
            wait = _POLL_S if deadline is None else deadline - time.perf_counter()
            if wait <= 0:
                raise TimeoutError
            try:
                frame = self._queue.get(timeout=min(wait, _POLL_S))
            except queue.Empty:
                if self.stop.is_set() and self._ended:
                    frame = None
                else:
                    continue
            if frame is None:
                self._drained = True
                self._raise_error()
            return frame

    def poll(self) -> Frame | None:
        """A frame if one is ready now, else ``None`` (never waits; see :attr:`done`).

        Raises:
            Exception: whatever the source raised on the reader thread, once it has ended.
        """
        if self.live:
            with self._cond:
                frame, self._slot = self._slot, None
                ended = self._ended
            if frame is None and ended:
                self._raise_error()
            return frame
        if self._drained:
            return None
        try:
            frame = self._queue.get_nowait()
        except queue.Empty:
            return None
        if frame is None:  # the end marker
            self._drained = True
            self._raise_error()
        return frame

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def close(self, timeout: float = 5.0) -> None:
        """Stop reading and release the source."""
        self._closed.set()
        # Unblock a reader waiting on a full queue.
        while not self._queue.empty():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout)
        self.source.close()
