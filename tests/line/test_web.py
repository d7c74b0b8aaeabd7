"""The operator view during a real run: a headless Chromium, MJPEG, SSE, /metrics, /health."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from _runs import Run, wait_until

pytest.importorskip("starlette", reason="starlette (edgetk[serve]) is not installed")
pytest.importorskip("prometheus_client", reason="prometheus-client (edgetk[serve]) missing")

from toolkit.line.web import WebSink

TOKEN = "t0ken"
DOCS_PICTURE = Path(__file__).resolve().parents[2] / "docs" / "images" / "operator_view.png"


def _get(url: str, token: str | None = TOKEN) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _jpegs(port: int, index: int, n: int) -> int:
    """Read the MJPEG stream until ``n`` whole JPEG parts came (returns how many)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"/stream/{index}?token={TOKEN}")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=frame"
    got = 0
    while got < n:
        line = resp.fp.readline()
        if line.lower().startswith(b"content-length:"):
            size = int(line.split(b":")[1])
            resp.fp.readline()
            body = resp.fp.read(size)
            assert body[:2] == b"\xff\xd8" and body[-2:] == b"\xff\xd9"
            got += 1
    conn.close()
    return got


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--virtual-time-budget=3000", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)


@pytest.mark.slow
def test_the_page_streams_and_metrics_match_the_summary(det_onnx: Path, tmp_path: Path) -> None:
    web = WebSink("127.0.0.1", 0, token=TOKEN, station="line1")
    run = Run(det_onnx, "synthetic:size=360x480", [web], reject="spot")
    base = web.url
    wait_until(lambda: web.state.summary()["ng"] >= 3, what="NG verdicts")
    assert _get(base, token=None)[0] == 401 and _get(base + "health", token=None)[0] == 200
    assert _jpegs(web.port, 0, 5) == 5
    assert _sse_verdict(web.port)["verdict"] in ("OK", "NG")
    status, text = _get(base + "metrics")
    assert status == 200 and _families(text.decode())["edgetk_frames"] > 0
    if shutil.which("chromium") is not None:
        _browser_checks(base, tmp_path)
    summary = run.finish()
    families = _families(web.metrics.render()[0].decode())  # the same registry as /metrics
    assert families["edgetk_frames"] == summary["frames"] > 0
    assert families["edgetk_verdicts:NG"] == summary["ng"] > 0
    assert families["edgetk_verdicts:OK"] == summary["ok"]
    assert families["edgetk_class:spot"] == summary["frames"]  # the constant detector's spot


def _browser_checks(base: str, tmp_path: Path) -> None:
    shot = tmp_path / "operator_view.png"
    r = _chromium("--window-size=1280,720", f"--screenshot={shot}", f"{base}?token={TOKEN}")
    assert r.returncode == 0 and shot.stat().st_size > 10_000, r.stderr[-400:]
    if os.environ.get("EDGETK_DOCS_PICTURES"):  # refresh the README's picture
        shutil.copyfile(shot, DOCS_PICTURE)
    dom = _chromium("--dump-dom", f"{base}?token={TOKEN}").stdout
    ok = re.search(r"id=\"ok\"[^>]*>(\d+)<", dom)
    ng = re.search(r"id=\"ng\"[^>]*>(\d+)<", dom)
    assert ok and ng and int(ng.group(1)) > 0, dom[:2000]
    assert 'src="stream/0"' in dom and "snapshot/" in dom  # the stream and the NG gallery


def _sse_verdict(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/events", headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    assert resp.getheader("Content-Type").startswith("text/event-stream")
    kind = None
    while True:
        line = resp.fp.readline().decode().strip()
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind == "verdict":
            conn.close()
            return json.loads(line[6:])


def _families(text: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.endswith("_created"):
                continue
            key = fam.name + "".join(f":{v}" for k, v in sorted(s.labels.items())
                                     if k in ("verdict", "class"))  # fmt: skip
            out[key] = out.get(key, 0.0) + s.value
    return out


@pytest.mark.slow
def test_health_turns_503_when_the_rtsp_source_is_killed(tiny_onnx: Path, rtsp_server) -> None:
    from _live_helpers import stop_server

    server = rtsp_server()
    web = WebSink("127.0.0.1", 0, stale_s=1.0)
    run = Run(tiny_onnx, f"rtsp://127.0.0.1:{rtsp_server.port}/test", [web],
              reconnect_timeout=60)  # fmt: skip
    try:
        wait_until(lambda: _get(web.url + "health")[0] == 200, 30, "a healthy source")
        stop_server(server)

        def lost() -> bool:
            code, body = _get(web.url + "health")
            reasons = json.loads(body)["reasons"] if code == 503 else []
            return any("lost" in r or "no frame" in r for r in reasons)

        wait_until(lost, 20, "a 503 that names the lost source")
    finally:
        time.sleep(0.1)
        run.finish()
