"""A live run on a thread of the test process, with extra sinks; stopped by the test."""

from __future__ import annotations

import threading
import time
from typing import Any

from toolkit.live.loop import LoopOptions
from toolkit.live.run import run_live
from toolkit.live.stop import StopFlag


class Run:
    def __init__(self, model: Any, source: str, sinks: list, duration: float = 60, **kw: Any):
        self.stop, self.summary, self.error = StopFlag(), None, None
        self.thread = threading.Thread(
            target=self._run, args=(model, source, sinks, duration, kw), daemon=True
        )
        self.thread.start()

    def _run(self, model: Any, source: str, sinks: list, duration: float, kw: dict) -> None:
        try:
            self.summary = run_live(
                model, source, backend="ort-cpu", options=LoopOptions(duration=duration),
                sinks=sinks, stop=self.stop, **kw,
            )  # fmt: skip
        except BaseException as e:  # the test re-raises it
            self.error = e

    def finish(self, timeout: float = 30) -> dict[str, Any]:
        self.stop.request("signal")
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        assert self.summary is not None
        return self.summary


def wait_until(cond: Any, timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or cond}")
