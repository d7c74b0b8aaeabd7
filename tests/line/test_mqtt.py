"""MQTT against a real Mosquitto broker: every verdict, retained status, last will, restarts."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _brokers import PASSWORD, USER, Broker, Subscriber, retained

from toolkit.line.mqtt import MqttSink
from toolkit.line.urls import parse_mqtt
from toolkit.live.sinks import SinkError

pytest.importorskip("paho.mqtt", reason="paho-mqtt (edgetk[line]) is not installed")

RUNNER = Path(__file__).with_name("_line_run.py")


def _event(i: int, verdict: str = "OK") -> dict:
    return {"ts": "2026-01-01T00:00:00.000Z", "frame": i, "source": "cam1", "verdict": verdict,
            "detections": []}  # fmt: skip


def _url(broker: Broker, prefix: str, query: str = "") -> str:
    return f"mqtt://{USER}:{PASSWORD}@127.0.0.1:{broker.port}/{prefix}{query}"


def _wait(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_every_verdict_arrives_in_order_and_the_status_is_retained(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sub = Subscriber(broker.port, "t1/#", client_id="sub-t1")
    sink = MqttSink(parse_mqtt(_url(broker, "t1")), station="line1")
    try:
        assert _wait(lambda: sink.connected)
        for i in range(50):
            sink.verdict(_event(i, "NG" if i % 5 == 0 else "OK"), None)
        sink.status({"frames": 50, "fps": 30.0, "ok": 40, "ng": 10, "counts": {"spot": 10},
                     "sources": {"cam1": {"live": True, "lost": False, "frames": 50}}})  # fmt: skip
        got = sub.wait_for("t1/verdict", 50)
        assert [e["frame"] for e in got] == list(range(50))
        assert got[0] == _event(0, "NG")  # the events file's JSON, as it is
        status = retained(broker.port, "t1/status")
        assert status["state"] == "running" and status["station"] == "line1"
        assert (status["frames"], status["ng"], status["sources"]["cam1"]["live"]) == (50, 10, True)
    finally:
        sink.close()
        sub.close()
    assert (sink.published, sink.delivered, sink.dropped) == (50, 50, 0)
    assert retained(broker.port, "t1/status")["state"] == "stopped"
    assert PASSWORD not in caplog.text and PASSWORD not in str(sink.target)
    assert f"{USER}:***@127.0.0.1" in str(sink.target)


def test_a_broker_restart_loses_nothing_up_to_the_buffer_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    broker = Broker(tmp_path / "b").start()
    sub = Subscriber(broker.port, "t2/verdict", client_id="sub-t2")
    sink = MqttSink(parse_mqtt(_url(broker, "t2", "?buffer=30")))
    try:
        assert _wait(lambda: sink.connected)
        for i in range(10):
            sink.verdict(_event(i), None)
        assert len(sub.wait_for("t2/verdict", 10)) == 10
        broker.stop()  # the broker goes away mid-run...
        assert _wait(lambda: not sink.connected)
        for i in range(10, 60):  # 50 verdicts while it is away: 30 fit in the buffer
            sink.verdict(_event(i), None)
        assert sink.dropped == 20
        broker.start()  # ...and comes back: the buffer goes out, in order
        got = sub.wait_for("t2/verdict", 40, timeout=20)
        frames = [e["frame"] for e in got]
        assert sorted(set(frames)) == list(range(40)), frames
    finally:
        sink.close()
        sub.close()
        broker.stop()
    assert sink.connects >= 2 and sink.dropped == 20


def test_the_last_will_says_offline_when_the_process_is_killed(
    broker: Broker, det_onnx: Path
) -> None:
    line = json.dumps({"mqtt": _url(broker, "t3")})
    sub = Subscriber(broker.port, "t3/#", client_id="sub-t3")
    cmd = [sys.executable, str(RUNNER), str(det_onnx), "synthetic:size=64x64", line]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        verdicts = sub.wait_for("t3/verdict", 20, timeout=60)
        assert len(verdicts) >= 20, proc.stderr.read() if proc.poll() is not None else ""
        assert _wait(lambda: any(s["state"] == "running" for s in sub.on("t3/status")))
        assert {"frame", "verdict", "source", "detections"} <= set(verdicts[0])
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert _wait(lambda: sub.on("t3/status")[-1]["state"] == "offline")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        sub.close()
    assert retained(broker.port, "t3/status")["state"] == "offline"


def test_a_wrong_password_is_a_sink_error_without_the_password(broker: Broker) -> None:
    url = f"mqtt://{USER}:wrong-pw@127.0.0.1:{broker.port}/t4"
    sink = MqttSink(parse_mqtt(url))
    try:
        assert _wait(lambda: sink._refused is not None)
        with pytest.raises(
            SinkError, match=r"refused the connection: (bad user name|not authorized)"
        ):
            sink.verdict(_event(0), None)
    finally:
        sink.close()
    assert "wrong-pw" not in str(sink.target)
