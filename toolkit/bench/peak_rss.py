"""Each row's peak RSS window, from just before its session opens to the end of the timed calls.

The rows of one model and batch overlap in time (opened one after another, then timed
together), but the kernel keeps one peak per process (:mod:`toolkit.bench.memory`). So the
peak is read and reset at each row's start, which cuts the time into segments; a row's peak
is the largest of the segments from its start to the end. ``BenchResult`` says what that
number covers.
"""

from __future__ import annotations

import logging
from types import ModuleType

from toolkit.bench.rows import BenchResult

log = logging.getLogger(__name__)


def _memory() -> ModuleType | None:
    try:
        from toolkit.bench import memory
    except ImportError as e:  # pragma: no cover - the module ships with the package
        log.debug("no peak RSS: %s", e)
        return None
    return memory


class PeakRss:
    """Call :meth:`start` before each row's session opens, :meth:`finish` after the timed
    calls: it sets ``peak_rss_mb`` on the rows that ran (None where it is not known)."""

    def __init__(self) -> None:
        self._mem = _memory()
        self._rows: list[BenchResult] = []
        self._peaks: list[float | None] = []  # the peak of each segment, as it closes

    def start(self, row: BenchResult) -> None:
        if self._mem is None:
            return
        if self._rows:
            self._peaks.append(self._mem.peak_rss_mb())
        self._mem.reset_peak_rss()
        self._rows.append(row)

    def finish(self, ran: list[BenchResult]) -> None:
        if self._mem is None or not self._rows:
            return
        self._peaks.append(self._mem.peak_rss_mb())
        for i, row in enumerate(self._rows):
            if any(row is r for r in ran):
                window = self._peaks[i:]
                known = [p for p in window if p is not None]
                row.peak_rss_mb = max(known) if len(known) == len(window) else None
