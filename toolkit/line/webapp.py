"""The operator view's routes (starlette, ``edgetk[serve]``).

| path | what |
| --- | --- |
| ``/`` | the page: each camera's stream, OK/NG counters, the last NG snapshots, latency |
| ``/state`` | the page's figures as JSON |
| ``/stream/{i}`` | camera ``i``'s annotated frames, MJPEG (``multipart/x-mixed-replace``) |
| ``/snapshot/{id}`` | one of the last NG snapshots (JPEG) |
| ``/events`` | verdicts and status as Server-Sent Events (``event: verdict`` / ``status``) |
| ``/metrics`` | Prometheus text format (:mod:`toolkit.line.metrics`) |
| ``/health`` | 200 while every source delivers, else 503 with the reasons (JSON) |

With a token every path but ``/health`` asks for it: ``?token=...`` (the page then sets a
cookie, so its streams need nothing more), ``Authorization: Bearer ...``, or the cookie.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from typing import Any

from toolkit.line.metrics import StationMetrics
from toolkit.line.webstate import WebState

COOKIE = "edgetk_token"
POLL_S = 0.02
KEEPALIVE_S = 15.0


def make_app(state: WebState, metrics: StationMetrics, token: str | None) -> Any:
    """The starlette application over ``state``."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    from toolkit.line.page import render_page

    def page(request: Any) -> Any:
        resp = HTMLResponse(render_page(state.summary()))
        if token is not None and request.query_params.get("token"):
            resp.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return resp

    def stream(request: Any) -> Any:
        name = _source_by_index(state, request.path_params["index"])
        if name is None:
            return Response("no such camera\n", status_code=404)
        return StreamingResponse(
            _mjpeg(state, name), media_type="multipart/x-mixed-replace; boundary=frame",
            headers={"Cache-Control": "no-store"},
        )  # fmt: skip

    def snapshot(request: Any) -> Any:
        with state.lock:
            shot = next((g for g in state.gallery if g["id"] == request.path_params["id"]), None)
        if shot is None:
            return Response("no such snapshot (only the last few are kept)\n", status_code=404)
        return Response(shot["jpeg"], media_type="image/jpeg")

    def events(request: Any) -> Any:
        return StreamingResponse(_sse(state), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})  # fmt: skip

    def metrics_route(request: Any) -> Any:
        body, ctype = metrics.render()
        return Response(body, media_type=ctype)

    def health(request: Any) -> Any:
        ok, reasons = state.health()
        body = {"status": "ok" if ok else "unhealthy", "reasons": reasons}
        return JSONResponse(body, status_code=200 if ok else 503)

    routes = [
        Route("/", page), Route("/state", lambda r: JSONResponse(state.summary())),
        Route("/stream/{index:int}", stream), Route("/snapshot/{id:int}", snapshot),
        Route("/events", events), Route("/metrics", metrics_route), Route("/health", health),
    ]  # fmt: skip
    app = Starlette(routes=routes)
    return _Guard(app, token) if token is not None else app


class _Guard:
    """ASGI middleware: every path but /health needs the token (query, bearer or cookie)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == "/health" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        from starlette.responses import PlainTextResponse

        resp = PlainTextResponse("a token is needed: add ?token=... to the address\n", 401)
        await resp(scope, receive, send)

    def _allowed(self, scope: dict[str, Any]) -> bool:
        from starlette.requests import HTTPConnection

        conn = HTTPConnection(scope)
        auth = conn.headers.get("authorization", "")
        given = [conn.query_params.get("token"), conn.cookies.get(COOKIE)]
        if auth.lower().startswith("bearer "):
            given.append(auth[7:].strip())
        return any(g and hmac.compare_digest(g.encode(), self.token) for g in given)


def _source_by_index(state: WebState, index: int) -> str | None:
    with state.lock:
        return next((n for n, v in state.sources.items() if v.index == index), None)


async def _mjpeg(state: WebState, name: str) -> AsyncIterator[bytes]:
    """The newest frame of ``name`` each time there is a new one; what a slow reader missed
    is counted in ``state.dropped``."""
    with state.lock:
        state.viewers += 1
    last = 0
    try:
        while not state.closing:
            with state.lock:
                view = state.sources[name]
                seq, jpeg = view.jpeg_seq, view.jpeg
            if seq == last or not jpeg:
                await asyncio.sleep(POLL_S)
                continue
            if last:
                with state.lock:
                    state.dropped += max(0, seq - last - 1)
            last = seq
            head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            yield head.encode() + jpeg + b"\r\n"
    finally:
        with state.lock:
            state.viewers -= 1


async def _sse(state: WebState) -> AsyncIterator[str]:
    """Events as they come, from the moment of connecting; a comment keeps idle links open."""
    seq = state.latest_seq()
    yield ": edgetk events\n\n"
    quiet = 0.0
    while not state.closing:
        new, _ = state.events_after(seq)
        if not new:
            await asyncio.sleep(POLL_S * 5)
            quiet += POLL_S * 5
            if quiet >= KEEPALIVE_S:
                quiet = 0.0
                yield ": keep-alive\n\n"
            continue
        quiet = 0.0
        seq = new[-1][0]
        yield "".join(text for _, text in new)
