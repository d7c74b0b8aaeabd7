"""Frame sources for the live loop: cameras, streams, files, image folders, synthetic belt.

:func:`open_source` turns the ``--source`` text into a :class:`Source`. A source is read from
one thread (the reader, :mod:`toolkit.video.reader`); ``read()`` returns the next BGR frame or
``None`` at the end. Live sources (cameras, streams, the paced synthetic belt) reopen a stream
that stops, with backoff, and record the gap; files and folders end, and skip (and count)
frames that fail to decode. ``name`` never holds credentials (:func:`redact_url`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.video.redact import redact_url

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
    """A sequence of BGR frames; ``read()`` returns ``None`` when there are no more."""

    name: str = ""
    live: bool = False
    fps: float | None = None

    def __init__(self) -> None:
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


# What a frame rate or a frame side may be: beyond these a value is a typo, not a camera.
MAX_FPS = 240.0
MIN_SIDE, MAX_SIDE = 16, 8192


def check_fps(fps: float | None, what: str = "--fps") -> None:
    if fps is not None and not 0 < fps <= MAX_FPS:
        raise BadInputError(f"{what} must be above 0 and at most {MAX_FPS:g}, got {fps:g}")


def check_side(value: int | None, what: str) -> None:
    if value is not None and not MIN_SIDE <= value <= MAX_SIDE:
        raise BadInputError(f"{what} must be {MIN_SIDE} to {MAX_SIDE} pixels, got {value}")


def _synthetic_options(text: str) -> dict[str, Any]:
    """``synthetic[:fps=15,size=480x640,seed=1,paced=0]`` -> SyntheticSource keywords."""
    _, _, rest = text.partition(":")
    opts: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, _, value = item.partition("=")
        try:
            if key == "fps":
                opts["fps"] = float(value)
                check_fps(opts["fps"], "synthetic fps")
            elif key == "seed":
                opts["seed"] = int(value)
            elif key == "size":
                h, w = (int(v) for v in value.lower().split("x"))
                check_side(h, f"synthetic size={value}: the height")
                check_side(w, f"synthetic size={value}: the width")
                opts["size"] = (h, w)
            elif key == "paced":
                opts["paced"] = value.lower() not in ("0", "false", "no")
            else:
                raise BadInputError(f"unknown synthetic option '{key}' (fps, size, seed, paced)")
        except ValueError:
            raise BadInputError(f"bad synthetic option '{item}'") from None
    return opts


def check_source_settings(
    source: str,
    fps: float | None = None,
    width: int | None = None,
    height: int | None = None,
    reconnect_timeout: float | None = None,
) -> None:
    """Refuse absurd source settings (a zero frame rate, a 0x0 belt) with the limit named.

    Cheap and side-effect free: ``edgetk run`` calls it before the model loads.
    """
    check_fps(fps)
    check_side(width, "--width")
    check_side(height, "--height")
    if reconnect_timeout is not None and not reconnect_timeout > 0:
        raise BadInputError(f"--reconnect-timeout must be positive, got {reconnect_timeout:g}")
    text = str(source).strip()
    if text == "synthetic" or text.startswith("synthetic:"):
        _synthetic_options(text)


def open_source(
    source: str,
    *,
    loop: bool = False,
    stop: threading.Event | None = None,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    reconnect_timeout: float | None = None,
) -> Source:
    """The :class:`Source` that ``--source`` names.

    Forms: ``0`` (camera index), ``/dev/video0``, ``rtsp://...`` (and http, rtmp, tcp, udp),
    ``csi://0`` (Jetson CSI camera), ``gst:PIPELINE`` (must end in an appsink), ``synthetic``
    (``synthetic:fps=30,size=480x640,seed=0,paced=1``), a video file, an image, a folder or a
    glob.

    Raises:
        BadInputError: nothing matches, or the source cannot be opened.
    """
    import cv2

    from toolkit.data.images import IMAGE_SUFFIXES, is_video, list_media, resolve_source
    from toolkit.video.capture import CSI_PIPELINE, CaptureSource, need_gstreamer

    check_source_settings(source, fps, width, height, reconnect_timeout)
    text = str(source).strip()
    name = redact_url(text)
    if text.isdigit():
        return CaptureSource(
            int(text), cv2.CAP_ANY, name=f"camera {text}", stop=stop, width=width,
            height=height, fps=fps, reconnect_timeout=reconnect_timeout,
        )  # fmt: skip
    if text.startswith("/dev/video"):
        if not Path(text).exists():
            raise BadInputError(f"no such camera device: {text}")
        return CaptureSource(
            text, cv2.CAP_V4L2, name=text, stop=stop, width=width, height=height, fps=fps,
            reconnect_timeout=reconnect_timeout,
        )  # fmt: skip
    if text.lower().startswith(STREAM_SCHEMES):
        if text.lower().startswith("rtsp") and "OPENCV_FFMPEG_CAPTURE_OPTIONS" not in os.environ:
            # TCP: a server that goes away closes the connection, so the loss is seen at once
            # (over UDP it is only a silence). A user's own setting wins.
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "rtsp_transport;tcp"
        return CaptureSource(
            text, cv2.CAP_FFMPEG, name=name, stop=stop, timeouts=True,
            reconnect_timeout=reconnect_timeout,
        )  # fmt: skip
    if text.lower().startswith("csi://"):
        sensor = text[len("csi://") :] or "0"
        if not sensor.isdigit():
            raise BadInputError(f"bad CSI camera '{text}' (expected csi://0, csi://1...)")
        need_gstreamer("a CSI camera (csi://N)")
        pipeline = CSI_PIPELINE.format(
            sensor=sensor, width=width or 1280, height=height or 720, fps=int(fps or 30)
        )
        return CaptureSource(
            pipeline, cv2.CAP_GSTREAMER, name=text, stop=stop, reconnect_timeout=reconnect_timeout
        )
    if text.lower().startswith("gst:"):
        need_gstreamer("a GStreamer pipeline (gst:...)")
        return CaptureSource(
            text[4:].strip(), cv2.CAP_GSTREAMER, name=name, stop=stop,
            reconnect_timeout=reconnect_timeout,
        )  # fmt: skip
    if text == "synthetic" or text.startswith("synthetic:"):
        opts = _synthetic_options(text)
        if fps and "fps" not in opts:
            opts["fps"] = fps
        if width and height and "size" not in opts:
            opts["size"] = (height, width)
        return SyntheticSource(**opts)
    path = Path(text)
    if path.is_file() and is_video(path):
        return VideoFileSource(path, loop=loop)
    if path.is_dir():
        files = list_media(path, videos=False)
        if not files:
            raise BadInputError(f"no images in folder {path}")
        return ImageFilesSource(files, name=text, loop=loop)
    if not path.exists() and not set("*?[") & set(text):
        raise BadInputError(
            f"source not found: {name} (expected a camera index, /dev/videoN, a video file, an "
            "image folder or glob, rtsp:// or http:// URL, csi://N, gst:PIPELINE or synthetic)"
        )
    files = [p for p in resolve_source(text) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise BadInputError(f"no images match {text}")
    return ImageFilesSource(files, name=text, loop=loop)
