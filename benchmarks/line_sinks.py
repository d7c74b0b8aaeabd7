"""Loop FPS and frame age with every line sink on against none, and with a broker that stalls.

    python benchmarks/line_sinks.py [--seconds 8] [--size 480x640]

Runs the live loop (run_live) on the synthetic belt with the constant detector of the tests:
1. no sinks; 2. all sinks (events, snapshots, video, MQTT, OPC UA, web view with one browser
on the MJPEG stream); 3. MQTT only, the broker SIGSTOPped for 5 s mid-run. Needs mosquitto.
Prints one JSON line per case.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "line")]

from _brokers import PASSWORD, USER, Broker  # noqa: E402
from _live_helpers import const_detector  # noqa: E402

from toolkit.line.options import LineOutputs, open_line_sinks  # noqa: E402
from toolkit.live.loop import LoopOptions  # noqa: E402
from toolkit.live.run import Outputs, run_live  # noqa: E402


def _viewer(port: int, stop: threading.Event) -> None:
    """One browser on camera 0's MJPEG stream (reads as fast as it comes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/stream/0")
    resp = conn.getresponse()
    while not stop.is_set():
        if not resp.read(65536):
            break
    conn.close()


def run_case(name: str, model: Path, source: str, seconds: float, sinks: list, outputs=None,
             during=None) -> dict:  # fmt: skip
    stop = threading.Event()
    extra = []
    if during is not None:
        extra.append(threading.Thread(target=during, args=(stop,), daemon=True))
    for t in extra:
        t.start()
    s = run_live(model, source, backend="ort-cpu", options=LoopOptions(duration=seconds),
                 outputs=outputs, sinks=sinks, reject="spot")  # fmt: skip
    stop.set()
    mqtt = next((k for k in sinks if k.name == "mqtt"), None)
    return {
        "case": name, "frames": s["frames"], "fps": s["fps"], "frame_age_ms": s["frame_age_ms"],
        "sinks_ms": {k: s["latency_ms"]["sinks"][k] for k in ("p50", "p99", "max")},
        "mqtt": None if mqtt is None else {"published": mqtt.published,
                                           "delivered": mqtt.delivered, "dropped": mqtt.dropped},
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--size", default="480x640")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="edgetk-line-bench-"))
    model = const_detector(tmp / "det.onnx")
    source = f"synthetic:size={args.size}"
    broker = Broker(tmp / "mosquitto").start()
    url = f"mqtt://{USER}:{PASSWORD}@127.0.0.1:{broker.port}/bench"
    try:
        print(json.dumps(run_case("none", model, source, args.seconds, [])), flush=True)
        line = LineOutputs(mqtt=url, opcua="opc.tcp://127.0.0.1:48401", serve="127.0.0.1:48402")
        sinks = open_line_sinks(line, station="bench")
        web = next(k for k in sinks if k.name == "web")
        out = Outputs(save=tmp / "v.mp4", events=tmp / "ev.jsonl", snapshots=tmp / "ng",
                      show=False)  # fmt: skip
        print(json.dumps(run_case("all sinks", model, source, args.seconds, sinks, out,
                                  during=lambda st: _viewer(web.port, st))), flush=True)  # fmt: skip

        def stall(st: threading.Event) -> None:
            time.sleep(args.seconds / 4)
            os.kill(broker.proc.pid, signal.SIGSTOP)
            time.sleep(5.0)
            os.kill(broker.proc.pid, signal.SIGCONT)

        sinks = open_line_sinks(LineOutputs(mqtt=url), station="bench")
        print(json.dumps(run_case("mqtt, broker stalled 5 s", model, source,
                                  max(args.seconds, 10.0), sinks, during=stall)), flush=True)  # fmt: skip
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
