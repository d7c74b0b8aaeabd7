"""What the operator view shows, kept between the sink's thread and the web server's.

The sink (:class:`toolkit.line.web.WebSink`) writes here from its own thread; the server's
requests read snapshots of it under one lock. Everything is bounded: one JPEG per source, the
last :data:`GALLERY` NG snapshots, the last :data:`EVENTS` events for ``/events``.
"""

from __future__ import annotations

import collections
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

GALLERY = 8
EVENTS = 1024
# /health: a source that delivered nothing this long, or no status this long, is unhealthy.
STALE_S = 5.0


@dataclass
class SourceView:
    """One camera's figures and its newest annotated frame."""

    index: int
    frames: int = 0
    ok: int = 0
    ng: int = 0
    last_verdict: str | None = None
    last_ts: str | None = None
    last_frame_t: float | None = None  # monotonic time of the newest frame
    jpeg: bytes = b""
    jpeg_seq: int = 0


@dataclass
class WebState:
    """The station as the web view sees it (thread-safe: every method takes the lock)."""

    station: str = "edgetk"
    stale_s: float = STALE_S
    lock: threading.Lock = field(default_factory=threading.Lock)
    sources: dict[str, SourceView] = field(default_factory=dict)
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    classes: dict[tuple[str, str], int] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    report_t: float | None = None
    gallery: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=GALLERY)
    )
    events: collections.deque[tuple[int, str]] = field(
        default_factory=lambda: collections.deque(maxlen=EVENTS)
    )
    viewers: int = 0
    dropped: int = 0  # MJPEG frames a slow browser missed, SSE events a slow client missed
    closing: bool = False
    started: float = field(default_factory=time.monotonic)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _event_seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def source(self, name: str) -> SourceView:
        """The view of ``name`` (created on first sight; call with the lock held)."""
        view = self.sources.get(name)
        if view is None:
            view = self.sources[name] = SourceView(index=len(self.sources))
        return view

    def frame(self, name: str, jpeg: bytes | None) -> None:
        with self.lock:
            view = self.source(name)
            view.frames += 1
            view.last_frame_t = time.monotonic()
            if jpeg is not None:
                view.jpeg, view.jpeg_seq = jpeg, view.jpeg_seq + 1

    def verdict(self, event: dict[str, Any], snapshot: bytes | None) -> None:
        name = str(event.get("source", ""))
        with self.lock:
            view = self.source(name)
            verdict = str(event.get("verdict"))
            view.ok += verdict == "OK"
            view.ng += verdict == "NG"
            view.last_verdict, view.last_ts = verdict, event.get("ts")
            self.counts[verdict] += 1
            for label in event_classes(event):
                self.classes[(name, label)] = self.classes.get((name, label), 0) + 1
            if snapshot is not None:
                self.gallery.appendleft(
                    {"id": next(self._seq), "source": name, "ts": event.get("ts"),
                     "frame": event.get("frame"), "part": event.get("part"), "jpeg": snapshot}
                )  # fmt: skip
            self._push("verdict", event)

    def status(self, report: dict[str, Any]) -> None:
        with self.lock:
            self.report, self.report_t = report, time.monotonic()
            for name in report.get("sources") or {}:
                self.source(name)
            self._push("status", _small_status(report))

    def _push(self, kind: str, body: dict[str, Any]) -> None:
        text = f"event: {kind}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n"
        self.events.append((next(self._event_seq), text))

    def events_after(self, seq: int) -> tuple[list[tuple[int, str]], int]:
        """The events after ``seq`` and how many of those are gone already (a slow client)."""
        with self.lock:
            new = [e for e in self.events if e[0] > seq]
            missed = new[0][0] - seq - 1 if new and seq else 0
            self.dropped += missed
            return new, missed

    def latest_seq(self) -> int:
        with self.lock:
            return self.events[-1][0] if self.events else 0

    def health(self) -> tuple[bool, list[str]]:
        """(healthy, reasons): every source delivers, and the loop reports."""
        now = time.monotonic()
        reasons = []
        with self.lock:
            figures = self.report.get("sources") or {}
            if not any(v.frames for v in self.sources.values()):
                reasons.append(f"starting: no frame yet ({now - self.started:.1f} s)")
            for name, view in self.sources.items():
                fig = figures.get(name, {})
                if fig.get("lost"):
                    lost_for = fig.get("lost_for_s")
                    since = f" for {lost_for:.1f} s" if isinstance(lost_for, int | float) else ""
                    reasons.append(f"source {name} lost{since}")
                elif view.last_frame_t is not None and now - view.last_frame_t > self.stale_s:
                    reasons.append(f"no frame from {name} for {now - view.last_frame_t:.1f} s")
            # The loop reports about once a second (Sink.status): a few missed beats, not one.
            if self.report_t is not None and now - self.report_t > max(self.stale_s, 3.0):
                reasons.append(f"no status from the loop for {now - self.report_t:.1f} s")
        return not reasons, reasons

    def summary(self) -> dict[str, Any]:
        """The page's figures (``/state``): counters, latency, frame age, sources, gallery."""
        healthy, reasons = self.health()
        with self.lock:
            r = self.report
            return {
                "station": self.station,
                "ok": self.counts["OK"],
                "ng": self.counts["NG"],
                "fps": r.get("fps"),
                "latency_ms": r.get("latency_ms") or {},
                "frame_age_ms": r.get("frame_age_ms") or {},
                "healthy": healthy,
                "reasons": reasons,
                "sources": {
                    name: {
                        "index": v.index,
                        "frames": v.frames,
                        "ok": v.ok,
                        "ng": v.ng,
                        "verdict": v.last_verdict,
                        "ts": v.last_ts,
                        **_source_figures((r.get("sources") or {}).get(name, {})),
                    }
                    for name, v in self.sources.items()
                },
                "gallery": [
                    {k: g[k] for k in ("id", "source", "ts", "frame", "part")} for g in self.gallery
                ],
            }


def event_classes(event: dict[str, Any]) -> list[str]:
    """The classes an event found: each box's label (detection) or the top class."""
    if "detections" in event:
        return [str(d.get("label") or d.get("class_id")) for d in event["detections"]]
    top = event.get("top") or []
    return [str(top[0].get("label") or top[0].get("class_id"))] if top else []


def _source_figures(fig: dict[str, Any]) -> dict[str, Any]:
    keys = ("fps", "live", "lost", "lost_for_s", "reconnects", "dropped", "frame_age_ms")
    return {k: fig[k] for k in keys if k in fig}


def _small_status(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("frames", "fps", "ok", "ng", "counts", "frame_age_ms", "seconds")
    out = {k: report[k] for k in keys if k in report}
    out["sources"] = {n: _source_figures(f) for n, f in (report.get("sources") or {}).items()}
    return out
