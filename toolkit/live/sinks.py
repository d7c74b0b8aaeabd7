"""Where the live loop's results go: events (JSON lines), NG snapshots, video (a window:
:mod:`toolkit.live.display`).

A sink (:class:`Sink`) hears of two streams, and takes what it needs:

- ``write(event, annotated, captured)``: every processed frame (the video, the window, a live
  view);
- ``verdict(event, image)``: every verdict: per frame (the frame's own event and annotated
  image) or, under ``--verdict per-part``, one per part (``"kind": "part"``, its best
  snapshot). The events file and the snapshots listen here, and so does anything that reports
  verdicts to the line.

``status(report)`` comes about once a second with the station's running figures, and
``close()`` once; close is what makes the outputs whole (the video's index is written, files
flushed), and the loop calls it on every way out, Ctrl-C included.

A sink that cannot write (disk full, no permission, a closed pipe on ``--events -``) raises
:class:`SinkError`: the loop stops the run (``stopped_by: "sink_error"``, exit 1) and still
closes every sink, so what was written stays usable: the events file holds whole lines, the
video is finalized and checked to play.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from abc import ABC
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from toolkit.errors import BadInputError, ToolkitError
from toolkit.fileio import apply_umask, check_output

_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}


class Sink(ABC):  # noqa: B024 - every hook is optional; a sink overrides the ones it uses
    """Where the loop's results go: frames (:meth:`write`), verdicts (:meth:`verdict`), the
    running figures (:meth:`status`); :meth:`close` once.

    Attributes:
        name: the sink's name in the summary (``events``, ``snapshots``, ``video``...).
        needs_image: wants the annotated frame (drawing it costs time: only when asked).
        quit: set by a sink that asks the loop to stop (a window's ``q`` or Esc).
    """

    name: str = ""
    needs_image: bool = False
    quit: bool = False

    def write(  # noqa: B027 - optional hook
        self, event: dict[str, Any], annotated: np.ndarray | None, captured: float | None = None
    ) -> None:
        """One processed frame: its event, the annotated frame (None unless ``needs_image``)
        and its capture time (perf_counter)."""

    def verdict(self, event: dict[str, Any], image: np.ndarray | None) -> None:  # noqa: B027
        """One verdict: a frame's event (per-frame verdicts) or a part's (``"kind": "part"``),
        with the annotated frame or the part's best snapshot (None unless ``needs_image``)."""

    def status(self, report: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """The station's running figures, about once a second: the summary's fields so far
        (``frames``, ``fps``, ``ok``, ``ng``, ``counts``, ``latency_ms``, ``frame_age_ms``)
        and ``sources``: per source name, the same plus ``live``, ``lost`` (no signal now),
        ``lost_for_s``, ``reconnects``, ``dropped``."""

    def tick(self, now: float, lost_since: float | None) -> None:  # noqa: B027 - optional hook
        """No frame came by ``now``; ``lost_since``: when the source lost its signal, if it did.

        A sink that follows the clock (the video) marks the time; the others do nothing.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Make the output whole (called once, on every way out)."""


class SinkError(ToolkitError):
    """A sink failed while the run was going (exit 1); ``sink`` names it (``video``...)."""

    exit_code = 1

    def __init__(self, sink: str, reason: str) -> None:
        super().__init__(f"{sink} sink failed: {reason}")
        self.sink, self.reason = sink, reason


def sink_name(sink: Sink) -> str:
    """A sink's name in the summary (``events``, ``snapshots``, ``video``, ``display``)."""
    return sink.name or type(sink).__name__


class EventsSink(Sink):
    """One JSON line per processed frame (``only_ng``: NG frames only), on disk per line.

    A file is written unbuffered, one ``write`` per line, so a run stopped at any moment
    leaves complete lines only; a failed write (disk full) is cut back to the last whole line
    and raises :class:`SinkError`. The path ``-`` means standard output (a pipe into ``jq`` or
    a collector); it is never closed here, the process still owns it, and a reader that goes
    away (a broken pipe) is a :class:`SinkError` too.
    """

    needs_image = False
    name = "events"

    def __init__(self, path: Path, *, only_ng: bool = False, force: bool = False) -> None:
        self.path, self.only_ng, self.count = path, only_ng, 0
        self._raw: BinaryIO | None = None
        self._good = 0  # bytes of whole lines in the file
        if is_stdout(path):
            return
        check_output(path, force)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._raw = path.open("wb", buffering=0)

    def verdict(self, event: dict[str, Any], image: np.ndarray | None) -> None:
        if self.only_ng and event["verdict"] != "NG":
            return
        line = json.dumps(event, separators=(", ", ": ")) + "\n"
        if self._raw is None:
            self._write_stdout(line)
        else:
            self._write_file(line.encode("utf-8"))
        self.count += 1

    def _write_file(self, data: bytes) -> None:
        assert self._raw is not None
        view = memoryview(data)
        try:
            while view:
                view = view[self._raw.write(view) or 0 :]
        except OSError as e:
            # A part of the line may be on disk: cut back to whole lines, so the file parses.
            with contextlib.suppress(OSError):
                os.ftruncate(self._raw.fileno(), self._good)
            raise SinkError("events", f"cannot write {self.path}: {e.strerror or e}") from e
        self._good += len(data)

    def _write_stdout(self, line: str) -> None:
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except OSError as e:
            detach_stdout()
            if isinstance(e, BrokenPipeError):
                reason = "standard output was closed (broken pipe): the reader of --events - left"
            else:
                reason = f"cannot write to standard output: {e.strerror or e}"
            raise SinkError("events", reason) from e

    def close(self) -> None:
        if self._raw is not None and not self._raw.closed:
            self._raw.close()


def detach_stdout() -> None:
    """Point file descriptor 1 at /dev/null after its reader left.

    Python flushes stdout once more at exit; on a broken pipe that flush fails too, prints
    "Exception ignored ... BrokenPipeError" and turns the exit status into 120.
    """
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):  # a test runner's in-memory stdout
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def check_video_suffix(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in _FOURCC:
        raise BadInputError(
            f"--save: cannot write '{suffix}' video (use one of {', '.join(sorted(_FOURCC))})"
        )


def is_stdout(path: str | Path | None) -> bool:
    """True for the path ``-`` (the usual name of standard output on a command line)."""
    return path is not None and str(path) == "-"


# Kept free beside a video being written, so that it can still be finalized: FFmpeg's output
# buffer (256 KiB, written out in whole buffers), the next frame, the index that close writes
# (about 40 bytes a frame) and a margin.
_BUFFER_BYTES = 256 * 1024
_FRAME_BYTES_MIN = 64 * 1024
_INDEX_BYTES_PER_FRAME = 40
_MARGIN_BYTES = 64 * 1024


class VideoSink(Sink):
    """The annotated frames as a video that keeps real time.

    Gap policy: for a live source (``realtime``: camera, stream, paced belt) the video is a
    constant-rate timeline at ``fps`` on the capture clock. Each frame holds its place until
    the next one arrives, so a loop slower than the camera shows every processed frame for as
    long as it was the newest; while the source has lost its signal (see :meth:`tick`) the
    video shows "NO SIGNAL 12.5 s" frames for the whole outage. One second of video is one
    second on the line. Every frame carries its capture time (UTC) at the bottom left. A file
    source is written frame for frame, on its own timeline.

    Written to a temporary file beside ``path`` and renamed into place by :meth:`close`: the
    file at ``path`` is always a finished video, checked to open and hold its frames. A write
    that would leave too little room on the disk to finalize raises :class:`SinkError` first
    (``cv2.VideoWriter`` reports no write errors: the room is measured instead).
    """

    needs_image = True
    name = "video"

    def __init__(
        self, path: Path, fps: float, *, force: bool = False, realtime: bool = False
    ) -> None:
        check_output(path, force)
        check_video_suffix(path)
        suffix = path.suffix.lower()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.fps, self.realtime = path, float(fps), realtime
        self.count = 0  # processed frames in the video
        self.frames = 0  # frames in the file: held frames and NO SIGNAL frames included
        self.no_signal_frames = 0
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer: Any = None
        self._size: tuple[int, int] | None = None
        self._t0: float | None = None  # capture time of the first frame: the video's zero
        self._last: np.ndarray | None = None  # the frame on screen now (held until the next)

    def write(
        self, event: dict[str, Any], annotated: np.ndarray | None, captured: float | None = None
    ) -> None:
        """Realtime: the frame holds its slot on the capture clock (``captured``) until the next."""
        if annotated is None:
            return
        from toolkit.live.overlay import draw_timestamp

        image = self._fit(annotated)
        draw_timestamp(image, event["ts"])
        if not self.realtime or captured is None:
            self._put(image)
            self.count += 1
            return
        if self._t0 is None:
            self._t0 = captured
        slots = self._slot(captured) + 1 - self.frames
        if slots > 0:
            for _ in range(slots - 1):  # the previous frame stays on screen until this one
                self._put(self._last if self._last is not None else image)
            self._put(image)
            self.count += 1
        self._last = image

    def tick(self, now: float, lost_since: float | None) -> None:
        """While the source has no signal, cover the time up to ``now`` with NO SIGNAL frames."""
        if not self.realtime or lost_since is None or self._t0 is None or self._size is None:
            return
        slots = self._slot(now) + 1 - self.frames
        if slots <= 0:
            return
        from toolkit.live.overlay import no_signal_frame

        card = no_signal_frame(self._size, now - lost_since, time.time())
        for _ in range(slots):
            self._put(card)
        self.no_signal_frames += slots
        self._last = card

    def _slot(self, t: float) -> int:
        assert self._t0 is not None
        # The epsilon keeps 0.2 s * 10 FPS in slot 2 (float arithmetic gives 1.999...).
        return int((t - self._t0) * self.fps + 1e-6)

    def _fit(self, annotated: np.ndarray) -> np.ndarray:
        """A copy of the frame at the video's size (the writer opens on the first frame)."""
        import cv2

        h, w = annotated.shape[:2]
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise SinkError("video", f"OpenCV cannot write video {self.path}")
            self._size = (w, h)
        if (w, h) != self._size:
            # An image folder may mix sizes; a video has one.
            return cv2.resize(annotated, self._size, interpolation=cv2.INTER_AREA)
        return annotated.copy()  # the timestamp is drawn on it: other sinks share the frame

    def _put(self, image: np.ndarray) -> None:
        self._check_room()
        self._writer.write(image)
        self.frames += 1

    def _check_room(self) -> None:
        """Raise SinkError unless the disk keeps room to finalize the video after one more frame."""
        try:
            size = os.stat(self._tmp).st_size
            st = os.statvfs(self._tmp.parent)
        except OSError as e:  # the temp file was removed, the folder went away
            raise SinkError("video", f"cannot write {self.path}: {e.strerror or e}") from e
        free = st.f_bavail * st.f_frsize
        # Key frames run to several times the mean; before the first buffer is out, guess.
        mean = size / self.frames if self.frames and size > _BUFFER_BYTES else 0
        need = (
            _BUFFER_BYTES
            + max(_FRAME_BYTES_MIN, int(8 * mean))
            + _INDEX_BYTES_PER_FRAME * (self.frames + 1)
            + _MARGIN_BYTES
        )
        if free < need:
            raise SinkError(
                "video",
                f"disk full: {free // 1024} KiB free in {self.path.parent}, {need // 1024} KiB "
                f"needed to write on and still finalize {self.path.name} ({self.frames} frames "
                "kept)",
            )

    def close(self) -> None:
        """Finalize, check that the file plays, rename it into place (or remove a broken one)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self.frames == 0:  # nothing was written (or the disk was full from the start)
            self._tmp.unlink(missing_ok=True)
            return
        playable = playable_frames(self._tmp)
        if playable == 0:
            self._tmp.unlink(missing_ok=True)
            raise SinkError(
                "video",
                f"{self.path} could not be finalized (the written file does not play; is the "
                "disk full?): the partial file was removed",
            )
        try:
            apply_umask(self._tmp)  # mkstemp made it 0600
            os.replace(self._tmp, self.path)
        except OSError as e:
            self._tmp.unlink(missing_ok=True)
            raise SinkError("video", f"cannot move the video to {self.path}: {e.strerror}") from e
        if playable < self.frames:
            raise SinkError(
                "video", f"{self.path} holds {playable} of the {self.frames} frames written"
            )


def playable_frames(path: Path) -> int:
    """How many frames a video says it holds, 0 unless it opens and its first frame decodes."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0
        ok, frame = cap.read()
        if not ok or frame is None:
            return 0
        n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        return int(n) if n and n > 0 else 1
    finally:
        cap.release()
