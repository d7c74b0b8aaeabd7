"""Latency and throughput of models x backends x batch sizes, measured side by side.

For one model and batch, every backend's session is opened and warmed up first, then the
timed calls are interleaved in blocks (backend A 10 calls, B 10 calls, A 10 calls...), so a
noisy phase of the machine hits all backends alike and their ratio stays honest. Each call is
timed alone with ``time.perf_counter`` around ``Session.infer`` (the public path, input
validation included), as trtexec's "latency" is per query.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.backends import BACKENDS, is_engine, is_onnx, open_session
from toolkit.backends.base import Session, TensorInfo
from toolkit.errors import BackendUnavailableError, BadInputError, MissingDependencyError
from toolkit.latency import LatencyStats
from toolkit.model.spec import SpecOverrides

log = logging.getLogger(__name__)

DEFAULT_ITERS = 200
# Without --iters or --duration: 200 calls, but no more than this many seconds per backend.
DEFAULT_MAX_SECONDS = 10.0
_BLOCKS = 10  # timed calls are interleaved across backends in about this many blocks
# The status of a row that ran emulated (a tensorrt-target int8 file on ort-cpu runs its Q/DQ
# as float): the latency is real, but it is not what int8 costs anywhere. Not "ok", so that
# nothing reading "ok" rows takes it for int8 latency, and no speedup is computed from it.
EMULATED_STATUS = "ok (emulated: latency is not int8 latency)"


@dataclass
class BenchResult:
    """One model x backend x batch measurement (or why it could not run)."""

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
        ``emulated`` for a row that ran emulated)."""
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
        }


@dataclass
class BenchReport:
    """The machine and every result (SPEC "Benchmark report")."""

    machine: dict[str, Any]
    results: list[BenchResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "results": [r.to_dict() for r in self.results]}


@dataclass
class _Run:
    """A backend being measured: its session, its input, its timings."""

    result: BenchResult
    session: Session
    feed: dict[str, np.ndarray]
    times: list[float] = field(default_factory=list)
    spent: float = 0.0
    gpu: dict[str, list[float]] = field(default_factory=dict)

    def call(self, n: int) -> None:
        infer, feed = self.session.infer, self.feed
        for _ in range(n):
            t0 = time.perf_counter()
            infer(feed)
            dt = time.perf_counter() - t0
            self.times.append(dt)
            self.spent += dt
            timing = getattr(self.session, "last_timing", None)
            if timing:  # CUDA-event times of the call that just ran (ms)
                for key in ("latency_ms", "gpu_compute_ms", "h2d_ms", "d2h_ms"):
                    if timing.get(key) is not None:
                        self.gpu.setdefault(key, []).append(float(timing[key]) / 1000.0)

    def gpu_stats(self) -> dict[str, dict[str, float]] | None:
        names = {"latency_ms": "latency", "gpu_compute_ms": "gpu_compute", "h2d_ms": "h2d",
                 "d2h_ms": "d2h"}  # fmt: skip
        out = {names[k]: LatencyStats.from_seconds(v).to_dict() for k, v in self.gpu.items() if v}
        return out or None


def _precision_of(model: str) -> str | None:
    """The model's precision from its spec (for rows whose backend did not open)."""
    if is_engine(model):  # a TensorRT plan: its sidecar says what was built
        from toolkit.model.sidecar import read_sidecar

        info = read_sidecar(model)
        return info.precision if info is not None else None
    if not is_onnx(model):
        return "fp32"
    from toolkit.model.modelfile import read_spec

    return read_spec(model).precision


def _input_array(
    info: TensorInfo, session: Session, batch: int, rng: np.random.Generator
) -> np.ndarray:
    """Random data of the input's shape: a dynamic batch becomes ``batch``, other dynamic axes
    come from the spec (``--imgsz``)."""
    spec_shape = session.spec.input.shape if info.name == session.spec.input.name else ()
    shape: list[int] = []
    for axis, dim in enumerate(info.shape):
        if dim is None and axis == 0:
            dim = batch
        if dim is None and axis < len(spec_shape):
            dim = spec_shape[axis]
        if dim is None:
            raise BackendUnavailableError(
                f"input '{info.name}' has a dynamic axis {axis} {list(info.shape)}: pass --imgsz"
            )
        shape.append(int(dim))
    if np.issubdtype(info.dtype, np.integer):
        return rng.integers(0, 255, size=shape).astype(info.dtype)
    if info.dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    return rng.standard_normal(shape).astype(info.dtype)


def _static_batch_error(session: Session, batch: int) -> str | None:
    static = session.inputs[0].shape[0] if session.inputs and session.inputs[0].shape else None
    if static is not None and static != batch:
        return f"unavailable: model has a static batch of {static}"
    largest = session.max_batch  # a TensorRT engine's profile bounds a dynamic batch
    if static is None and largest is not None and batch > largest:
        return f"unavailable: the engine's profile allows batch <= {largest} (rebuild with --max-batch)"
    return None


@dataclass(frozen=True)
class _Setup:
    """How every session of a benchmark is opened, fed and warmed up (see :func:`benchmark`)."""

    warmup: int
    threads: int | None
    overrides: SpecOverrides | None
    weights: str | None
    seed: int
    model_source: str | None


def _open(model: str, backend: str, batch: int, setup: _Setup) -> _Run | BenchResult:
    """A ready-to-time run, or the result row saying why this backend cannot run."""
    row = BenchResult(
        model=model, backend=backend, precision=None, batch=batch, warmup=setup.warmup
    )
    engine_ok = backend in ("tensorrt", "auto") and is_engine(model)
    if backend not in ("torch", "auto") and not is_onnx(model) and not engine_ok:
        row.precision = "fp32"
        row.status = f"unavailable: {backend} runs ONNX files; export {model} first"
        return row
    try:
        session = open_session(
            model,
            backend,
            overrides=setup.overrides,
            threads=setup.threads,
            weights=setup.weights,
            spinning=True,  # back-to-back calls: spinning threads answer fastest
            opt_batch=batch,
            # Only the torch backend of an .onnx file runs it (a reference is its own source).
            model_source=setup.model_source if backend == "torch" and is_onnx(model) else None,
        )
    except (BackendUnavailableError, MissingDependencyError) as e:
        row.precision = _precision_of(model)
        row.status = f"unavailable: {e}"
        return row
    row.precision = session.precision
    row.backend = session.backend  # what "auto" resolved to
    row.emulated = session.emulated
    if row.emulated is not None:
        row.status = EMULATED_STATUS
    reason = _static_batch_error(session, batch)
    if reason is None:
        try:
            rng = np.random.default_rng(setup.seed)
            feed = {t.name: _input_array(t, session, batch, rng) for t in session.inputs}
        except BackendUnavailableError as e:
            reason = f"unavailable: {e}"
    if reason is not None:
        session.close()
        row.status = reason
        return row
    return _Run(result=row, session=session, feed=feed)


def _time_runs(
    runs: list[_Run], iters: int | None, duration: float | None, max_seconds: float | None = None
) -> None:
    """Interleave the timed calls of ``runs`` in blocks until each has its iters/duration.

    With ``iters``, a run also stops once it has spent ``max_seconds`` (the default cap).
    """
    if iters is not None:
        block = max(1, math.ceil(iters / _BLOCKS))

        def wants(r: _Run) -> bool:
            return len(r.times) < iters and (max_seconds is None or r.spent < max_seconds)

        while any(wants(r) for r in runs):
            for r in runs:
                if wants(r):
                    r.call(min(block, iters - len(r.times)))
        return
    assert duration is not None
    slice_s = duration / _BLOCKS
    while any(r.spent < duration for r in runs):
        for r in runs:
            target = min(duration, r.spent + slice_s)
            while r.spent < target:
                r.call(1)


def _check_args(
    backends: Sequence[str], batches: Sequence[int], warmup: int, iters: int | None,
    duration: float | None,
) -> None:  # fmt: skip
    unknown = [b for b in backends if b not in ("auto", *BACKENDS)]
    if unknown:
        raise BadInputError(
            f"unknown backend '{unknown[0]}' (expected one of: auto, {', '.join(BACKENDS)})"
        )
    if not backends or not batches:
        raise BadInputError("give at least one backend and one batch size")
    if any(int(b) < 1 for b in batches):
        raise BadInputError(f"batch sizes must be >= 1, got {list(batches)}")
    if warmup < 0:
        raise BadInputError(f"--warmup must be >= 0, got {warmup}")
    if iters is not None and duration is not None:
        raise BadInputError("give --iters or --duration, not both")
    if iters is not None and iters < 1:
        raise BadInputError(f"--iters must be >= 1, got {iters}")
    if duration is not None and duration <= 0:
        raise BadInputError(f"--duration must be > 0, got {duration}")


def benchmark(
    models: Sequence[str | Path],
    backends: Sequence[str],
    batches: Sequence[int],
    *,
    warmup: int = 20,
    iters: int | None = None,
    duration: float | None = None,
    threads: int | None = None,
    overrides: SpecOverrides | None = None,
    weights: str | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    model_source: str | None = None,
) -> BenchReport:
    """Measure every model x backend x batch; unavailable ones are reported, not raised.

    Args:
        models: ``.onnx`` files or PyTorch references (the latter run on ``torch`` only).
        backends: backend names (``auto`` is reported as the backend it picked).
        batches: batch sizes; a static-batch model is measured only at its own batch.
        warmup: untimed calls per backend first.
        iters: timed calls per backend (default 200, stopping early after 10 s).
        duration: timed seconds per backend instead of a call count.
        threads: CPU threads for every backend (default: physical cores).
        overrides: spec values for foreign ONNX files (``--imgsz``...).
        weights: checkpoint for the torch backend.
        seed: seed of the random inputs.
        progress: called with a short line before each model and batch.
        model_source: the PyTorch reference the torch backend runs for the ``.onnx`` models
            (``--model-source``; see :func:`toolkit.backends.open_session`).

    Example:
        >>> report = benchmark(["r18.onnx"], ["ort-cpu", "torch"], [1, 8], iters=50)
        >>> [(r.backend, r.batch, r.latency_ms["p50"]) for r in report.results if r.ok]
    """
    from toolkit.platform.machine import machine_info

    # Duplicates dropped, order kept: the first backend is the speedups' reference.
    backends = list(dict.fromkeys(b.strip().lower() for b in backends))
    _check_args(backends, batches, warmup, iters, duration)
    max_seconds = None
    if iters is None and duration is None:
        iters, max_seconds = DEFAULT_ITERS, DEFAULT_MAX_SECONDS
    setup = _Setup(warmup, threads, overrides, weights, seed, model_source)
    report = BenchReport(machine=machine_info())
    for model in models:
        for batch in batches:
            if progress is not None:
                progress(f"{model} batch {batch}: {', '.join(backends)}")
            rows = _measure(str(model), int(batch), backends, setup, iters, duration, max_seconds)
            report.results.extend(rows)
    return report


def _measure(
    model: str,
    batch: int,
    backends: list[str],
    setup: _Setup,
    iters: int | None,
    duration: float | None,
    max_seconds: float | None,
) -> list[BenchResult]:
    """One model and batch on every backend: all opened and warmed up, then timed together."""
    rows: list[BenchResult] = []
    runs: list[_Run] = []
    try:
        for backend in backends:
            got = _open(model, backend, batch, setup)
            if isinstance(got, _Run):
                runs.append(got)
                rows.append(got.result)
            else:
                rows.append(got)
        for r in runs:
            r.call(setup.warmup)
            r.times.clear()
            r.gpu.clear()
            r.spent = 0.0
        _time_runs(runs, iters, duration, max_seconds)
    finally:
        for r in runs:
            r.session.close()
    for r in runs:
        stats = LatencyStats.from_seconds(r.times)
        r.result.latency_ms = stats.to_dict()
        r.result.iters = stats.n
        r.result.throughput_fps = round(batch * 1000.0 / stats.mean, 3)
        r.result.gpu_ms = r.gpu_stats()
    return rows
