"""``--save`` for a station: one video per source, ``out.<source>.mp4`` beside ``out.mp4``.

A video has one size and one clock; frames of several cameras interleaved in one file would
be neither. Each source's frames go to their own :class:`~toolkit.live.sinks.VideoSink`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from toolkit.live.sinks import Sink, SinkError, VideoSink


def source_video_path(path: Path, name: str) -> Path:
    """``out.mp4`` + ``top`` -> ``out.top.mp4``."""
    return path.with_name(f"{path.stem}.{name}{path.suffix}")


class SourceVideos(Sink):
    """One :class:`VideoSink` per source name (``fps``: each source's rate)."""

    needs_image = True
    name = "video"

    def __init__(
        self, path: Path, fps: dict[str, float], *, force: bool = False, realtime: bool = False
    ) -> None:
        self.path = path
        self.videos: dict[str, VideoSink] = {}
        try:
            for name, rate in fps.items():
                self.videos[name] = VideoSink(
                    source_video_path(path, name), rate, force=force, realtime=realtime
                )
        except BaseException:
            self.close()
            raise

    def write(
        self, event: dict[str, Any], annotated: np.ndarray | None, captured: float | None = None
    ) -> None:
        video = self.videos.get(str(event.get("source")))
        if video is not None:
            video.write(event, annotated, captured)

    def tick(self, now: float, lost_since: float | None) -> None:
        for video in self.videos.values():
            video.tick(now, lost_since)

    def close(self) -> None:
        """Close every video; the first failure is raised after all were closed."""
        first: SinkError | None = None
        for video in self.videos.values():
            try:
                video.close()
            except SinkError as e:
                first = first or e
        if first is not None:
            raise first

    def summary(self) -> dict[str, Any]:
        return {
            name: {"path": str(v.path), "frames": v.frames, "processed_frames": v.count}
            for name, v in self.videos.items()
        }
