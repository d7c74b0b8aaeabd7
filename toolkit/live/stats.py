"""Per-stage timing for the live loop, in bounded memory.

A line runs all day: keeping every sample would grow without end, so each stage keeps a
fixed-size uniform reservoir (Vitter's algorithm R) for its percentiles, and an exact count,
mean and maximum.
"""

from __future__ import annotations

import numpy as np

STAGES = ("capture", "preprocess", "infer", "postprocess", "sinks", "end_to_end")
RESERVOIR = 20_000


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

    def percentiles(self, qs: tuple[float, ...]) -> list[float]:
        """Percentiles in milliseconds (0 when there are no samples)."""
        n = min(self.count, self._buf.size)
        if n == 0:
            return [0.0] * len(qs)
        return [float(v) * 1000 for v in np.percentile(self._buf[:n], qs)]

    def summary(self) -> dict[str, float]:
        """The SPEC's latency object: ``{"mean", "p50", "p90", "p99", "max"}`` in ms."""
        p50, p90, p99 = self.percentiles((50, 90, 99))
        mean = 1000 * self._sum / self.count if self.count else 0.0
        return {
            "mean": round(mean, 3),
            "p50": round(p50, 3),
            "p90": round(p90, 3),
            "p99": round(p99, 3),
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
        p50, p99 = self.age.percentiles((50, 99))
        return {"p50": round(p50, 3), "p99": round(p99, 3)}
