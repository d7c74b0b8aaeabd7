"""Per-stage timing for the live loop, in bounded memory.

A line runs all day: keeping every sample would grow without end, so each stage keeps a
fixed-size uniform reservoir (Vitter's algorithm R) for its percentiles, and an exact count,
mean and maximum. The percentiles are those of every benchmark
(:meth:`toolkit.latency.LatencyStats.from_seconds`), over the reservoir.
"""

from __future__ import annotations

import numpy as np

from toolkit.latency import LatencyStats

STAGES = ("capture", "preprocess", "infer", "postprocess", "sinks", "end_to_end")
RESERVOIR = 20_000
_NO_SAMPLES = LatencyStats(mean=0.0, p50=0.0, p90=0.0, p99=0.0, min=0.0, max=0.0, std=0.0, n=0)


class Timings:
    """Durations of one stage: exact mean and max, percentiles from a uniform reservoir."""

    def __init__(self, capacity: int = RESERVOIR, seed: int = 0) -> None:
        self._buf = np.zeros(capacity, np.float64)  # allocated once: no growth while running
        self._rng = np.random.default_rng(seed)
        self.count = 0
        self._sum = 0.0
        self._max = 0.0

    def add(self, seconds: float) -> None:
        self._sum += seconds
        self._max = max(self._max, seconds)
        cap = self._buf.size
        if self.count < cap:
            self._buf[self.count] = seconds
        else:
            j = int(self._rng.integers(0, self.count + 1))
            if j < cap:
                self._buf[j] = seconds
        self.count += 1

    def reservoir(self) -> LatencyStats:
        """The statistics of the samples in the reservoir, in ms (all 0 when there are none)."""
        n = min(self.count, self._buf.size)
        return LatencyStats.from_seconds(self._buf[:n]) if n else _NO_SAMPLES

    def summary(self) -> dict[str, float]:
        """The SPEC's latency object: ``{"mean", "p50", "p90", "p99", "max"}`` in ms.

        The mean and max are exact, the percentiles the reservoir's.
        """
        res = self.reservoir()
        mean = 1000 * self._sum / self.count if self.count else 0.0
        return {
            "mean": round(mean, 3),
            "p50": round(res.p50, 3),
            "p90": round(res.p90, 3),
            "p99": round(res.p99, 3),
            "max": round(1000 * self._max, 3),
        }


class LoopStats:
    """Timings of every stage plus frame age, and a rolling FPS for the overlay."""

    def __init__(self) -> None:
        self.stages = {name: Timings(seed=i) for i, name in enumerate(STAGES)}
        self.age = Timings(seed=len(STAGES))
        self._recent = np.zeros(32, np.float64)
        self._n = 0

    def tick(self, t: float) -> None:
        """A frame finished at ``t`` (perf_counter)."""
        self._recent[self._n % self._recent.size] = t
        self._n += 1

    @property
    def rolling_fps(self) -> float:
        n = min(self._n, self._recent.size)
        if n < 2:
            return 0.0
        last = self._recent[(self._n - 1) % self._recent.size]
        first = self._recent[(self._n - n) % self._recent.size]
        return (n - 1) / (last - first) if last > first else 0.0

    def latency_ms(self) -> dict[str, dict[str, float]]:
        return {name: t.summary() for name, t in self.stages.items()}

    def frame_age_ms(self) -> dict[str, float]:
        res = self.age.reservoir()
        return {"p50": round(res.p50, 3), "p99": round(res.p99, 3)}
