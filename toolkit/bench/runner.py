"""Latency and throughput of models x backends x batch sizes x thread counts, side by side.

For one model and batch, every row's session (each backend at each ``--threads`` value) is
opened and warmed up first, then the timed calls are interleaved in blocks (row A 10 calls,
B 10 calls, A 10 calls...), so a noisy phase of the machine hits all rows alike and their
ratio stays honest. Rows are numbered in this order: model, batch, backend, threads.

A PyTorch reference on an ONNX backend runs its export, made once and cached by content hash
(:mod:`toolkit.bench.cache`); its torch rows run the reference itself. Sessions are opened
with the settings the live loop uses unless ``threads`` / ``spinning`` say otherwise
(:func:`toolkit.backends.ort_options.spin_wait`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from toolkit.backends import BACKENDS, is_backend_name, is_engine, is_onnx
from toolkit.bench.peak_rss import PeakRss
from toolkit.bench.rows import EMULATED_STATUS, BenchReport, BenchResult
from toolkit.bench.sessions import THREADLESS, Run, Setup, finish_run, open_run
from toolkit.errors import BadInputError, ToolkitError
from toolkit.model.spec import SpecOverrides

_Run = Run  # its name before toolkit.bench.sessions (tests/backends time a fake session with it)

__all__ = ["EMULATED_STATUS", "BenchReport", "BenchResult", "benchmark"]

DEFAULT_ITERS = 200
# Without --iters or --duration: 200 calls, but no more than this many seconds per row.
DEFAULT_MAX_SECONDS = 10.0
_BLOCKS = 10  # timed calls are interleaved across rows in about this many blocks


@dataclass(frozen=True)
class _Model:
    """A model to benchmark: its text, the file ONNX backends run, or why there is none."""

    text: str
    file: str | None = None  # the .onnx / engine itself, or a reference's cached export
    failure: str | None = None  # why a reference has no export

    @property
    def is_reference(self) -> bool:
        return not is_onnx(self.text) and not is_engine(self.text)


def _time_runs(
    runs: list[Run], iters: int | None, duration: float | None, max_seconds: float | None = None
) -> None:
    """Interleave the timed calls of ``runs`` in blocks until each has its iters/duration.

    With ``iters``, a run also stops once it has spent ``max_seconds`` (the default cap).
    """
    if iters is not None:
        block = max(1, math.ceil(iters / _BLOCKS))

        def wants(r: Run) -> bool:
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
    unknown = [b for b in backends if not is_backend_name(b)]
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


def thread_counts(threads: int | Sequence[int | None] | None) -> list[int | None]:
    """``threads`` as the sweep's list (None: the default count), duplicates dropped."""
    values = [threads] if threads is None or isinstance(threads, int) else list(threads)
    values = list(dict.fromkeys(None if t is None else int(t) for t in values)) or [None]
    if any(t is not None and t < 1 for t in values):
        raise BadInputError(f"--threads must be >= 1, got {values}")
    return values


_Plan = list[tuple[str, int | None]]  # (backend, threads) per row, in row order


def _plan(model: str, backends: list[str], threads: list[int | None]) -> _Plan:
    """One model and batch's rows: (backend, threads) in row order; an engine or a backend
    without CPU threads gets one row."""
    rows: list[tuple[str, int | None]] = []
    for backend in backends:
        if backend in THREADLESS or is_engine(model):
            rows.append((backend, None))
        else:
            rows.extend((backend, t) for t in threads)
    return rows


def _check_baseline(baseline: int | None, models: Sequence[str | Path], batches: Sequence[int],
                    backends: list[str], threads: list[int | None]) -> None:  # fmt: skip
    total = len(batches) * sum(len(_plan(str(m), backends, threads)) for m in models)
    if baseline is not None and not 1 <= baseline <= total:
        raise BadInputError(f"--baseline must be a row number from 1 to {total}, got {baseline}")


def benchmark(
    models: Sequence[str | Path],
    backends: Sequence[str],
    batches: Sequence[int],
    *,
    warmup: int = 20,
    iters: int | None = None,
    duration: float | None = None,
    threads: int | Sequence[int | None] | None = None,
    overrides: SpecOverrides | None = None,
    weights: str | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    model_source: str | None = None,
    spinning: bool | None = None,
    baseline: int | None = None,
    cache_dir: str | Path | None = None,
) -> BenchReport:
    """Measure every model x backend x batch x threads; unavailable ones are reported.

    Args:
        models: ``.onnx`` files, engines, or PyTorch references (exported for ONNX backends).
        backends: backend names (``auto`` is reported as the backend it picked).
        batches: batch sizes; a static-batch model is measured only at its own batch.
        warmup: untimed calls per row first.
        iters: timed calls per row (default 200, stopping early after 10 s).
        duration: timed seconds per row instead of a call count.
        threads: CPU threads, or a list (a sweep: rows per count; default: physical cores).
        overrides: spec values for foreign ONNX files and for exports (``--imgsz``...).
        weights: checkpoint for the torch backend and for a reference's export.
        seed: seed of the random inputs.
        progress: called with a short line before each model and batch (and each export).
        model_source: the PyTorch reference the torch backend runs for the ``.onnx`` models
            (``--model-source``; see :func:`toolkit.backends.open_session`).
        spinning: ONNX Runtime intra-op spin wait (None: the live loop's default).
        baseline: the row (1-based) speedups are against (None: the first row that ran).
        cache_dir: where exports are cached (default :func:`toolkit.bench.cache.default_cache_dir`).

    Example:
        >>> report = benchmark(["zoo:resnet18"], ["ort-cpu", "torch"], [1, 8], iters=50)
        >>> [(r.backend, r.batch, r.latency_ms["p50"]) for r in report.results if r.ok]
    """
    from toolkit.platform.machine import machine_info

    backends = list(dict.fromkeys(b.strip().lower() for b in backends))  # order kept
    counts = thread_counts(threads)
    _check_args(backends, batches, warmup, iters, duration)
    _check_baseline(baseline, models, batches, backends, counts)
    max_seconds = DEFAULT_MAX_SECONDS if iters is None and duration is None else None
    iters = DEFAULT_ITERS if max_seconds is not None else iters
    setup = Setup(warmup, overrides, weights, seed, model_source, spinning)
    report = BenchReport(machine=machine_info(), baseline=baseline)
    for text in models:
        model = _prepare(str(text), backends, setup, cache_dir, progress)
        for batch in batches:
            plan = _plan(model.text, backends, counts)
            _say_plan(progress, model.text, int(batch), plan)
            rows = _measure(model, int(batch), plan, setup, iters, duration, max_seconds)
            report.results.extend(rows)
    return report


def _say_plan(progress: Callable[[str], None] | None, model: str, batch: int, plan: _Plan) -> None:
    """``MODEL batch N: ort-cpu, torch`` (``ort-cpu x1, ort-cpu x2`` in a threads sweep)."""
    if progress is None:
        return
    swept = len({t for _, t in plan if t is not None}) > 1
    rows = ", ".join(f"{b} x{t}" if swept and t is not None else b for b, t in plan)
    progress(f"{model} batch {batch}: {rows}")


def _prepare(
    text: str, backends: list[str], setup: Setup, cache_dir: str | Path | None,
    progress: Callable[[str], None] | None,
) -> _Model:  # fmt: skip
    """The model with the file its ONNX backends run: a reference is exported (or found in
    the cache) when one of ``backends`` needs ONNX; an export that fails is their status."""
    model = _Model(text, file=None if _Model(text).is_reference else text)
    if not model.is_reference or all(b in ("torch", "auto") for b in backends):
        return model
    from toolkit.bench.cache import cached_export

    try:
        got = cached_export(
            text, weights=setup.weights, overrides=setup.overrides, cache_dir=cache_dir,
            progress=progress,
        )  # fmt: skip
    except BadInputError:
        raise  # a reference or weights that do not load: the torch rows could not run either
    except ToolkitError as e:  # the exporter failed, or its file does not match PyTorch
        return _Model(text, failure=f"unavailable: the ONNX export failed: {e}")
    return _Model(text, file=str(got.path))


def _target(model: _Model, row: BenchResult) -> str | None:
    """What ``row`` opens (the reference for torch / auto, else the ONNX file or engine), or
    None with ``row.status`` saying why it cannot run."""
    if row.backend in ("torch", "auto") and model.is_reference:
        return model.text
    if model.failure is not None:
        row.status = model.failure
        return None
    file = model.file or model.text
    engine_ok = row.backend in ("tensorrt", "auto") and is_engine(file)
    if row.backend not in ("torch", "auto") and not is_onnx(file) and not engine_ok:
        row.status = f"unavailable: {row.backend} runs ONNX files; export {model.text} first"
        return None
    return file


def _measure(
    model: _Model,
    batch: int,
    plan: _Plan,
    setup: Setup,
    iters: int | None,
    duration: float | None,
    max_seconds: float | None,
) -> list[BenchResult]:
    """One model and batch on every planned row: all opened and warmed up, then timed
    together; each row's peak RSS window runs from its open to the end of the timed calls."""
    rows: list[BenchResult] = []
    runs: list[Run] = []
    rss = PeakRss()
    try:
        for backend, threads in plan:
            row = BenchResult(
                model=model.text, backend=backend, precision=None, batch=batch,
                warmup=setup.warmup, file=model.file,
            )  # fmt: skip
            rows.append(row)
            rss.start(row)
            target = _target(model, row)
            got = None if target is None else open_run(row, target, threads, setup)
            if target is None:
                row.precision = "fp32"  # a PyTorch reference
            if got is not None:
                runs.append(got)
        for r in runs:
            r.call(setup.warmup)
            r.restart()
        _time_runs(runs, iters, duration, max_seconds)
        rss.finish([r.result for r in runs])
    finally:
        for r in runs:
            r.session.close()
    for r in runs:
        finish_run(r, batch)
    return rows
