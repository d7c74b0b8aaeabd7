"""Heatmaps for the live loop, off its hot path: :class:`HeatmapWorker`.

One thread, one job at a time, and a budget: after a map that took ``t`` seconds the worker
rests ``t * (1 / budget - 1)``, so it uses at most ``budget`` of one core on average. A frame
submitted while a job is waiting or the worker rests is skipped at once (``submit`` returns
False and ``skipped`` counts it): the caller never waits, so verdicts are never delayed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.explain import heat as H

log = logging.getLogger(__name__)

# (key, overlay BGR uint8 of the frame's size, heat float32 [h, w] in [0, 1])
ResultCallback = Callable[[Hashable, np.ndarray, np.ndarray], None]


def draw_boxes(img: np.ndarray, explanations: list[Any]) -> np.ndarray:
    """The explained boxes drawn on an overlay (detectors)."""
    import cv2

    for e in explanations:
        if e.target.box_image is not None:
            x1, y1, x2, y2 = (round(v) for v in e.target.box_image)
            cv2.rectangle(img, (x1, y1), (x2, y2), (255, 255, 255), 1, cv2.LINE_AA)
    return img


def combined(frame: np.ndarray, explanations: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """One overlay and one map for a frame: the per-box maps merged by their maximum."""
    if explanations:
        heat = np.max(np.stack([e.heat for e in explanations]), axis=0).astype(np.float32)
    else:
        heat = np.zeros(frame.shape[:2], np.float32)
    return draw_boxes(H.overlay(frame, heat), explanations), heat


class HeatmapWorker:
    """Computes heatmaps of submitted frames on its own thread and hands them to a callback.

    Args:
        explainer: an open :class:`~toolkit.explain.explainer.Explainer`; the worker owns it
            from now on and closes it in :meth:`close`.
        on_result: called on the worker's thread as ``on_result(key, overlay_bgr, heat)``.
        budget: the share of one core the worker may use, in (0, 1].

    Attributes:
        submitted, done, skipped, failed: counters (read them any time).
        busy_seconds: time spent computing maps.

    Example:
        >>> w = HeatmapWorker(Explainer("m.onnx", "occlusion", threads=1), save, budget=0.2)
        >>> w.submit(frame_index, frame_bgr)  # False: skipped, over budget
        >>> w.close()
    """

    def __init__(self, explainer: Any, on_result: ResultCallback, *, budget: float = 0.25) -> None:
        if not 0 < budget <= 1:
            raise BadInputError(f"--explain-budget must be in (0, 1], got {budget}")
        self.explainer = explainer
        self.on_result = on_result
        self.budget = float(budget)
        self.submitted = self.done = self.skipped = self.failed = 0
        self.busy_seconds = 0.0
        self._job: tuple[Hashable, np.ndarray, Any] | None = None
        self._rest_until = 0.0
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="edgetk-explain", daemon=True)
        self._thread.start()

    def submit(self, key: Hashable, image_bgr: np.ndarray, target: int | str | None = None) -> bool:
        """Queue one frame (not copied: do not change it afterwards). ``target``: a class id or
        name to explain (None: the top class, or every detected box). Returns False, and counts
        a skip, when a job waits already, the worker rests, or it is closed. Never blocks."""
        with self._cond:
            busy = self._job is not None or time.monotonic() < self._rest_until
            if self._stop or busy:
                self.skipped += 1
                return False
            self._job = (key, image_bgr, target)
            self.submitted += 1
            self._cond.notify()
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._job is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                key, frame, target = self._job  # type: ignore[misc]
            t0 = time.monotonic()
            try:
                cid = self.explainer.class_id(target)
                overlay, heat = combined(frame, self.explainer.explain(frame, cid))
                self.on_result(key, overlay, heat)
                self.done += 1
            except Exception as e:
                self.failed += 1
                log.warning("explain: frame %s failed: %s", key, e)
            spent = time.monotonic() - t0
            with self._cond:
                self.busy_seconds += spent
                self._rest_until = time.monotonic() + spent * (1 / self.budget - 1)
                self._job = None

    def stats(self) -> dict[str, float | int]:
        return {"submitted": self.submitted, "done": self.done, "skipped": self.skipped,
                "failed": self.failed, "busy_seconds": round(self.busy_seconds, 3)}  # fmt: skip

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the map in progress (a waiting job is dropped) and close the explainer."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():  # still inside a map: leave the explainer to it
            log.warning("explain: the worker did not stop within %.0f s", timeout)
            return
        self.explainer.close()

    def __enter__(self) -> HeatmapWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
