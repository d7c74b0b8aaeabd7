"""``edgetk run`` with line outputs: checked before the model loads, and from a station file."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from _live_helpers import edgetk, free_port


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--mqtt", "ftp://x"], "must start with mqtt:// or mqtts://"),
        (["--serve", "127.0.0.1:99999"], "port in 1-65535"),
        (["--opcua", "http://127.0.0.1:4840"], "--opcua"),
    ],
)
def test_bad_line_outputs_exit_2(tiny_onnx: Path, args: list[str], error: str) -> None:
    r = subprocess.run(edgetk("run", str(tiny_onnx), "-s", "synthetic", *args),
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and error in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_an_occupied_port_is_a_clear_error(tiny_onnx: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run(edgetk("run", str(tiny_onnx), "-s", "synthetic", "--serve", str(port)),
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and f"port {port} on 127.0.0.1 is already in use" in r.stderr


@pytest.mark.slow
def test_a_station_file_serves_the_operator_view(tiny_onnx: Path, tmp_path: Path) -> None:
    port = free_port()
    station = tmp_path / "line3.yaml"
    station.write_text(
        f"model: {tiny_onnx}\n"
        "sources:\n"
        "  - {name: top, source: 'synthetic:fps=10,size=120x160'}\n"
        "  - {name: side, source: 'synthetic:fps=10,size=120x160,seed=1'}\n"
        f"outputs: {{serve: '127.0.0.1:{port}'}}\n"
    )
    proc = subprocess.Popen(edgetk("run", str(station), "--duration", "8", "--json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline, health = time.monotonic() + 40, None
        while time.monotonic() < deadline and health is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    health = json.loads(r.read())
            except OSError:
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert health == {"status": "ok", "reasons": []}
    assert 'source="top"' in metrics and 'source="side"' in metrics
    s = json.loads(out)
    assert proc.returncode == 0, err
    assert sorted(s["sources"]) == ["side", "top"] and s["sink_dropped"] == {"web": 0}
