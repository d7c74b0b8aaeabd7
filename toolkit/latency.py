"""Latency statistics: what every benchmark and the live loop report, in milliseconds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from toolkit.errors import BadInputError


@dataclass(frozen=True)
class LatencyStats:
    """Latency summary in milliseconds (percentiles by numpy's default linear interpolation)."""

    mean: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float
    std: float
    n: int

    @classmethod
    def from_seconds(cls, seconds: Sequence[float] | np.ndarray) -> LatencyStats:
        """Summarize per-call durations given in seconds (``time.perf_counter`` deltas)."""
        ms = np.asarray(seconds, dtype=np.float64).ravel() * 1000.0
        if ms.size == 0:
            raise BadInputError("no latency samples to summarize")
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return cls(
            mean=float(ms.mean()),
            p50=float(p50),
            p90=float(p90),
            p99=float(p99),
            min=float(ms.min()),
            max=float(ms.max()),
            std=float(ms.std()),
            n=int(ms.size),
        )

    def to_dict(
        self, keys: Sequence[str] = ("mean", "p50", "p90", "p99", "min", "max", "std")
    ) -> dict[str, float]:
        """The SPEC's latency object (``keys`` picks a subset, e.g. the live loop's five)."""
        d = asdict(self)
        return {k: round(float(d[k]), 4) for k in keys}


def latency_stats(seconds: Sequence[float] | np.ndarray) -> dict[str, float]:
    """``{"mean", "p50", "p90", "p99", "min", "max", "std"}`` in ms from durations in seconds.

    Example:
        >>> latency_stats([0.010, 0.012, 0.011])["p50"]
        11.0
    """
    return LatencyStats.from_seconds(seconds).to_dict()
