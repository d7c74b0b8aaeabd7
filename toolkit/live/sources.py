"""Frame sources for the live loop: files, image folders, the synthetic belt, and the
:class:`Source` base that cameras and streams (:mod:`toolkit.live.capture`) share.

:func:`toolkit.live.open.open_source` turns the ``--source`` text into a :class:`Source`. A
source is read from one thread (the reader, :mod:`toolkit.live.reader`); ``read()`` returns the
next BGR frame or
``None`` at the end. Live sources (cameras, streams, the paced synthetic belt) reopen a stream
that stops, with backoff, and record the gap; files and folders end, and skip (and count)
frames that fail to decode. ``name`` never holds credentials (:func:`redact_url`).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import BadInputError

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "tcp://", "udp://")
# Consecutive unreadable frames after which a video file is taken as ended.
MAX_BAD_FRAMES = 25


def utc_iso(wall: float) -> str:
    """``2026-11-25T16:00:00.000Z`` for a ``time.time()`` value."""
    dt = datetime.fromtimestamp(wall, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Gap:
    """A stretch during which a live source delivered nothing (it was being reopened)."""

    start: str
    seconds: float
    after_frame: int
    recovered: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "seconds": round(self.seconds, 3),
            "after_frame": self.after_frame,
            "recovered": self.recovered,
        }


class Source(ABC):
    """A sequence of BGR frames; ``read()`` returns ``None`` when there are no more.

    ``stop`` is the loop's stop flag (the loop shares its own): a source that waits (a
    reconnect backoff) ends the wait as soon as it is set.
    """

    name: str = ""
    live: bool = False
    fps: float | None = None

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.decode_errors = 0
        self.gaps: list[Gap] = []
        self.frames_read = 0
        # A live source that lost its signal: since when (perf_counter; None while frames
        # come), and whether it gave up for good (its reconnect timeout ran out).
        self.lost_since: float | None = None
        self.lost = False
        self._peeked: np.ndarray | None = None

    @abstractmethod
    def _read(self) -> np.ndarray | None: ...

    def read(self) -> np.ndarray | None:
        """The next frame, or ``None`` at the end of the source."""
        frame, self._peeked = self._peeked, None
        if frame is None:
            frame = self._read()
        if frame is not None:
            self.frames_read += 1
        return frame

    def peek(self) -> np.ndarray | None:
        """The next frame without consuming it (the next :meth:`read` returns it)."""
        if self._peeked is None:
            self._peeked = self._read()
        return self._peeked

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


def valid_frame(frame: Any) -> bool:
    return isinstance(frame, np.ndarray) and frame.size > 0


class VideoFileSource(Source):
    """A video file, frame by frame in order (``loop``: start again at the end)."""

    live = False

    def __init__(self, path: Path, *, loop: bool = False) -> None:
        super().__init__()
        self.path, self.loop, self.name = path, loop, str(path)
        self._cap = self._open()
        self.fps = sane_fps(self._cap.get(cv2_module().CAP_PROP_FPS))

    def _open(self) -> Any:
        cv2 = cv2_module()
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise BadInputError(f"cannot open video {self.path} (corrupt or unsupported codec)")
        return cap

    def _read(self) -> np.ndarray | None:
        frame = self._next()
        if frame is None and self.loop and self.frames_read > 0:
            self._cap.release()
            self._cap = self._open()
            frame = self._next()
        return frame

    def _next(self) -> np.ndarray | None:
        cv2 = cv2_module()
        total = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        for _ in range(MAX_BAD_FRAMES):
            ok, frame = self._cap.read()
            if ok and valid_frame(frame):
                return frame
            pos = self._cap.get(cv2.CAP_PROP_POS_FRAMES)
            # A failed read before the last frame is a bad frame, not the end: skip it.
            if total > 0 and 0 <= pos < total - 1:
                self.decode_errors += 1
                if not self._cap.grab():
                    self._cap.set(cv2.CAP_PROP_POS_FRAMES, pos + 1)
                continue
            return None
        return None

    def close(self) -> None:
        self._cap.release()


class ImageFilesSource(Source):
    """Image files (a folder, recursively, or a glob), in sorted order; bad files are skipped."""

    live = False

    def __init__(self, files: list[Path], *, name: str, loop: bool = False) -> None:
        super().__init__()
        self.files, self.name, self.loop = files, name, loop
        self._i = 0

    def _read(self) -> np.ndarray | None:
        from toolkit.data.images import read_image

        misses = 0
        while misses <= len(self.files):
            if self._i >= len(self.files):
                if not self.loop or self.frames_read == 0:
                    return None
                self._i = 0
            path = self.files[self._i]
            self._i += 1
            try:
                return read_image(path)
            except BadInputError as e:
                self.decode_errors += 1
                misses += 1
                log.warning("skipped %s: %s", path, e)
        return None


class SyntheticSource(Source):
    """Parts moving along a conveyor belt (:class:`toolkit.data.synthetic_det.BeltScene`).

    ``paced``: frames come at ``fps`` like a camera (a live source); otherwise as fast as they
    are asked for, in order (like a file: the demo and tests).
    """

    def __init__(
        self,
        *,
        fps: float = 30.0,
        size: tuple[int, int] = (480, 640),
        seed: int = 0,
        paced: bool = True,
        max_frames: int | None = None,
    ) -> None:
        from toolkit.data.synthetic_det import BeltScene

        super().__init__()
        self.name, self.fps, self.live = "synthetic", float(fps), paced
        self.max_frames = max_frames
        self._scene = BeltScene(seed=seed, size=size, fps=fps)
        self._t0: float | None = None

    def _read(self) -> np.ndarray | None:
        i = self.frames_read
        if self.max_frames is not None and i >= self.max_frames:
            return None
        if self.live:
            now = time.perf_counter()
            self._t0 = now if self._t0 is None else self._t0
            # Like a camera: frame i exists at t0 + i/fps; a late reader skips to the newest.
            due = self._t0 + i / self.fps
            if due > now:
                time.sleep(due - now)
        image, _ = self._scene.frame(i)
        return image


def cv2_module() -> Any:
    import cv2

    return cv2


def sane_fps(fps: float | None) -> float | None:
    # Streams report 0, 90000 (the RTP clock) or NaN when they do not know.
    return float(fps) if fps and 0 < fps <= 240 else None
