"""Sinks off the loop's thread: a slow sink drops (and counts) or waits, never blocks a live loop."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from toolkit.live.fanout import SinkFanout, offload_policy
from toolkit.live.offload import Offloaded
from toolkit.live.sinks import EventsSink, Sink, SinkError
from toolkit.live.stop import StopFlag


class Gate(Sink):
    """A sink whose hooks wait on ``gate`` (a stalled broker), and record what they got."""

    name = "gate"

    def __init__(self, fail_at: int | None = None) -> None:
        self.gate, self.got, self.closed, self.fail_at = threading.Event(), [], False, fail_at
        self.thread: str | None = None

    def verdict(self, event: dict[str, Any], image: np.ndarray | None) -> None:
        self.gate.wait()
        self.thread = threading.current_thread().name
        if event["frame"] == self.fail_at:
            raise SinkError("gate", "the line is down")
        self.got.append(event["frame"])

    def close(self) -> None:
        self.closed = True


def _ev(i: int) -> dict[str, Any]:
    return {"frame": i, "verdict": "OK"}


def test_a_stalled_sink_drops_and_counts_without_blocking() -> None:
    inner = Gate()
    sink = Offloaded(inner, bounds={"verdict": 5})
    t0 = time.perf_counter()
    for i in range(100):
        sink.verdict(_ev(i), None)
    handing_over = time.perf_counter() - t0
    inner.gate.set()
    sink.close()
    assert inner.closed and inner.thread == "sink-gate"
    kept = len(inner.got)
    assert sink.dropped["verdict"] == 100 - kept and 5 <= kept <= 6  # 5 queued + 1 being handled
    assert inner.got == sorted(inner.got)
    assert handing_over < 1.0  # the 100 calls did not wait for the stalled sink


def test_lossless_waits_for_room_and_loses_nothing() -> None:
    inner = Gate()
    sink = Offloaded(inner, lossless=True, bounds={"verdict": 3})
    threading.Timer(0.2, inner.gate.set).start()
    for i in range(50):
        sink.verdict(_ev(i), None)
    sink.close()
    assert inner.got == list(range(50)) and sink.dropped["verdict"] == 0


def test_a_failure_on_the_sink_thread_surfaces_on_a_later_call() -> None:
    inner = Gate(fail_at=3)
    inner.gate.set()
    sink = Offloaded(inner)
    with pytest.raises(SinkError, match="gate sink failed: the line is down"):
        for i in range(1000):
            sink.verdict(_ev(i), None)
            time.sleep(0.001)
    sink.close()  # reported once; close still closes the sink
    assert inner.closed and inner.got == [0, 1, 2]


def test_the_fanout_stops_the_run_on_an_offloaded_failure_and_reports_drops(tmp_path) -> None:
    stop = StopFlag()
    bad, slow = Gate(fail_at=290), Gate()  # slow: a stalled broker
    bad.gate.set()
    slow.name = "slow"
    ev = EventsSink(tmp_path / "ev.jsonl")
    fan = SinkFanout([bad, slow, ev], stop, live=True)
    for i in range(1000):
        fan.verdict({**_ev(i), "ts": "t", "source": "s"}, None)
        if stop.is_set():
            break
        time.sleep(0.0005)
    slow.gate.set()
    fan.close()
    assert stop.reason == "sink_error" and fan.failed == {
        "sink": "gate",
        "error": "the line is down",
    }
    drops = fan.dropped()
    assert drops["gate"] == 0 and drops["slow"] > 0 and drops["events"] == 0
    assert len((tmp_path / "ev.jsonl").read_text().splitlines()) == i + 1  # the record is whole


def test_where_each_sink_runs() -> None:
    from toolkit.live.display import DisplaySink

    assert offload_policy(DisplaySink(), live=True) is None  # the window stays on the main thread
    assert offload_policy(Gate(), live=True) == "drop"
    assert offload_policy(Gate(), live=False) == "lossless"  # a file source loses nothing
