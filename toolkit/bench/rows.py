"""A benchmark's rows and report: what each row measured, and its speedup against a baseline.

Row numbers are 1-based, in the order the rows were measured (the table's ``#`` column); the
report's ``baseline`` is the row every speedup is against, across models and batches alike.
A speedup is a throughput ratio, so that rows of different batch sizes compare: for two rows
of the same batch it is the ratio of their mean latencies.

A row that ran emulated (a tensorrt-target int8 file on ort-cpu, Q/DQ as float) has no
speedup and is no row's baseline: its latency is not int8 latency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# The status of a row that ran emulated (a tensorrt-target int8 file on ort-cpu runs its Q/DQ
# as float): the latency is real, but it is not what int8 costs anywhere. Not "ok", so that
# nothing reading "ok" rows takes it for int8 latency, and no speedup is computed from it.
EMULATED_STATUS = "ok (emulated: latency is not int8 latency)"
# ``samples_ms`` keeps at most this many of a row's timed calls (evenly spaced, in call order).
MAX_SAMPLES = 500


@dataclass
class BenchResult:
    """One model x backend x batch x threads measurement (or why it could not run).

    The SPEC's keys come first; the rest are additions: ``threads`` / ``spinning`` (what the
    session ran with; None where they do not apply), ``file`` (the ONNX file that ran: a
    reference's cached export), ``file_mb``, ``cold_start_ms`` (session open + first
    inference), ``samples_ms`` (timed call latencies), ``peak_rss_mb`` and the floor:
    ``gflops``, ``efficiency``, ``plain_ort_p50_ms``, ``overhead_pct``.

    ``peak_rss_mb`` is the process's peak resident memory from just before the row's session
    opened to the end of its timed calls. The rows of one model and batch are opened one
    after another and then timed together, so that window also holds the other sessions of
    the same model and batch: the group's first row shows the group's peak, and the
    difference between two rows of a group is not one session's size. Compare models and
    batches with it; for one backend's own number, benchmark that backend alone.
    """

    model: str
    backend: str
    precision: str | None
    batch: int
    latency_ms: dict[str, float] | None = None
    throughput_fps: float | None = None
    iters: int = 0
    warmup: int = 0
    status: str = "ok"
    # GPU backends that time themselves (tensorrt), in trtexec's words: "latency" = H2D + GPU
    # compute + D2H, "gpu_compute" = the enqueued work only; each a latency object in ms.
    gpu_ms: dict[str, dict[str, float]] | None = None
    # What the session emulated ("TensorRT int8 semantics on CPU"), None when it ran natively.
    emulated: str | None = None
    threads: int | None = None
    spinning: bool | None = None
    file: str | None = None
    file_mb: float | None = None
    cold_start_ms: float | None = None
    samples_ms: list[float] | None = None
    peak_rss_mb: float | None = None
    gflops: float | None = None
    efficiency: float | None = None
    plain_ort_p50_ms: float | None = None
    overhead_pct: float | None = None

    @property
    def ok(self) -> bool:
        """Measured, and the latency is that of its precision (not an emulation's)."""
        return self.status == "ok"

    @property
    def ran(self) -> bool:
        """Measured (``ok``, or ``EMULATED_STATUS``)."""
        return self.latency_ms is not None

    def to_dict(self) -> dict[str, Any]:
        """The SPEC's result object (plus ``gpu_ms`` for backends that measure it and
        ``emulated`` for a row that ran emulated), then the additions (always present)."""
        extra: dict[str, Any] = {"gpu_ms": self.gpu_ms} if self.gpu_ms else {}
        if self.emulated is not None:
            extra["emulated"] = self.emulated
        return {
            "model": self.model,
            "backend": self.backend,
            "precision": self.precision,
            "batch": self.batch,
            "latency_ms": self.latency_ms,
            "throughput_fps": self.throughput_fps,
            "iters": self.iters,
            "warmup": self.warmup,
            "status": self.status,
            **extra,
            **{key: getattr(self, key) for key in ADDED_KEYS},
        }


# The keys a result has beyond the SPEC's (``row`` and ``speedup`` come from the report).
ADDED_KEYS = (
    "threads", "spinning", "file", "file_mb", "cold_start_ms", "samples_ms", "peak_rss_mb",
    "gflops", "efficiency", "plain_ort_p50_ms", "overhead_pct",
)  # fmt: skip


@dataclass
class BenchReport:
    """The machine and every result (SPEC "Benchmark report").

    ``baseline``: the row number (1-based) the speedups are against; None: the first row that
    ran. ``floor``: the machine's GEMM rate (``gemm_rate``), when measured. ``e2e``: the
    ``--e2e`` rows, when run.
    """

    machine: dict[str, Any]
    results: list[BenchResult] = field(default_factory=list)
    baseline: int | None = None
    floor: dict[str, Any] | None = None
    e2e: list[dict[str, Any]] | None = None

    def base_row(self) -> int | None:
        """The 1-based number of the row speedups are against (None: no row can be)."""
        return base_row(self.results, self.baseline)

    def to_dict(self) -> dict[str, Any]:
        """``machine``, ``baseline`` (the row used), ``results`` (each with its ``row`` and
        ``speedup``), and ``floor`` / ``e2e`` when they were measured."""
        ratios = speedups(self.results, self.baseline)
        results = [
            {"row": i, **r.to_dict(), "speedup": None if sp is None else round(sp, 4)}
            for i, (r, sp) in enumerate(zip(self.results, ratios, strict=True), start=1)
        ]
        out: dict[str, Any] = {
            "machine": self.machine, "baseline": self.base_row(), "results": results,
        }  # fmt: skip
        if self.floor is not None:
            out["floor"] = self.floor
        if self.e2e is not None:
            out["e2e"] = self.e2e
        return out


def _rate(r: BenchResult) -> float | None:
    """Images per second of a row that can be compared (None: not run, or emulated)."""
    if not r.ok or r.latency_ms is None or r.latency_ms["mean"] <= 0:
        return None
    return r.batch / r.latency_ms["mean"]


def base_row(results: Sequence[BenchResult], baseline: int | None = None) -> int | None:
    """``baseline`` if that row can be compared, else None; without one, the first row that
    can (rows are numbered from 1)."""
    if baseline is not None:
        ok = 1 <= baseline <= len(results) and _rate(results[baseline - 1]) is not None
        return baseline if ok else None
    return next((i for i, r in enumerate(results, start=1) if _rate(r) is not None), None)


def speedups(results: Sequence[BenchResult], baseline: int | None = None) -> list[float | None]:
    """For each result, its throughput over the baseline row's (:func:`base_row`); None for
    rows that did not run or ran emulated, and for all when the baseline row cannot be
    compared."""
    base = base_row(results, baseline)
    ref = _rate(results[base - 1]) if base is not None else None
    out: list[float | None] = []
    for r in results:
        rate = _rate(r)
        out.append(None if rate is None or ref is None else rate / ref)
    return out


def subsample(values_ms: Sequence[float], limit: int = MAX_SAMPLES) -> list[float]:
    """At most ``limit`` of ``values_ms``, evenly spaced and in their order, rounded to 4
    decimals (the first and the last are always kept)."""
    n = len(values_ms)
    if n <= limit:
        picked = list(values_ms)
    else:
        picked = [values_ms[round(i * (n - 1) / (limit - 1))] for i in range(limit)]
    return [round(float(v), 4) for v in picked]
