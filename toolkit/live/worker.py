"""The live loop's second stage: a thread that batches frames, preprocesses and infers.

It takes frames from the :class:`~toolkit.live.reader.FrameReader` and hands
:class:`Batch` es (the raw outputs, not yet postprocessed) to the loop through a small bounded
queue; ONNX Runtime releases the GIL while it computes, so this overlaps capture and the
loop's own stage.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from toolkit.backends.base import Session
from toolkit.live.reader import Frame, FrameReader
from toolkit.live.verdict import Judge, Result
from toolkit.tasks.base import Task, prepare_inputs
from toolkit.tasks.preprocess import FrameMeta

# How often a waiting thread looks at the stop flag.
POLL_S = 0.1


@dataclass
class Batch:
    """Frames after preprocess + infer: the raw outputs, the time each step took."""

    frames: list[Frame]
    outputs: dict[str, np.ndarray]
    metas: list[FrameMeta]
    preprocess_s: float
    infer_s: float


def infer_batch(session: Session, task: Task[Result], judge: Judge, frames: list[Frame]) -> Batch:
    """Preprocess ``frames`` (a classifier sees only the ROI) and run the model on them."""
    images = [judge.crop(f.image) for f in frames]
    t0 = time.perf_counter()
    inputs, metas = prepare_inputs(session, task, images)
    t1 = time.perf_counter()
    outputs = session.infer(inputs)
    t2 = time.perf_counter()
    return Batch(frames, outputs, metas, t1 - t0, t2 - t1)


def warm_up(session: Session, task: Task[Result], judge: Judge, calls: int) -> None:
    """Run ``calls`` inferences on a blank frame: first calls allocate, and would skew stats."""
    blank = Frame(np.zeros((480, 640, 3), np.uint8), -1, 0.0, 0.0, 0.0)
    for _ in range(calls):
        infer_batch(session, task, Judge(None, (), roi=None), [blank])


class InferWorker(threading.Thread):
    """Takes frames from the reader, runs preprocess + infer, queues the batches.

    ``out`` holds the batches and then ``None`` (the worker ended: the source did, the loop
    stopped, or an error came, kept in ``error`` for the loop to raise).
    """

    def __init__(
        self,
        reader: FrameReader,
        session: Session,
        task: Task[Result],
        judge: Judge,
        batch: int,
        stop: threading.Event,
    ) -> None:
        super().__init__(name="edgetk-infer", daemon=True)
        self.reader, self.session, self.task, self.judge = reader, session, task, judge
        self.batch, self.stop = batch, stop
        self.out: queue.Queue[Batch | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            ended = False
            while not ended and not self.stop.is_set():
                try:
                    first = self.reader.get(timeout=POLL_S)
                except TimeoutError:
                    continue
                if first is None:
                    break
                frames, ended = self._fill(first)
                self._put(infer_batch(self.session, self.task, self.judge, frames))
        except BaseException as e:  # re-raised on the loop's thread by run_loop
            self.error = e
        finally:
            self._put(None)

    def _fill(self, first: Frame) -> tuple[list[Frame], bool]:
        """A batch that starts with ``first``, and whether the source ended while filling it."""
        frames = [first]
        while len(frames) < self.batch:
            # A live source never waits to fill a batch (that would add lag).
            nxt = self.reader.poll() if self.reader.live else self.reader.get()
            if nxt is None:
                return frames, not self.reader.live
            frames.append(nxt)
        return frames, False

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
