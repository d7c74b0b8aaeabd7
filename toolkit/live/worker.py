"""The live loop's second stage: a thread that batches frames, preprocesses and infers.

It takes frames from every source's :class:`~toolkit.live.reader.FrameReader` and hands
:class:`Batch` es (the raw outputs, not yet postprocessed) to the loop through a small bounded
queue; ONNX Runtime releases the GIL while it computes, so this overlaps capture and the
loop's own stage.

Batching across sources: a batch takes the frames that are ready, one per source per round
(so a fast source cannot crowd out the others), until it is full or ``batch_wait`` has passed
since its first frame. A dead or slow camera is never waited for beyond that; a batch of file
frames only waits for files (they always come). The tiles of a frame (``--tiles``) go into the
same call as the frame's neighbours.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from toolkit.backends.base import Session
from toolkit.live.reader import Frame, FrameReader
from toolkit.live.verdict import Judge, Result
from toolkit.tasks.base import Task, prepare_inputs
from toolkit.tasks.batching import padded_chunks
from toolkit.tasks.preprocess import FrameMeta

# How often a waiting thread looks at the stop flag.
POLL_S = 0.1


@dataclass(frozen=True)
class Feed:
    """One source as the worker sees it: its reader and what its frames go through."""

    reader: FrameReader
    judge: Judge


@dataclass
class Batch:
    """Frames after preprocess + infer: the raw outputs, the time each step took.

    ``chunks`` holds one ``(outputs, metas, n)`` per inference call (a static-batch model may
    take several); ``feeds[i]`` is the source of ``frames[i]``; ``tiles[i]`` the tiles of
    ``frames[i]`` (None without tiling: one image per frame).
    """

    frames: list[Frame]
    feeds: list[int]
    chunks: list[tuple[dict[str, np.ndarray], list[FrameMeta], int]]
    preprocess_s: float
    infer_s: float
    tiles: list[list[object] | None] = field(default_factory=list)


@dataclass(frozen=True)
class InferSettings:
    """How frames become inputs: a square letterbox even for a dynamic model, tiles."""

    square: bool = False
    tiles: object | None = None  # a toolkit.tasks.tiles.TileGrid


@dataclass
class Prepared:
    """A batch after preprocess, before inference: ``chunks`` of ``(inputs, metas, n)``."""

    frames: list[Frame]
    feeds: list[int]
    tiles: list[list[object] | None]
    chunks: list[tuple[dict[str, np.ndarray], list[FrameMeta], int]]
    preprocess_s: float


def prepare_batch(
    session: Session,
    task: Task[Result],
    judges: Sequence[Judge],
    frames: list[Frame],
    feeds: list[int] | None = None,
    settings: InferSettings | None = None,
) -> Prepared:
    """Preprocess ``frames`` (a classifier sees only its source's ROI; tiles cut each frame)
    into one input per inference call (a static batch B takes B images a call, padded; an
    engine's profile bounds a dynamic batch)."""
    feeds = feeds if feeds is not None else [0] * len(frames)
    settings = settings or InferSettings()
    t0 = time.perf_counter()
    images: list[np.ndarray] = []
    tiles: list[list[object] | None] = []
    for frame, feed in zip(frames, feeds, strict=True):
        judge = judges[feed]
        if settings.tiles is not None and not judge.crop_input:
            parts = settings.tiles.split(frame.image, judge.roi)  # type: ignore[attr-defined]
            tiles.append(parts)
            images.extend(t.image for t in parts)
        else:
            tiles.append(None)
            images.append(judge.crop(frame.image))
    fixed = session.static_batch
    size = fixed or min(len(images), session.max_batch or len(images))
    chunks = []
    for chunk, n in padded_chunks(images, size, fixed):
        inputs, metas = prepare_inputs(session, task, chunk, square=settings.square)
        chunks.append((inputs, metas, n))
    return Prepared(frames, feeds, tiles, chunks, time.perf_counter() - t0)


def infer_prepared(session: Session, p: Prepared) -> Batch:
    """Run the model on a prepared batch."""
    t0 = time.perf_counter()
    chunks = [(session.infer(inputs), metas, n) for inputs, metas, n in p.chunks]
    return Batch(p.frames, p.feeds, chunks, p.preprocess_s, time.perf_counter() - t0, p.tiles)


def warm_up(session: Session, task: Task[Result], calls: int, settings: InferSettings) -> None:
    """Run ``calls`` inferences on a blank frame: first calls allocate, and would skew stats."""
    blank = Frame(np.zeros((480, 640, 3), np.uint8), -1, 0.0, 0.0, 0.0)
    for _ in range(calls):
        prepared = prepare_batch(
            session, task, [Judge(None, (), roi=None)], [blank], None, settings
        )
        infer_prepared(session, prepared)


class InferWorker(threading.Thread):
    """Takes frames from the readers, runs preprocess + infer, queues the batches.

    ``out`` holds the batches and then ``None`` (the worker ended: every source did, the loop
    stopped, or an error came, kept in ``error`` for the loop to raise).
    """

    def __init__(
        self,
        feeds: Sequence[Feed],
        session: Session,
        task: Task[Result],
        batch: int,
        stop: threading.Event,
        *,
        batch_wait: float = 0.0,
        settings: InferSettings | None = None,
        ready: threading.Event | None = None,
    ) -> None:
        super().__init__(name="edgetk-infer", daemon=True)
        self.feeds, self.session, self.task = list(feeds), session, task
        self.batch, self.stop, self.batch_wait = batch, stop, batch_wait
        self.settings = settings or InferSettings()
        self.ready = ready or threading.Event()
        self.judges = [f.judge for f in self.feeds]
        self.out: queue.Queue[Batch | None] = queue.Queue(maxsize=2)
        self._prepared: queue.Queue[Prepared | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.calls = 0  # inference batches run (a batch of several sources is one)
        self._next = 0  # round-robin start

    def run(self) -> None:
        # Preprocess on a thread of its own: the next batch is letterboxed while this one is
        # inferred (OpenCV and ONNX Runtime both release the GIL).
        prep = threading.Thread(target=self._prepare, name="edgetk-preprocess", daemon=True)
        prep.start()
        try:
            while True:
                try:
                    prepared = self._prepared.get(timeout=POLL_S)
                except queue.Empty:
                    if self.stop.is_set() and not prep.is_alive():
                        break
                    continue
                if prepared is None:
                    break
                item = infer_prepared(self.session, prepared)
                self.calls += 1
                self._put(item)
        except BaseException as e:  # re-raised on the loop's thread by run_loop
            self.error = e
            self.stop.set()
        finally:
            prep.join(timeout=10)
            self._put(None)

    def _prepare(self) -> None:
        """Gather and preprocess batches until the sources end or the loop stops."""
        try:
            while not self.stop.is_set():
                picked = self._gather()
                if picked is None:
                    break
                if picked:
                    feeds, frames = [i for i, _ in picked], [f for _, f in picked]
                    p = prepare_batch(
                        self.session, self.task, self.judges, frames, feeds, self.settings
                    )
                    self._handoff(p)
        except BaseException as e:  # re-raised on the loop's thread by run_loop
            self.error = e
            self.stop.set()
        finally:
            self._handoff(None)

    def _handoff(self, item: Prepared | None) -> None:
        while True:
            try:
                self._prepared.put(item, timeout=POLL_S)
                return
            except queue.Full:
                if self.stop.is_set() and item is not None:
                    return

    def _gather(self) -> list[tuple[int, Frame]] | None:
        """The next batch of ``(feed, frame)``: [] when nothing came in a poll, None at the end."""
        picked: list[tuple[int, Frame]] = []
        deadline: float | None = None
        while not self.stop.is_set():
            self.ready.clear()
            self._round(picked)
            open_feeds = [f for f in self.feeds if not f.reader.done]
            if len(picked) >= self.batch or not open_feeds:
                return picked if picked or open_feeds else None
            now = time.perf_counter()
            if picked and any(f.reader.live for f in open_feeds):
                deadline = deadline if deadline is not None else now + self.batch_wait
                if now >= deadline:
                    return picked
                self.ready.wait(min(deadline - now, POLL_S))
            elif not picked and deadline is None:
                if not self.ready.wait(POLL_S):
                    return []  # let the loop look at its flags
            else:
                self.ready.wait(POLL_S)
        return picked or None

    def _round(self, picked: list[tuple[int, Frame]]) -> None:
        """Take ready frames, one per source per round, until the batch is full."""
        n = len(self.feeds)
        while len(picked) < self.batch:
            took = False
            for k in range(n):
                i = (self._next + k) % n
                frame = self.feeds[i].reader.poll()
                if frame is None:
                    continue
                picked.append((i, frame))
                took = True
                if len(picked) >= self.batch:
                    self._next = (i + 1) % n
                    return
            self._next = (self._next + 1) % n
            if not took:
                return

    def _put(self, item: Batch | None) -> None:
        # The consumer drains until None, so this never waits for long.
        while True:
            try:
                self.out.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def finish(self, timeout: float = 10.0) -> None:
        """Wait for the thread to end (the stop flag must be set).

        On an error the loop no longer drains the queue: it is emptied here, so that a worker
        blocked on a full queue can finish.
        """
        deadline = time.perf_counter() + timeout
        while self.is_alive() and time.perf_counter() < deadline:
            with contextlib.suppress(queue.Empty):
                while True:
                    self.out.get_nowait()
            self.join(timeout=POLL_S)
