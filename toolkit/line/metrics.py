"""``/metrics``: the station in Prometheus' text format (prometheus-client, ``edgetk[serve]``).

A registry of its own (never the process-wide default), read at scrape time from the web
view's state (:class:`toolkit.line.webstate.WebState`) and the loop's latest status report.
The names are listed in docs/line-integration.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from toolkit.line.webstate import WebState

# Frame age buckets (seconds): a healthy line is in the first few.
AGE_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_QUANTILES = (("p50", "0.5"), ("p90", "0.9"), ("p99", "0.99"))


class StationMetrics:
    """The registry behind ``/metrics`` and the frame-age histogram the sink observes."""

    def __init__(self, state: WebState) -> None:
        from prometheus_client import CollectorRegistry, Histogram

        self.state = state
        self.registry = CollectorRegistry(auto_describe=True)
        self.frame_age = Histogram(
            "edgetk_frame_age_seconds",
            "Age of each frame (capture to the web view's sink) per source.",
            ["source"], buckets=AGE_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.registry.register(_Collector(state))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Collector:
    """Counters and gauges read from the state at scrape time."""

    def __init__(self, state: WebState) -> None:
        self.state = state

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.state
        with s.lock:
            views = {n: (v.frames, v.ok, v.ng) for n, v in s.sources.items()}
            classes = dict(s.classes)
            report = dict(s.report)
            web_dropped = s.dropped
        figures = report.get("sources") or {}
        frames = CounterMetricFamily("edgetk_frames", "Frames processed.", labels=["source"])
        verdicts = CounterMetricFamily(
            "edgetk_verdicts", "Verdicts (frames, or parts under --verdict per-part).",
            labels=["source", "verdict"],
        )  # fmt: skip
        for name, (n, ok, ng) in views.items():
            frames.add_metric([name], n)
            verdicts.add_metric([name, "OK"], ok)
            verdicts.add_metric([name, "NG"], ng)
        per_class = CounterMetricFamily(
            "edgetk_class", "Results per class: boxes (detection) or the top class.",
            labels=["source", "class"],
        )  # fmt: skip
        for (name, label), n in sorted(classes.items()):
            per_class.add_metric([name, label], n)
        yield from (frames, verdicts, per_class)
        yield from _source_families(figures)
        yield from _latency_families(report.get("latency_ms") or {})
        yield from _sink_families(report.get("sinks") or {}, web_dropped)
        fps = GaugeMetricFamily("edgetk_fps", "Frames per second of the station.")
        fps.add_metric([], float(report.get("fps") or 0.0))
        yield fps


def _source_families(figures: dict[str, Any]) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    dropped = CounterMetricFamily(
        "edgetk_dropped_frames", "Frames a live source dropped (the loop was busy).",
        labels=["source"],
    )  # fmt: skip
    reconnects = CounterMetricFamily(
        "edgetk_reconnects", "Times a source came back after losing its signal.",
        labels=["source"],
    )  # fmt: skip
    up = GaugeMetricFamily("edgetk_source_up", "1 while a source delivers.", labels=["source"])
    for name, f in figures.items():
        dropped.add_metric([name], int(f.get("dropped") or 0))
        reconnects.add_metric([name], int(f.get("reconnects") or 0))
        up.add_metric([name], 0.0 if f.get("lost") else 1.0)
    return iter((dropped, reconnects, up))


def _latency_families(latency: dict[str, Any]) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    q = GaugeMetricFamily(
        "edgetk_stage_latency_seconds",
        "Per-stage latency over the run (quantiles of the loop's reservoir).",
        labels=["stage", "quantile"],
    )  # fmt: skip
    mean = GaugeMetricFamily(
        "edgetk_stage_latency_mean_seconds", "Per-stage mean latency.", labels=["stage"]
    )
    for stage, st in latency.items():
        for key, quantile in _QUANTILES:
            q.add_metric([stage, quantile], float(st.get(key, 0.0)) / 1000)
        mean.add_metric([stage], float(st.get("mean", 0.0)) / 1000)
    return iter((q, mean))


def _sink_families(sinks: dict[str, Any], web_dropped: int) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily

    dropped = CounterMetricFamily(
        "edgetk_sink_dropped", "What a sink dropped rather than slow the loop.", labels=["sink"]
    )
    errors = CounterMetricFamily("edgetk_sink_errors", "Sinks that failed.", labels=["sink"])
    counts = dict(sinks.get("dropped") or {})
    counts.setdefault("web", 0)
    for name, n in sorted(counts.items()):
        dropped.add_metric([name], max(int(n), web_dropped) if name == "web" else int(n))
    failed = sinks.get("failed") or {}
    for name in counts:
        errors.add_metric([name], 1 if failed.get("sink") == name else 0)
    return iter((dropped, errors))
