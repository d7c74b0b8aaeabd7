"""The operator web view as a sink: ``--serve 127.0.0.1:8080`` (starlette + uvicorn, ``edgetk[serve]``).

The server runs on a thread of its own (uvicorn's event loop); the sink's hooks, on the
fan-out's sink thread, only update :class:`~toolkit.line.webstate.WebState`. A frame is
encoded to JPEG only while someone watches a stream, at most :data:`STREAM_FPS` times a second
per camera, and scaled to at most :data:`STREAM_WIDTH` pixels wide; each NG verdict's image is
kept (the last few) for the page's gallery. Routes: :mod:`toolkit.line.webapp`.

It binds 127.0.0.1 unless another address is given; a port in use is a BadInputError
(exit 2) when the sink opens, and :func:`toolkit.line.options.check_line_outputs` finds it
before the model loads.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from toolkit.line.urls import bind_socket
from toolkit.line.webstate import WebState
from toolkit.live.sinks import Sink, SinkError

log = logging.getLogger(__name__)

STREAM_FPS = 15.0
STREAM_WIDTH = 960
JPEG_QUALITY = 80
START_TIMEOUT_S = 10.0


class WebSink(Sink):
    """Serves the operator view while the run goes (see the module).

    Attributes:
        url: the page's address (``http://host:port/``).
        state: what the page shows.
    """

    name = "web"
    needs_image = True

    def __init__(
        self, host: str = "127.0.0.1", port: int = 8080, *, token: str | None = None,
        station: str = "edgetk", stale_s: float | None = None,
    ) -> None:  # fmt: skip
        import uvicorn

        from toolkit.line.metrics import StationMetrics
        from toolkit.line.webapp import make_app

        self.state = WebState(station=station)
        if stale_s is not None:
            self.state.stale_s = stale_s
        self.metrics = StationMetrics(self.state)
        self._last_encode: dict[str, float] = {}
        sock = bind_socket(host, port, "--serve")
        sock.listen(64)
        self.port = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/"
        config = uvicorn.Config(
            make_app(self.state, self.metrics, token), log_level="warning", access_log=False,
            lifespan="off", timeout_graceful_shutdown=1,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="web-view", daemon=True
        )
        self._thread.start()
        self._sock = sock
        self._wait_started()
        log.info("operator view on %s", self.url)

    @property
    def dropped(self) -> int:
        """Stream frames and events that slow clients missed."""
        return self.state.dropped

    def _wait_started(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._sock.close()
                raise SinkError("web", f"the web server did not start on {self.url}")
            time.sleep(0.01)

    def write(
        self, event: dict[str, Any], annotated: np.ndarray | None, captured: float | None = None
    ) -> None:
        name = str(event.get("source", ""))
        if captured is not None:
            self.metrics.frame_age.labels(name).observe(max(0.0, time.perf_counter() - captured))
        jpeg = None
        now = time.monotonic()
        due = now - self._last_encode.get(name, 0.0) >= 1.0 / STREAM_FPS
        if annotated is not None and self.state.viewers > 0 and due:
            self._last_encode[name] = now
            jpeg = encode_jpeg(annotated, STREAM_WIDTH)
        self.state.frame(name, jpeg)

    def verdict(self, event: dict[str, Any], image: np.ndarray | None) -> None:
        snapshot = None
        if event.get("verdict") == "NG" and image is not None:
            snapshot = encode_jpeg(image, STREAM_WIDTH)
        self.state.verdict(event, snapshot)

    def status(self, report: dict[str, Any]) -> None:
        self.state.status(report)

    def close(self) -> None:
        self.state.closing = True
        self._server.should_exit = True
        self._thread.join(5.0)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(2.0)
        self._sock.close()


def encode_jpeg(image: np.ndarray, max_width: int) -> bytes | None:
    """``image`` as JPEG bytes, scaled down to ``max_width`` (None if OpenCV cannot)."""
    import cv2

    h, w = image.shape[:2]
    if w > max_width:
        image = cv2.resize(
            image, (max_width, round(h * max_width / w)), interpolation=cv2.INTER_AREA
        )
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return buf.tobytes() if ok else None
