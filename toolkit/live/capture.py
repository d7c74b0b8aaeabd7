"""Cameras, streams and GStreamer pipelines through ``cv2.VideoCapture``, with reconnects.

A live source that stops delivering frames (a camera unplugged, a stream server restarted) is
released and reopened with exponential backoff until it answers again or the loop stops; each
outage is recorded as a :class:`~toolkit.live.sources.Gap` for the summary.

With a reconnect timeout the source gives up that many seconds after its last frame, not
later: a backoff wait is cut at the deadline, and a stream's open and first read are given
only the time left (OpenCV's FFmpeg ``CAP_PROP_OPEN_TIMEOUT_MSEC`` / ``READ_TIMEOUT_MSEC``).
A source that gave up sets ``lost`` (the run then ends as ``source_lost``, exit 1).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.live.sources import (
    MAX_BAD_FRAMES,
    Gap,
    Source,
    cv2_module,
    sane_fps,
    utc_iso,
    valid_frame,
)

log = logging.getLogger(__name__)

# OpenCV's FFmpeg reader waits 30 s by default on a dead stream; a camera that drops out
# should be noticed (and reopened) within seconds.
STREAM_TIMEOUT_MS = 3000
# The least an open or read is given near the deadline (a shorter one fails a healthy stream).
MIN_TIMEOUT_MS = 300
BACKOFF_START_S = 0.25
BACKOFF_MAX_S = 4.0

CSI_PIPELINE = (
    "nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM), width={width}, "
    "height={height}, format=NV12, framerate={fps}/1 ! nvvidconv flip-method=0 ! "
    "video/x-raw, format=BGRx ! videoconvert ! video/x-raw, format=BGR ! "
    "appsink drop=1 max-buffers=1"
)


class CaptureSource(Source):
    """A camera, stream or GStreamer pipeline opened with ``cv2.VideoCapture``.

    Args:
        target: what VideoCapture opens (index, device path, URL or pipeline).
        api: the OpenCV backend (``cv2.CAP_FFMPEG``, ``cv2.CAP_GSTREAMER``, ``cv2.CAP_ANY``...).
        name: the redacted name used in events and logs.
        stop: set when the loop stops; a reconnect wait ends at once.
        reconnect_timeout: give up after this many seconds without a frame (None: never).
        width, height, fps: requests for the device (honoured where it supports them).
    """

    live = True

    def __init__(
        self,
        target: str | int,
        api: int,
        *,
        name: str,
        stop: threading.Event | None = None,
        reconnect_timeout: float | None = None,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        timeouts: bool = False,
    ) -> None:
        super().__init__()
        self.target, self.api, self.name = target, api, name
        self.stop = stop or threading.Event()
        self.reconnect_timeout = reconnect_timeout
        self._request = (width, height, fps)
        self._timeouts = timeouts
        self._cap = self._open()
        if self._cap is None:
            raise BadInputError(f"cannot open source {name}")
        self.fps = sane_fps(self._cap.get(cv2_module().CAP_PROP_FPS)) or fps
        # When the last frame came (an outage, and its deadline, count from there).
        self._last_frame = time.perf_counter()
        self._last_frame_wall = time.time()

    def _open(self, budget_s: float | None = None) -> Any:
        """A capture, or None; a stream's open and reads are bounded by ``budget_s`` too."""
        cv2 = cv2_module()
        params: list[int] = []
        if self._timeouts:
            # A reopen gets only the time left, and no read may block past the reconnect
            # timeout (it would overshoot it); the first open keeps STREAM_TIMEOUT_MS.
            open_ms = _bounded_ms(budget_s)
            read_ms = _bounded_ms(budget_s, self.reconnect_timeout)
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, open_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, read_ms,
            ]  # fmt: skip
        cap = cv2.VideoCapture(self.target, self.api, params)
        if not cap.isOpened():
            cap.release()
            return None
        width, height, fps = self._request
        # Requests only: a device that cannot do them keeps its own mode.
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the reader thread keeps the newest frame itself
        return cap

    def _read(self) -> np.ndarray | None:
        frame = self._read_once()
        if frame is not None:
            self._last_frame, self._last_frame_wall = time.perf_counter(), time.time()
        return frame

    def _read_once(self) -> np.ndarray | None:
        if self._cap is not None:
            ok, frame = self._cap.read()
            if ok and valid_frame(frame):
                return frame
            if ok:
                self.decode_errors += 1
                return self._read_after_bad_frame()
        return self._reconnect()

    def _read_after_bad_frame(self) -> np.ndarray | None:
        for _ in range(MAX_BAD_FRAMES):
            ok, frame = self._cap.read()
            if ok and valid_frame(frame):
                return frame
            if not ok:
                break
            self.decode_errors += 1
        return self._reconnect()

    def _reconnect(self) -> np.ndarray | None:
        """Reopen with exponential backoff until a frame comes, the loop stops or time is up."""
        if self.stop.is_set():
            return None
        t0, wall0 = self._last_frame, self._last_frame_wall
        deadline = None if self.reconnect_timeout is None else t0 + self.reconnect_timeout
        self.lost_since = t0
        log.warning("source %s stopped delivering frames: reconnecting", self.name)
        delay = BACKOFF_START_S
        while not self.stop.is_set():
            self._release()
            left = None if deadline is None else deadline - time.perf_counter()
            if left is not None and left <= 0:
                self.lost = True
                break
            # The wait is cut at the deadline: giving up must not wait a whole backoff step.
            if self.stop.wait(delay if left is None else min(delay, left)):
                break
            delay = min(delay * 2, BACKOFF_MAX_S)
            left = None if deadline is None else deadline - time.perf_counter()
            if left is not None and left <= 0:
                self.lost = True
                break
            frame = self._try_open(left)
            if frame is not None:
                seconds = time.perf_counter() - t0
                self.gaps.append(Gap(utc_iso(wall0), seconds, self.frames_read, True))
                self.lost_since = None
                log.warning("source %s is back after %.1f s", self.name, seconds)
                return frame
        self._release()
        self.gaps.append(Gap(utc_iso(wall0), time.perf_counter() - t0, self.frames_read, False))
        if self.lost:
            log.warning(
                "source %s: no frame for %.1f s, giving up (--reconnect-timeout %g)",
                self.name, time.perf_counter() - t0, self.reconnect_timeout,
            )  # fmt: skip
        return None

    def _try_open(self, budget_s: float | None) -> np.ndarray | None:
        """One reopen attempt: the first frame of the new capture, or None."""
        self._cap = self._open(budget_s)
        if self._cap is None:
            return None
        ok, frame = self._cap.read()
        return frame if ok and valid_frame(frame) else None

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _bounded_ms(*limits_s: float | None) -> int:
    """STREAM_TIMEOUT_MS cut to the smallest limit given (seconds), never under the floor."""
    ms = min([STREAM_TIMEOUT_MS] + [int(v * 1000) for v in limits_s if v is not None])
    return max(MIN_TIMEOUT_MS, ms)


def has_gstreamer() -> bool:
    """True when this OpenCV build can open GStreamer pipelines."""
    import re

    info = cv2_module().getBuildInformation()
    return bool(re.search(r"GStreamer:\s*YES", info))


def need_gstreamer(what: str) -> None:
    if not has_gstreamer():
        raise BadInputError(
            f"{what} needs OpenCV built with GStreamer, and this one is not "
            "(cv2.getBuildInformation() says 'GStreamer: NO'; PyPI opencv-python wheels have "
            "none): on a Jetson use JetPack's system OpenCV (python3-opencv)"
        )
