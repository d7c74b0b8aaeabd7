"""The live loop: source -> preprocess + infer -> postprocess + verdict + sinks, pipelined.

Three threads overlap the work, joined by small bounded queues, so throughput approaches the
slowest stage rather than the sum of all:

1. capture (:class:`~toolkit.live.reader.FrameReader`, one per source): reads ahead; a live
   source keeps only its newest frame (drops counted), a file blocks (nothing dropped);
2. preprocess + infer (:class:`~toolkit.live.worker.InferWorker`): batches up to ``batch``
   frames from every source into one call; ONNX Runtime releases the GIL while it computes;
3. postprocess + verdict + sinks (:mod:`toolkit.live.results`, on the calling thread, so a
   display window lives on the main thread and signals are seen).

A station (:func:`run_station`) is several sources on one model; :func:`run_loop` is the
one-source case.

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
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from toolkit.backends.base import Session
from toolkit.errors import BadInputError
from toolkit.live.fanout import SinkFanout
from toolkit.live.reader import FrameReader
from toolkit.live.results import FeedState, Overlay, Parts, Results
from toolkit.live.sinks import Sink
from toolkit.live.sources import Source
from toolkit.live.stop import StopFlag
from toolkit.live.summary import station_summary, status_report
from toolkit.live.verdict import Judge, Result
from toolkit.live.worker import POLL_S, Feed, InferSettings, InferWorker, warm_up
from toolkit.tasks.base import Task

Progress = Callable[[dict[str, Any]], None]
# How often sinks get the station's running figures (Sink.status).
STATUS_EVERY_S = 1.0


@dataclass(frozen=True)
class LoopOptions:
    """How long and how the loop runs.

    Attributes:
        max_frames: stop after this many frames have been processed, all sources together
            (None: no limit).
        duration: stop after this many seconds (None: no limit).
        batch: frames per inference call (a static-batch model uses its own size; None: one
            per source, times the tiles of a frame).
        batch_wait_ms: how long a batch waits for more live frames after its first.
        queue_size: frames a file source reads ahead.
        warmup: inference calls on a blank frame before capture starts (first-call costs).
        square: letterbox to the square input even for a model with dynamic H and W.
        tiles: cut each frame into tiles (a :class:`toolkit.tasks.tiles.TileGrid`).
    """

    max_frames: int | None = None
    duration: float | None = None
    batch: int | None = None
    batch_wait_ms: float = 5.0
    queue_size: int = 2
    warmup: int = 2
    square: bool = False
    tiles: Any = None


@dataclass(frozen=True)
class StationFeed:
    """One source of a station: the opened source, its name, rule, FPS cap, parts."""

    name: str
    source: Source
    judge: Judge
    max_fps: float | None = None
    parts: Parts | None = None


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
    """Run the live loop on one source until it ends, a limit is reached or ``stop`` is set.

    See :func:`run_station` (this is a station of one source, named after it).
    """
    return run_station(
        session, task, [StationFeed(source.name, source, judge)], sinks=sinks, options=options,
        stop=stop, overlay=overlay, progress=progress, progress_every=progress_every,
    )  # fmt: skip


def run_station(
    session: Session,
    task: Task[Result],
    feeds: Sequence[StationFeed],
    *,
    sinks: Sequence[Sink] = (),
    options: LoopOptions | None = None,
    stop: StopFlag | None = None,
    overlay: Overlay | None = None,
    progress: Progress | None = None,
    progress_every: float = 5.0,
    heatmaps: Any = None,
) -> dict[str, Any]:
    """Run the live loop on every source of ``feeds`` until they end, a limit or ``stop``.

    Args:
        session: an open session; task: its task (:func:`toolkit.tasks.base.make_task`).
        feeds: the opened sources (closed on return), each with its verdict rule.
        sinks: where events and annotated frames go (closed on return, whatever happens).
        options: limits, batching, rect and tiles. stop: set to stop cleanly.
        overlay: draws the annotated frame (default ``toolkit.live.overlay.draw_overlay``).
        progress: called every ``progress_every`` seconds with ``{"frames", "fps", "ok",
            "ng", "dropped"}``. heatmaps: NG frames' heatmaps (closed on return).

    Returns:
        The SPEC summary (:func:`toolkit.live.summary.station_summary`), per source in
        ``sources``. A failed sink or a lost source is reported there, not raised.
    """
    from toolkit.live.overlay import draw_overlay

    opts = options or LoopOptions()
    batch = batch_size(session, opts, len(feeds))
    stop = stop or StopFlag()
    ready = threading.Event()
    states = [_state(f, stop, opts, ready) for f in feeds]
    fanout = SinkFanout(sinks, stop, live=any(bool(f.source.live) for f in feeds))
    stage = Results(task, states, fanout, overlay or draw_overlay, _merger(task, opts), heatmaps)
    settings = InferSettings(square=opts.square, tiles=opts.tiles)
    worker: InferWorker | None = None
    t_start = time.perf_counter()
    try:
        warm_up(session, task, opts.warmup, settings)
        t_start = time.perf_counter()
        for st in states:
            st.reader.start()
        worker = InferWorker(
            [Feed(st.reader, st.judge) for st in states], session, task, batch, stop,
            batch_wait=opts.batch_wait_ms / 1000, settings=settings, ready=ready,
        )  # fmt: skip
        worker.start()
        ticker = _Ticker(progress, progress_every, t_start, stage)
        _consume(worker, stage, stop, opts, t_start, ticker)
        if worker.error is not None:
            raise worker.error
        stage.flush_parts()
    finally:
        _tear_down(stop, worker, states, stage)
    seconds, calls = time.perf_counter() - t_start, worker.calls if worker is not None else 0
    stopped_by = _stopped_by(stop, states, stage, opts)
    return station_summary(stage, batch, calls, seconds, stopped_by, stop.signal)


def batch_size(session: Session, opts: LoopOptions, sources: int = 1) -> int:
    """Frames per inference call: a static-batch model's own size, else ``opts.batch``, else
    one frame per source (a tiled frame's tiles go in the same call)."""
    if opts.batch is not None and opts.batch < 1:
        raise BadInputError(f"--batch must be at least 1, got {opts.batch}")
    fixed = session.static_batch
    if fixed is not None and opts.tiles is None:
        return fixed
    batch = opts.batch if opts.batch is not None else max(1, sources)
    # An engine's profile bounds a dynamic batch: the rest waits for the next call.
    return min(batch, session.max_batch) if session.max_batch else batch


def check_options(session: Session, opts: LoopOptions) -> None:
    """Options that cannot work with ``session``'s model (before sources and sinks open)."""
    batch_size(session, opts)
    if opts.tiles is not None and session.spec.task != "detect":
        raise BadInputError("--tiles / --tile apply to detection models")


def _merger(task: Task[Result], opts: LoopOptions) -> Any:
    """The function that merges a tiled frame's results (None without tiles)."""
    if opts.tiles is None:
        return None
    from toolkit.tasks.tiles import merge_tiles

    if getattr(task, "options", None) is None:
        raise BadInputError("--tiles / --tile apply to detection models")
    o = task.options  # type: ignore[attr-defined]
    return lambda results, tiles: merge_tiles(
        results, tiles, iou=o.iou, agnostic=o.agnostic, max_det=o.max_det
    )


def _state(
    feed: StationFeed, stop: StopFlag, opts: LoopOptions, ready: threading.Event
) -> FeedState:
    """A source's capture thread (not started yet) and its figures."""
    source = feed.source
    source.stop = stop  # a reconnect backoff ends as soon as the loop stops
    # A file stops reading at the limit; a live source runs on (it drops what the loop skips)
    # until the loop has processed max_frames frames.
    read_limit = None if source.live else opts.max_frames
    reader = FrameReader(
        source, stop, queue_size=opts.queue_size, max_frames=read_limit, max_fps=feed.max_fps,
        ready=ready,
    )  # fmt: skip
    return FeedState(feed.name, source, reader, feed.judge, feed.parts)


def _consume(
    worker: InferWorker,
    stage: Results,
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
            _tick_idle(stage)
            ticker()
            continue
        if item is None:
            return
        stage.finish(item, opts.max_frames)
        if opts.max_frames is not None and stage.counts.frames >= opts.max_frames:
            stop.request("max_frames")
        ticker()


def _tick_idle(stage: Results) -> None:
    """No batch came: sinks that follow the clock mark time (a lost source's outage)."""
    now = time.perf_counter()
    lost = [f.source.lost_since for f in stage.feeds if f.source.lost_since is not None]
    stage.sinks.tick(now, min(lost) if lost else None)


@dataclass
class _Ticker:
    """Calls ``progress`` every ``every`` seconds, and the sinks' status every second."""

    progress: Progress | None
    every: float
    t_start: float
    stage: Results
    next_progress: float = 0.0
    next_status: float = 0.0

    def __call__(self) -> None:
        now = time.perf_counter()
        if now >= self.next_status:
            self.next_status = now + STATUS_EVERY_S
            self.stage.sinks.status(status_report(self.stage, now - self.t_start))
        if self.progress is None or now < max(self.next_progress, self.t_start + self.every):
            return
        self.next_progress = now + self.every
        counts = self.stage.counts
        self.progress(
            {
                "frames": counts.frames,
                "fps": round(self.stage.stats.rolling_fps, 1),
                "ok": counts.ok,
                "ng": counts.ng,
                "dropped": sum(f.reader.dropped for f in self.stage.feeds),
            }
        )


def _tear_down(
    stop: StopFlag, worker: InferWorker | None, states: list[FeedState], stage: Results
) -> None:
    """Stop the threads, release the sources and close every sink (on every way out)."""
    stop.set()
    if worker is not None:
        worker.finish()
    for st in states:
        st.reader.close()
    stage.close_heatmaps()
    outs = stage.sinks
    if any(st.source.lost for st in states):  # the video shows the outage up to the give-up
        since = [st.source.lost_since for st in states if st.source.lost_since is not None]
        outs.tick(time.perf_counter(), min(since) if since else None)
    outs.close()


def _stopped_by(stop: StopFlag, states: list[FeedState], stage: Results, opts: LoopOptions) -> str:
    if stop.reason is not None:
        return stop.reason
    if any(st.source.lost for st in states):
        return "source_lost"
    if opts.max_frames is not None and stage.counts.frames >= opts.max_frames:
        return "max_frames"
    return "end"
