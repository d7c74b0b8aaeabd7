"""The live loop: source -> preprocess + infer -> postprocess + verdict + sinks, pipelined.

Three threads overlap the work, joined by small bounded queues, so throughput approaches the
slowest stage rather than the sum of all:

1. capture (:class:`~toolkit.live.reader.FrameReader`): reads ahead; a live source keeps only
   its newest frame (drops counted), a file blocks (nothing dropped);
2. preprocess + infer (:class:`~toolkit.live.worker.InferWorker`): batches up to ``batch``
   frames; ONNX Runtime releases the GIL while it computes;
3. postprocess + verdict + sinks (the calling thread, so a display window lives on the main
   thread and signals are seen).

Every frame's stage times, end-to-end latency (read start to sinks done) and frame age
(capture to result) go into bounded reservoirs (:mod:`toolkit.live.stats`); :func:`run_loop`
returns the SPEC's summary.

How a run ends is in the summary's ``stopped_by``: ``end``, ``max_frames``, ``duration``,
``window``, ``signal`` (SIGTERM / Ctrl-C, the one in ``signal``), ``source_lost`` (a live
source gave up reconnecting) or ``sink_error`` (an output could not be written: the sink and
the error are in ``failed_sink``). Every sink is closed on every way out.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from toolkit.backends.base import Session
from toolkit.errors import BadInputError
from toolkit.live.fanout import SinkFanout
from toolkit.live.reader import Frame, FrameReader
from toolkit.live.sinks import Sink
from toolkit.live.sources import Source, utc_iso
from toolkit.live.stats import LoopStats
from toolkit.live.stop import (
    StopFlag,
)
from toolkit.live.verdict import Judge, Result
from toolkit.live.worker import POLL_S, Batch, InferWorker, warm_up
from toolkit.tasks.base import Task

Progress = Callable[[dict[str, Any]], None]


class Overlay(Protocol):
    """Draws a frame's annotated copy: :func:`toolkit.live.overlay.draw_overlay`'s signature."""

    def __call__(
        self, frame: np.ndarray, result: Result, verdict: str, *, fps: float, latency_ms: float,
        roi: tuple[int, int, int, int] | None = None, source: str = "",
    ) -> np.ndarray: ...  # fmt: skip


@dataclass(frozen=True)
class LoopOptions:
    """How long and how the loop runs.

    Attributes:
        max_frames: stop after this many frames have been captured (None: no limit).
        duration: stop after this many seconds (None: no limit).
        batch: frames per inference call (a static-batch model uses its own size).
        queue_size: frames a file source reads ahead.
        warmup: inference calls on a blank frame before capture starts (first-call costs).
    """

    max_frames: int | None = None
    duration: float | None = None
    batch: int = 1
    queue_size: int = 2
    warmup: int = 2


def run_loop(
    session: Session,
    task: Task[Result],
    source: Source,
    *,
    judge: Judge,
    sinks: Sequence[Sink] = (),
    options: LoopOptions | None = None,
    stop: StopFlag | None = None,
    overlay: Overlay | None = None,
    progress: Progress | None = None,
    progress_every: float = 5.0,
) -> dict[str, Any]:
    """Run the live loop until the source ends, a limit is reached or ``stop`` is set.

    Args:
        session: an open session; task: its task (:func:`toolkit.tasks.base.make_task`).
        source: an opened source (closed on return); it shares ``stop``.
        judge: the verdict rule (reject classes, confidence, ROI).
        sinks: where events and annotated frames go (closed on return, whatever happens).
        options: limits and batching.
        stop: set from another thread or a signal handler to stop cleanly.
        overlay: draws the annotated frame (default :func:`toolkit.live.overlay.draw_overlay`).
        progress: called every ``progress_every`` seconds with ``{"frames", "fps", "ok",
            "ng", "dropped"}`` (a status line for a run that lasts all day).

    Returns:
        The SPEC summary: frames, dropped, fps, ok, ng, latency_ms (per stage), frame_age_ms,
        plus source, decode_errors, reconnects, gaps, seconds, stopped_by, signal (the first
        signal received, or None) and failed_sink (``{"sink", "error"}`` or None). A failed
        sink or a lost source is reported here, not raised: the summary is the record.
    """
    from toolkit.live.overlay import draw_overlay

    opts = options or LoopOptions()
    batch = _batch_size(session, opts)
    stop = stop or StopFlag()
    stage = _Results(task, judge, SinkFanout(sinks, stop), source.name, overlay or draw_overlay)
    reader = _reader(source, stop, opts)
    worker: InferWorker | None = None
    t_start = time.perf_counter()
    try:
        warm_up(session, task, judge, opts.warmup)
        t_start = time.perf_counter()
        reader.start()
        worker = InferWorker(reader, session, task, judge, batch, stop)
        worker.start()
        ticker = _Ticker(progress, progress_every, t_start + progress_every, stage, reader)
        _consume(worker, stage, source, stop, opts, t_start, ticker)
        if worker.error is not None:
            raise worker.error
    finally:
        _tear_down(stop, worker, reader, source, stage.sinks)
    seconds = time.perf_counter() - t_start
    stopped_by = _stopped_by(stop, source, stage.counts, opts)
    return _summary(stage, reader, source, batch, seconds, stopped_by, stop.signal)


def _batch_size(session: Session, opts: LoopOptions) -> int:
    """Frames per inference call: a static-batch model's own size, else ``opts.batch``."""
    if opts.batch < 1:
        raise BadInputError(f"--batch must be at least 1, got {opts.batch}")
    fixed = session.static_batch
    return fixed if fixed is not None else opts.batch


def _reader(source: Source, stop: StopFlag, opts: LoopOptions) -> FrameReader:
    """The capture thread for ``source`` (not started yet)."""
    source.stop = stop  # a reconnect backoff ends as soon as the loop stops
    # A file stops reading at the limit; a live source runs on (it drops what the loop skips)
    # until the loop has processed max_frames frames.
    read_limit = None if source.live else opts.max_frames
    return FrameReader(source, stop, queue_size=opts.queue_size, max_frames=read_limit)


def _consume(
    worker: InferWorker,
    stage: _Results,
    source: Source,
    stop: StopFlag,
    opts: LoopOptions,
    t_start: float,
    ticker: _Ticker,
) -> None:
    """Stage 3 until the worker ends: finish each batch, watch the limits, mark idle time."""
    while True:
        if opts.duration is not None and time.perf_counter() - t_start >= opts.duration:
            stop.request("duration")
        if stage.sinks.quit:
            stop.request("window")
        try:
            item = worker.out.get(timeout=POLL_S)
        except queue.Empty:
            stage.sinks.tick(time.perf_counter(), source.lost_since)
            continue
        if item is None:
            return
        stage.finish(item, opts.max_frames)
        if opts.max_frames is not None and stage.counts.frames >= opts.max_frames:
            stop.request("max_frames")
        ticker()


@dataclass
class _Ticker:
    """Calls ``progress`` with the running counts every ``every`` seconds (from ``next_t``)."""

    progress: Progress | None
    every: float
    next_t: float
    stage: _Results
    reader: FrameReader

    def __call__(self) -> None:
        if self.progress is None or time.perf_counter() < self.next_t:
            return
        self.next_t = time.perf_counter() + self.every
        counts = self.stage.counts
        self.progress(
            {
                "frames": counts.frames,
                "fps": round(self.stage.stats.rolling_fps, 1),
                "ok": counts.ok,
                "ng": counts.ng,
                "dropped": self.reader.dropped,
            }
        )


def _tear_down(
    stop: StopFlag,
    worker: InferWorker | None,
    reader: FrameReader,
    source: Source,
    outs: SinkFanout,
) -> None:
    """Stop the threads, release the source and close every sink (on every way out)."""
    stop.set()
    if worker is not None:
        worker.finish()
    reader.close()
    if source.lost:  # the video shows the outage up to the give-up
        outs.tick(time.perf_counter(), source.lost_since)
    outs.close()


def _summary(
    stage: _Results,
    reader: FrameReader,
    source: Source,
    batch: int,
    seconds: float,
    stopped_by: str,
    signal: str | None,
) -> dict[str, Any]:
    """The summary :func:`run_loop` returns (see there)."""
    counts = stage.counts
    elapsed = (counts.last_t - counts.first_t) if counts.first_t is not None else 0.0
    return {
        "frames": counts.frames,
        "dropped": reader.dropped,
        "fps": round(counts.frames / elapsed, 2) if elapsed > 0 else 0.0,
        "ok": counts.ok,
        "ng": counts.ng,
        "latency_ms": stage.stats.latency_ms(),
        "frame_age_ms": stage.stats.frame_age_ms(),
        "source": source.name,
        "live": bool(source.live),
        "batch": batch,
        "decode_errors": source.decode_errors,
        "reconnects": sum(1 for g in source.gaps if g.recovered),
        "gaps": [g.to_dict() for g in source.gaps],
        "seconds": round(seconds, 3),
        "stopped_by": stopped_by,
        "signal": signal,
        "failed_sink": stage.sinks.failed,
    }


def _stopped_by(stop: StopFlag, source: Source, counts: _Counts, opts: LoopOptions) -> str:
    if stop.reason is not None:
        return stop.reason
    if source.lost:
        return "source_lost"
    if opts.max_frames is not None and counts.frames >= opts.max_frames:
        return "max_frames"
    return "end"


@dataclass
class _Counts:
    frames: int = 0
    ok: int = 0
    ng: int = 0
    first_t: float | None = None
    last_t: float = 0.0

    def add(self, verdict: str, t_read: float, done: float) -> None:
        """One frame processed: read from ``t_read``, done at ``done`` (perf_counter)."""
        self.frames += 1
        self.ok += verdict == "OK"
        self.ng += verdict == "NG"
        if self.first_t is None:
            self.first_t = t_read
        self.last_t = done


@dataclass
class _Results:
    """Stage 3: postprocess, verdicts, events, the annotated frame, sinks, statistics."""

    task: Task[Result]
    judge: Judge
    sinks: SinkFanout
    source_name: str
    draw: Overlay
    stats: LoopStats = field(default_factory=LoopStats)
    counts: _Counts = field(default_factory=_Counts)

    def finish(self, item: Batch, max_frames: int | None) -> None:
        """Postprocess one batch and hand each frame's result on."""
        t0 = time.perf_counter()
        results = self.task.postprocess(item.outputs, item.metas)[: len(item.frames)]
        post_s = time.perf_counter() - t0
        for frame, raw in zip(item.frames, results, strict=True):
            if max_frames is not None and self.counts.frames >= max_frames:
                return  # frames read ahead of a --max-frames stop are not processed
            self._frame(frame, raw, item, post_s)

    def _frame(self, frame: Frame, raw: Result, item: Batch, post_s: float) -> None:
        ts = time.perf_counter()
        result, verdict = self.judge(raw)
        event = {
            "ts": utc_iso(frame.wall),
            "frame": frame.index,
            "source": self.source_name,
            "verdict": verdict,
            **result.to_dict(),
        }
        tj = time.perf_counter()
        annotated = None
        if self.sinks.needs_image:
            annotated = self.draw(
                frame.image, result, verdict, fps=self.stats.rolling_fps,
                latency_ms=1000 * (tj - frame.t_read), roi=self.judge.roi, source=self.source_name,
            )  # fmt: skip
        self.sinks.write(event, annotated, frame.t_captured)
        self.sinks.verdict(event, annotated)
        done = time.perf_counter()
        self._record_times(frame, item, post_s + (tj - ts), tj, done)
        self.counts.add(verdict, frame.t_read, done)

    def _record_times(
        self, frame: Frame, item: Batch, post_s: float, judged: float, done: float
    ) -> None:
        """One frame's stage times and its age at the verdict (``judged``)."""
        st = self.stats.stages
        st["capture"].add(frame.t_captured - frame.t_read)
        st["preprocess"].add(item.preprocess_s)
        st["infer"].add(item.infer_s)
        st["postprocess"].add(post_s)
        st["sinks"].add(done - judged)
        st["end_to_end"].add(done - frame.t_read)
        self.stats.age.add(judged - frame.t_captured)
        self.stats.tick(done)
