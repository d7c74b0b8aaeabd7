"""The live loop: source -> preprocess + infer -> postprocess + verdict + sinks, pipelined.

Three threads overlap the work, joined by small bounded queues, so throughput approaches the
slowest stage rather than the sum of all:

1. capture (:class:`~toolkit.live.reader.FrameReader`): reads ahead; a live source keeps only
   its newest frame (drops counted), a file blocks (nothing dropped);
2. preprocess + infer (a worker thread): batches up to ``batch`` frames; ONNX Runtime releases
   the GIL while it computes;
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

import contextlib
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.live.reader import Frame, FrameReader
from toolkit.live.sinks import Sink, SinkError, sink_name
from toolkit.live.sources import Source, utc_iso
from toolkit.live.stats import LoopStats
from toolkit.live.verdict import Judge
from toolkit.tasks.base import prepare_inputs

log = logging.getLogger(__name__)

_POLL_S = 0.1
_END = object()


class StopFlag(threading.Event):
    """A stop request that remembers its first reason (``signal``, ``duration``, ``window``).

    ``signal`` is the name of the first signal received (``SIGTERM``, ``SIGINT``), if any.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reason: str | None = None
        self.signal: str | None = None

    def request(self, reason: str) -> None:
        if not self.is_set():
            self.reason = reason
            self.set()


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


@dataclass
class _Batch:
    frames: list[Frame]
    outputs: dict[str, np.ndarray]
    metas: list[Any]
    preprocess_s: float
    infer_s: float


@dataclass
class _Counts:
    frames: int = 0
    ok: int = 0
    ng: int = 0
    first_t: float | None = None
    last_t: float = 0.0


class _Sinks:
    """The loop's sinks: one that fails is recorded, written no more, and stops the run.

    The others go on until the loop has drained, and every sink is closed at the end, the
    failed one too (a video is finalized with the frames it has).
    """

    def __init__(self, sinks: Sequence[Sink], stop: StopFlag) -> None:
        self.sinks, self.stop = list(sinks), stop
        self.needs_image = any(s.needs_image for s in self.sinks)
        self.failed: dict[str, str] | None = None
        self._dead: set[int] = set()

    def write(self, event: dict[str, Any], annotated: np.ndarray | None, captured: float) -> None:
        for i, sink in enumerate(self.sinks):
            if i in self._dead:
                continue
            try:
                if getattr(sink, "timed", False):
                    sink.write(event, annotated, captured=captured)  # type: ignore[call-arg]
                else:
                    sink.write(event, annotated)
            except (SinkError, OSError) as e:
                self._fail(i, sink, e)

    def tick(self, now: float, lost_since: float | None) -> None:
        """Let sinks that follow the clock (the video) mark time while no frame comes."""
        for i, sink in enumerate(self.sinks):
            if i not in self._dead and hasattr(sink, "tick"):
                try:
                    sink.tick(now, lost_since)
                except (SinkError, OSError) as e:
                    self._fail(i, sink, e)

    def close(self) -> None:
        for i, sink in enumerate(self.sinks):
            try:
                sink.close()
            except (SinkError, OSError) as e:
                self._fail(i, sink, e)

    @property
    def quit(self) -> bool:
        return any(getattr(s, "quit", False) for s in self.sinks)

    def _fail(self, i: int, sink: Sink, e: BaseException) -> None:
        self._dead.add(i)
        reason = e.reason if isinstance(e, SinkError) else (getattr(e, "strerror", None) or str(e))
        log.warning("%s sink failed: %s", sink_name(sink), reason)
        if self.failed is None:
            self.failed = {"sink": sink_name(sink), "error": reason}
        self.stop.request("sink_error")


def _infer_batch(session: Any, task: Any, judge: Judge, frames: list[Frame]) -> _Batch:
    images = [judge.crop(f.image) for f in frames]
    t0 = time.perf_counter()
    inputs, metas = prepare_inputs(session, task, images)
    t1 = time.perf_counter()
    outputs = session.infer(inputs)
    t2 = time.perf_counter()
    return _Batch(frames, outputs, metas, t1 - t0, t2 - t1)


class _InferWorker(threading.Thread):
    """Stage 2: takes frames from the reader, runs preprocess + infer, queues the batches."""

    def __init__(
        self, reader: FrameReader, session: Any, task: Any, judge: Judge, batch: int, stop: StopFlag
    ) -> None:
        super().__init__(name="edgetk-infer", daemon=True)
        self.reader, self.session, self.task, self.judge = reader, session, task, judge
        self.batch, self.stop = batch, stop
        self.out: queue.Queue[Any] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            ended = False
            while not ended and not self.stop.is_set():
                try:
                    first = self.reader.get(timeout=_POLL_S)
                except TimeoutError:
                    continue
                if first is None:
                    break
                frames = [first]
                while len(frames) < self.batch:
                    # A live source never waits to fill a batch (that would add lag).
                    nxt = self.reader.poll() if self.reader.live else self.reader.get()
                    if nxt is None:
                        ended = not self.reader.live
                        break
                    frames.append(nxt)
                self._put(_infer_batch(self.session, self.task, self.judge, frames))
        except BaseException as e:  # re-raised on the loop's thread by run_loop
            self.error = e
        finally:
            self._put(_END)

    def _put(self, item: Any) -> None:
        # The consumer drains until _END, so this never waits for long.
        while True:
            try:
                self.out.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue


def warm_up(session: Any, task: Any, judge: Judge, calls: int) -> None:
    """Run ``calls`` inferences on a blank frame: first calls allocate, and would skew stats."""
    blank = Frame(np.zeros((480, 640, 3), np.uint8), -1, 0.0, 0.0, 0.0)
    for _ in range(calls):
        _infer_batch(session, task, Judge(None, (), roi=None), [blank])


def run_loop(
    session: Any,
    task: Any,
    source: Source,
    *,
    judge: Judge,
    sinks: Sequence[Sink] = (),
    options: LoopOptions | None = None,
    stop: StopFlag | None = None,
    overlay: Callable[..., np.ndarray] | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    progress_every: float = 5.0,
) -> dict[str, Any]:
    """Run the live loop until the source ends, a limit is reached or ``stop`` is set.

    Args:
        session: an open :class:`~toolkit.backends.base.Session`.
        task: its task (:func:`toolkit.tasks.base.make_task`).
        source: an opened :class:`~toolkit.live.sources.Source` (closed on return).
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
    if opts.batch < 1:
        raise BadInputError(f"--batch must be at least 1, got {opts.batch}")
    stop = stop or StopFlag()
    draw = overlay or draw_overlay
    fixed = session.static_batch
    batch = fixed if fixed is not None else opts.batch
    stats, counts = LoopStats(), _Counts()
    outs = _Sinks(sinks, stop)
    # The source shares the flag: a reconnect backoff ends as soon as the loop stops.
    if hasattr(source, "stop"):
        source.stop = stop
    # A file stops reading at the limit; a live source runs on (it drops what the loop skips)
    # until the loop has processed max_frames frames.
    read_limit = None if source.live else opts.max_frames
    reader = FrameReader(source, stop, queue_size=opts.queue_size, max_frames=read_limit)
    worker: _InferWorker | None = None
    t_start = time.perf_counter()
    try:
        warm_up(session, task, judge, opts.warmup)
        t_start = time.perf_counter()
        reader.start()
        worker = _InferWorker(reader, session, task, judge, batch, stop)
        worker.start()
        next_progress = t_start + progress_every
        while True:
            if opts.duration is not None and time.perf_counter() - t_start >= opts.duration:
                stop.request("duration")
            if outs.quit:
                stop.request("window")
            try:
                item = worker.out.get(timeout=_POLL_S)
            except queue.Empty:
                outs.tick(time.perf_counter(), getattr(source, "lost_since", None))
                continue
            if item is _END:
                break
            _finish_batch(
                item, task, judge, outs, source.name, stats, counts, draw, opts.max_frames
            )
            if opts.max_frames is not None and counts.frames >= opts.max_frames:
                stop.request("max_frames")
            if progress is not None and time.perf_counter() >= next_progress:
                next_progress = time.perf_counter() + progress_every
                progress(
                    {
                        "frames": counts.frames,
                        "fps": round(stats.rolling_fps, 1),
                        "ok": counts.ok,
                        "ng": counts.ng,
                        "dropped": reader.dropped,
                    }
                )
        if worker.error is not None:
            raise worker.error
    finally:
        _tear_down(stop, worker, reader, source, outs)
    elapsed = (counts.last_t - counts.first_t) if counts.first_t is not None else 0.0
    return {
        "frames": counts.frames,
        "dropped": reader.dropped,
        "fps": round(counts.frames / elapsed, 2) if elapsed > 0 else 0.0,
        "ok": counts.ok,
        "ng": counts.ng,
        "latency_ms": stats.latency_ms(),
        "frame_age_ms": stats.frame_age_ms(),
        "source": source.name,
        "live": bool(source.live),
        "batch": batch,
        "decode_errors": source.decode_errors,
        "reconnects": sum(1 for g in source.gaps if g.recovered),
        "gaps": [g.to_dict() for g in source.gaps],
        "seconds": round(time.perf_counter() - t_start, 3),
        "stopped_by": _stopped_by(stop, source, counts, opts),
        "signal": stop.signal,
        "failed_sink": outs.failed,
    }


def _tear_down(
    stop: StopFlag, worker: _InferWorker | None, reader: FrameReader, source: Source, outs: _Sinks
) -> None:
    """Stop the threads, release the source and close every sink (on every way out)."""
    stop.set()
    if worker is not None:
        # On an error the loop no longer drains the worker's queue: empty it so that a
        # worker blocked on a full queue can finish.
        deadline = time.perf_counter() + 10
        while worker.is_alive() and time.perf_counter() < deadline:
            with contextlib.suppress(queue.Empty):
                while True:
                    worker.out.get_nowait()
            worker.join(timeout=_POLL_S)
    reader.close()
    if getattr(source, "lost", False):  # the video shows the outage up to the give-up
        outs.tick(time.perf_counter(), getattr(source, "lost_since", None))
    outs.close()


def _stopped_by(stop: StopFlag, source: Source, counts: _Counts, opts: LoopOptions) -> str:
    if stop.reason is not None:
        return stop.reason
    if getattr(source, "lost", False):
        return "source_lost"
    if opts.max_frames is not None and counts.frames >= opts.max_frames:
        return "max_frames"
    return "end"


def _finish_batch(
    item: _Batch,
    task: Any,
    judge: Judge,
    sinks: _Sinks,
    source_name: str,
    stats: LoopStats,
    counts: _Counts,
    draw: Callable[..., np.ndarray],
    max_frames: int | None,
) -> None:
    """Stage 3 for one batch: postprocess, verdicts, events, sinks, statistics."""
    t0 = time.perf_counter()
    results = task.postprocess(item.outputs, item.metas)[: len(item.frames)]
    t1 = time.perf_counter()
    post_s = t1 - t0
    for frame, raw in zip(item.frames, results, strict=True):
        if max_frames is not None and counts.frames >= max_frames:
            return  # frames read ahead of a --max-frames stop are not processed
        ts = time.perf_counter()
        result, verdict = judge(raw)
        event = {
            "ts": utc_iso(frame.wall),
            "frame": frame.index,
            "source": source_name,
            "verdict": verdict,
            **result.to_dict(),
        }
        tj = time.perf_counter()
        annotated = None
        if sinks.needs_image:
            annotated = draw(
                frame.image,
                result,
                verdict,
                fps=stats.rolling_fps,
                latency_ms=1000 * (tj - frame.t_read),
                roi=judge.roi,
                source=source_name,
            )
        sinks.write(event, annotated, frame.t_captured)
        done = time.perf_counter()
        st = stats.stages
        st["capture"].add(frame.t_captured - frame.t_read)
        st["preprocess"].add(item.preprocess_s)
        st["infer"].add(item.infer_s)
        st["postprocess"].add(post_s + (tj - ts))
        st["sinks"].add(done - tj)
        st["end_to_end"].add(done - frame.t_read)
        stats.age.add(tj - frame.t_captured)
        stats.tick(done)
        counts.frames += 1
        counts.ok += verdict == "OK"
        counts.ng += verdict == "NG"
        if counts.first_t is None:
            counts.first_t = frame.t_read
        counts.last_t = done


@contextlib.contextmanager
def stop_on_signals(stop: StopFlag) -> Iterator[None]:
    """SIGINT / SIGTERM ask ``stop`` to end the loop cleanly; a second SIGINT interrupts.

    The first signal's name is kept in ``stop.signal``: SIGTERM is a requested stop (exit 0),
    Ctrl-C an interruption (exit 130), both after the sinks are closed and the summary shown.
    Only the main thread can install handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    interrupts = 0

    def handler(signum: int, _frame: Any) -> None:
        nonlocal interrupts
        if signum == signal.SIGINT:
            interrupts += 1
            if interrupts > 1:  # the user insists: no more finalizing
                raise KeyboardInterrupt
        if stop.signal is None:
            stop.signal = signal.Signals(signum).name
        stop.request("signal")

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
