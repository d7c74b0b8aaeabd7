"""Helpers for the live-loop tests: small real videos, a slow session, an RTSP server process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toolkit.backends.base import Session

SERVER = Path(__file__).with_name("_rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"


def write_video(
    path: Path, n: int = 60, size: tuple[int, int] = (120, 160), fps: float = 20.0
) -> Path:
    """A real mp4 (OpenCV's mp4v) of ``n`` frames: a red dot moving over a gradient."""
    h, w = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for i in range(n):
        img = np.full((h, w, 3), (i * 4) % 255, np.uint8)
        cv2.circle(img, ((i * 3) % w, h // 2), max(3, h // 12), (0, 0, 255), -1)
        writer.write(img)
    writer.release()
    return path


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL file, parsed (fails on a partial line)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def count_video_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n


class SlowSession(Session):
    """Wraps a session and sleeps ``delay`` seconds per inference call (a slow model)."""

    backend = "slow"

    def __init__(self, inner: Session, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.spec, self.inputs, self.outputs = inner.spec, inner.inputs, inner.outputs

    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(self.delay)
        return self.inner.infer(inputs)

    def _close(self) -> None:
        self.inner.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rtsp_available() -> str | None:
    """None when Debian's python3 has GStreamer's RTSP server bindings, else why not."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
        "from gi.repository import GstRtspServer"
    )
    r = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, check=False)
    return (
        None if r.returncode == 0 else f"GStreamer RTSP server bindings missing: {r.stderr[-200:]}"
    )


def start_server(port: int, *creds: str, timeout: float = 20.0) -> subprocess.Popen[str]:
    """Start the RTSP server and wait for "ready" (retrying while the port is still taken)."""
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), str(port), *creds],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line == "ready":
            return proc
        proc.wait(timeout=5)
        if time.monotonic() > deadline:
            raise RuntimeError(f"RTSP server did not start: {line!r}")
        time.sleep(0.3)


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()


def edgetk(*args: str) -> list[str]:
    """The command line of the edgetk CLI in this interpreter."""
    return [sys.executable, "-m", "toolkit", *args]


# The constant detector's two objects on a 64 x 64 frame: (xyxy, class, score).
DET_OBJECTS = (([4, 4, 24, 24], 0, 0.9), ([36, 36, 60, 60], 1, 0.8))


def const_output_model(out: np.ndarray) -> Any:
    """An ONNX model (64x64 ``images`` in) whose ``output0`` is ``out`` whatever the image
    (plus 0 * mean(images), so the input is used)."""
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(out.shape))
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["const", "z"], ["output0"]),
    ]
    inits = [
        numpy_helper.from_array(out.astype(np.float32), "const"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
    ]
    graph = helper.make_graph(nodes, "const_yolo", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def const_detector(path: Path) -> Path:
    """A YOLOv8-layout ONNX detector (64x64 input) that finds :data:`DET_OBJECTS` in any frame."""
    import onnx

    from toolkit.model.modelfile import write_spec
    from toolkit.model.spec import InputSpec, ModelSpec, OutputSpec, PreprocessSpec

    out = np.zeros((1, 7, 16), np.float32)
    for a, (box, cls, score) in enumerate(DET_OBJECTS):
        x1, y1, x2, y2 = box
        out[0, :4, a] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
        out[0, 4 + cls, a] = score
    model = const_output_model(out)
    spec = ModelSpec(
        task="detect",
        input=InputSpec(name="images", shape=(1, 3, 64, 64)),
        preprocess=PreprocessSpec(resize="letterbox", pad_value=114),
        labels=("scratch", "spot", "crack"),
        output=OutputSpec(format="yolov8"),
    )
    write_spec(model, spec)
    onnx.save(model, str(path))
    return path


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text(encoding="utf-8").count("\n") >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"edgetk run ended early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"no {n} events within {timeout} s")
