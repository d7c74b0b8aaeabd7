"""What a station run reports: the summary at the end, the status sinks get every second.

Both have the station's totals at the top (the SPEC's one-source shape: ``frames``,
``dropped``, ``fps``, ``ok``, ``ng``, ``latency_ms``, ``frame_age_ms``...) and the same figures
per source under ``sources``.
"""

from __future__ import annotations

import time
from typing import Any

from toolkit.live.results import FeedState, Results


def _feed_figures(feed: FeedState) -> dict[str, Any]:
    """One source's figures (the summary's and the status's)."""
    src, counts = feed.source, feed.counts
    figures: dict[str, Any] = {
        "frames": counts.frames,
        "dropped": feed.reader.dropped,
        "fps": counts.fps,
        "ok": counts.ok,
        "ng": counts.ng,
        "counts": dict(counts.classes),
        "frame_age_ms": feed.stats.frame_age_ms(),
        "live": bool(src.live),
        "decode_errors": src.decode_errors,
        "reconnects": sum(1 for g in src.gaps if g.recovered),
        "lost": src.lost or src.lost_since is not None,
        "lost_for_s": round(time.perf_counter() - src.lost_since, 3)
        if src.lost_since is not None
        else 0.0,
        "gave_up": bool(src.lost),
        "ended": feed.reader.done,
    }
    if feed.parts is not None:
        figures["parts"] = {"ok": feed.parts.totals["ok"], "ng": feed.parts.totals["ng"]}
    return figures


def _totals(stage: Results) -> dict[str, Any]:
    counts = stage.counts
    totals: dict[str, Any] = {
        "frames": counts.frames,
        "dropped": sum(f.reader.dropped for f in stage.feeds),
        "fps": counts.fps,
        "ok": counts.ok,
        "ng": counts.ng,
        "counts": dict(counts.classes),
        "latency_ms": stage.stats.latency_ms(),
        "frame_age_ms": stage.stats.frame_age_ms(),
    }
    if any(f.parts is not None for f in stage.feeds):
        parts = [f.parts.totals for f in stage.feeds if f.parts is not None]
        totals["parts"] = {k: sum(p[k] for p in parts) for k in ("ok", "ng")}
    return totals


def status_report(stage: Results, seconds: float) -> dict[str, Any]:
    """The running figures for :meth:`toolkit.live.sinks.Sink.status`."""
    return {
        **_totals(stage),
        "seconds": round(seconds, 3),
        "sources": {f.name: _feed_figures(f) for f in stage.feeds},
    }


def station_summary(
    stage: Results,
    batch: int,
    calls: int,
    seconds: float,
    stopped_by: str,
    signal: str | None,
) -> dict[str, Any]:
    """The summary :func:`toolkit.live.loop.run_station` returns.

    ``source`` is the source's name (the names joined by ", " for a station), ``gaps`` every
    source's outages (each with its ``source``), ``inference_calls`` the batches run.
    """
    feeds = stage.feeds
    gaps = [
        {**g.to_dict(), "source": f.name} if len(feeds) > 1 else g.to_dict()
        for f in feeds
        for g in f.source.gaps
    ]
    sources = {}
    for f in feeds:
        fig = _feed_figures(f)
        fig["latency_ms"] = f.stats.latency_ms()
        fig["gaps"] = [g.to_dict() for g in f.source.gaps]
        sources[f.name] = fig
    return {
        **_totals(stage),
        "source": ", ".join(f.name for f in feeds),
        "live": any(bool(f.source.live) for f in feeds),
        "batch": batch,
        "inference_calls": calls,
        "decode_errors": sum(f.source.decode_errors for f in feeds),
        "reconnects": sum(1 for f in feeds for g in f.source.gaps if g.recovered),
        "gaps": gaps,
        "sources": sources,
        "seconds": round(seconds, 3),
        "stopped_by": stopped_by,
        "signal": signal,
        "failed_sink": stage.sinks.failed,
        "sink_dropped": stage.sinks.dropped(),
        **({"explain": stage.explain} if stage.explain is not None else {}),
    }
