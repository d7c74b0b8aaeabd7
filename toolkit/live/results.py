"""The live loop's third stage: postprocess, verdicts, events, the annotated frame, the sinks.

Each batch's results are routed back to their sources (:class:`FeedState`): every source has
its own verdict rule (ROI, reject classes, confidence), statistics, counts and, under
``--verdict per-part``, its own tracker of parts. The station's totals are kept beside them.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from toolkit.live.fanout import SinkFanout
from toolkit.live.reader import Frame, FrameReader
from toolkit.live.sources import Source, utc_iso
from toolkit.live.stats import LoopStats
from toolkit.live.verdict import Judge, Result
from toolkit.live.worker import Batch
from toolkit.tasks.base import Task


class Overlay(Protocol):
    """Draws a frame's annotated copy: :func:`toolkit.live.overlay.draw_overlay`'s signature."""

    def __call__(
        self, frame: np.ndarray, result: Result, verdict: str, *, fps: float, latency_ms: float,
        roi: tuple[int, int, int, int] | None = None, source: str = "",
    ) -> np.ndarray: ...  # fmt: skip


class Parts(Protocol):
    """Per-part verdicts of one source (:class:`toolkit.live.parts.PartVerdicts`)."""

    counts: dict[str, int]
    totals: dict[str, int]  # parts judged: "parts", "ok", "ng"

    def update(
        self, frame_index: int, ts: str, result: Result, verdict: str, image: np.ndarray | None
    ) -> list[tuple[dict[str, Any], np.ndarray | None]]: ...

    def flush(self) -> list[tuple[dict[str, Any], np.ndarray | None]]: ...


@dataclass
class Counts:
    """Frames and verdicts; ``classes``: per class label, the frames (or parts) showing it."""

    frames: int = 0
    ok: int = 0
    ng: int = 0
    first_t: float | None = None
    last_t: float = 0.0
    classes: Counter[str] = field(default_factory=Counter)

    def add(self, verdict: str, t_read: float, done: float) -> None:
        """One frame processed: read from ``t_read``, done at ``done`` (perf_counter)."""
        self.frames += 1
        self.ok += verdict == "OK"
        self.ng += verdict == "NG"
        if self.first_t is None:
            self.first_t = t_read
        self.last_t = done

    @property
    def fps(self) -> float:
        elapsed = (self.last_t - self.first_t) if self.first_t is not None else 0.0
        return round(self.frames / elapsed, 2) if elapsed > 0 else 0.0


@dataclass
class FeedState:
    """One source of the station: what it reads, its rule, its figures."""

    name: str
    source: Source
    reader: FrameReader
    judge: Judge
    parts: Parts | None = None
    stats: LoopStats = field(default_factory=LoopStats)
    counts: Counts = field(default_factory=Counts)


def _labels(result: Result) -> list[str]:
    labels = getattr(result, "labels", None)
    if labels is None:
        return []
    labels = list(labels)
    return labels[:1] if not hasattr(result, "xyxy") else sorted(set(labels))


@dataclass
class Results:
    """Stage 3 for every source: the verdicts, the events, the sinks, the statistics."""

    task: Task[Result]
    feeds: list[FeedState]
    sinks: SinkFanout
    draw: Overlay
    merge: Any = None  # merges a frame's tile results (toolkit.tasks.tiles.merge_tiles)
    heatmaps: Any = None  # NG frames' heatmaps (toolkit.live.heatmaps.SnapshotHeatmaps)
    stats: LoopStats = field(default_factory=LoopStats)
    counts: Counts = field(default_factory=Counts)
    explain: dict[str, Any] | None = None  # the heatmaps' figures, once closed

    def finish(self, item: Batch, max_frames: int | None) -> None:
        """Postprocess one batch and hand each frame's result on to its source."""
        t0 = time.perf_counter()
        flat: list[Result] = []
        for outputs, metas, n in item.chunks:
            flat.extend(self.task.postprocess(outputs, metas)[:n])
        results = self._per_frame(flat, item)
        post_s = time.perf_counter() - t0
        for frame, feed, raw in zip(item.frames, item.feeds, results, strict=True):
            if max_frames is not None and self.counts.frames >= max_frames:
                return  # frames read ahead of a --max-frames stop are not processed
            self._frame(self.feeds[feed], frame, raw, item, post_s)

    def _per_frame(self, flat: list[Result], item: Batch) -> list[Result]:
        """One result per frame: a tiled frame's tile results merged into one."""
        if not any(t is not None for t in item.tiles):
            return flat
        out, k = [], 0
        for tiles in item.tiles:
            if tiles is None:
                out.append(flat[k])
                k += 1
            else:
                out.append(self.merge(flat[k : k + len(tiles)], tiles))
                k += len(tiles)
        return out

    def _frame(
        self, feed: FeedState, frame: Frame, raw: Result, item: Batch, post_s: float
    ) -> None:
        ts = time.perf_counter()
        result, verdict = feed.judge(raw)
        event = {
            "ts": utc_iso(frame.wall),
            "frame": frame.index,
            "source": feed.name,
            "verdict": verdict,
            **result.to_dict(),
        }
        tj = time.perf_counter()
        annotated = None
        if self.sinks.needs_image:
            annotated = self.draw(
                frame.image, result, verdict, fps=feed.stats.rolling_fps,
                latency_ms=1000 * (tj - frame.t_read), roi=feed.judge.roi, source=feed.name,
            )  # fmt: skip
        self.sinks.write(event, annotated, frame.t_captured)
        if feed.parts is None:
            self.sinks.verdict(event, annotated)
            self._count_classes(feed, result, verdict)
            if verdict == "NG" and self.heatmaps is not None:
                self.heatmaps.submit(event, feed.judge.crop(frame.image))  # never waits
        else:
            hw = frame.image.shape[:2]
            ended = feed.parts.update(
                frame.index, event["ts"], result, verdict, annotated, frame_hw=(hw[0], hw[1])
            )
            for part, image in ended:
                self.part(feed, part, image)
        done = time.perf_counter()
        for stats in (feed.stats, self.stats):
            record_times(stats, frame, item, post_s + (tj - ts), tj, done)
        feed.counts.add(verdict, frame.t_read, done)
        self.counts.add(verdict, frame.t_read, done)

    def _count_classes(self, feed: FeedState, result: Result, verdict: str) -> None:
        if verdict == "NG":
            for label in _labels(result):
                feed.counts.classes[label] += 1
                self.counts.classes[label] += 1

    def part(self, feed: FeedState, event: dict[str, Any], image: np.ndarray | None) -> None:
        """A part's verdict: to the sinks, into the counts."""
        self.sinks.verdict(event, image)
        for label in event.get("defects", ()):  # the reject classes of an NG part
            feed.counts.classes[label] += 1
            self.counts.classes[label] += 1

    def close_heatmaps(self) -> None:
        if self.heatmaps is not None and self.explain is None:
            self.explain = self.heatmaps.close()

    def flush_parts(self) -> None:
        """The parts still in view at the end of the run get their verdicts."""
        for feed in self.feeds:
            if feed.parts is not None:
                for part, image in feed.parts.flush():
                    self.part(feed, part, image)


def record_times(
    stats: LoopStats, frame: Frame, item: Batch, post_s: float, judged: float, done: float
) -> None:
    """One frame's stage times and its age at the verdict (``judged``)."""
    st = stats.stages
    st["capture"].add(frame.t_captured - frame.t_read)
    st["preprocess"].add(item.preprocess_s)
    st["infer"].add(item.infer_s)
    st["postprocess"].add(post_s)
    st["sinks"].add(done - judged)
    st["end_to_end"].add(done - frame.t_read)
    stats.age.add(judged - frame.t_captured)
    stats.tick(done)
