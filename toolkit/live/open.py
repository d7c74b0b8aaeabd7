"""``--source`` text -> the :class:`~toolkit.live.sources.Source` it names, and the checks on
source settings that ``edgetk run`` makes before the model loads."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError
from toolkit.live.capture import CSI_PIPELINE, CaptureSource, need_gstreamer
from toolkit.live.redact import redact_url
from toolkit.live.sources import (
    STREAM_SCHEMES,
    ImageFilesSource,
    Source,
    SyntheticSource,
    VideoFileSource,
)

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


@dataclass(frozen=True)
class SourceSettings:
    """How ``edgetk run`` opens its source: ``--loop``, what to ask a camera for (``--fps``,
    ``--width``, ``--height``) and how long a lost stream is retried (``--reconnect-timeout``)."""

    loop: bool = False
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    reconnect_timeout: float | None = None

    def check(self, source: str) -> None:
        """:func:`check_source_settings` for ``source`` with these settings."""
        check_source_settings(source, self.fps, self.width, self.height, self.reconnect_timeout)


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
    check_source_settings(source, fps, width, height, reconnect_timeout)
    text = str(source).strip()
    settings = SourceSettings(loop, fps, width, height, reconnect_timeout)
    capture = _open_capture(text, settings, stop)
    if capture is not None:
        return capture
    if text == "synthetic" or text.startswith("synthetic:"):
        return _open_synthetic(text, settings)
    return _open_files(text, loop)


def _open_capture(
    text: str, s: SourceSettings, stop: threading.Event | None
) -> CaptureSource | None:
    """The camera, stream or GStreamer pipeline that ``text`` names (None: it names none)."""
    import cv2

    lower = text.lower()
    if text.isdigit():
        return CaptureSource(
            int(text), cv2.CAP_ANY, name=f"camera {text}", stop=stop, width=s.width,
            height=s.height, fps=s.fps, reconnect_timeout=s.reconnect_timeout,
        )  # fmt: skip
    if text.startswith("/dev/video"):
        if not Path(text).exists():
            raise BadInputError(f"no such camera device: {text}")
        return CaptureSource(
            text, cv2.CAP_V4L2, name=text, stop=stop, width=s.width, height=s.height,
            fps=s.fps, reconnect_timeout=s.reconnect_timeout,
        )  # fmt: skip
    if lower.startswith(STREAM_SCHEMES):
        if lower.startswith("rtsp") and "OPENCV_FFMPEG_CAPTURE_OPTIONS" not in os.environ:
            # TCP: a server that goes away closes the connection, so the loss is seen at once
            # (over UDP it is only a silence). A user's own setting wins.
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "rtsp_transport;tcp"
        return CaptureSource(
            text, cv2.CAP_FFMPEG, name=redact_url(text), stop=stop, timeouts=True,
            reconnect_timeout=s.reconnect_timeout,
        )  # fmt: skip
    if lower.startswith("csi://"):
        return _open_csi(text, s, stop)
    if lower.startswith("gst:"):
        need_gstreamer("a GStreamer pipeline (gst:...)")
        return CaptureSource(
            text[4:].strip(), cv2.CAP_GSTREAMER, name=redact_url(text), stop=stop,
            reconnect_timeout=s.reconnect_timeout,
        )  # fmt: skip
    return None


def _open_csi(text: str, s: SourceSettings, stop: threading.Event | None) -> CaptureSource:
    """``csi://N``: a Jetson CSI camera through GStreamer (1280x720 at 30 FPS unless asked)."""
    import cv2

    sensor = text[len("csi://") :] or "0"
    if not sensor.isdigit():
        raise BadInputError(f"bad CSI camera '{text}' (expected csi://0, csi://1...)")
    need_gstreamer("a CSI camera (csi://N)")
    pipeline = CSI_PIPELINE.format(
        sensor=sensor, width=s.width or 1280, height=s.height or 720, fps=int(s.fps or 30)
    )
    return CaptureSource(
        pipeline, cv2.CAP_GSTREAMER, name=text, stop=stop, reconnect_timeout=s.reconnect_timeout
    )


def _open_synthetic(text: str, s: SourceSettings) -> SyntheticSource:
    """The synthetic belt; its own options win over ``--fps`` and ``--width/--height``."""
    opts = _synthetic_options(text)
    if s.fps and "fps" not in opts:
        opts["fps"] = s.fps
    if s.width and s.height and "size" not in opts:
        opts["size"] = (s.height, s.width)
    return SyntheticSource(**opts)


def _open_files(text: str, loop: bool) -> Source:
    """A video file, an image folder, an image or a glob."""
    from toolkit.data.images import IMAGE_SUFFIXES, is_video, list_media, resolve_source

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
            f"source not found: {redact_url(text)} (expected a camera index, /dev/videoN, a "
            "video file, an image folder or glob, rtsp:// or http:// URL, csi://N, "
            "gst:PIPELINE or synthetic)"
        )
    files = [p for p in resolve_source(text) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise BadInputError(f"no images match {text}")
    return ImageFilesSource(files, name=text, loop=loop)
