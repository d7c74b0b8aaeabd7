"""What ``edgetk benchmark`` measures beside the timed rows: the floor and the ``--e2e`` runs.

- :func:`add_floor`: the machine's GEMM rate (``report.floor``, measured once and cached by
  :mod:`toolkit.bench.floor`), and per row that ran: ``gflops`` (2 x MACs over the p50
  latency), ``efficiency`` (that over the GEMM rate) and, for ``ort-cpu`` rows, plain ONNX
  Runtime's p50 on the same file (``plain_ort_p50_ms``) and edgetk's ``overhead_pct`` over it.
  Measured after every row, so they never share the machine with the timed calls.
- :func:`add_e2e`: each model x backend at the first batch and thread count runs through the
  live loop (:func:`toolkit.bench.e2e.e2e_benchmark`) in a session opened as its row's was,
  beside the row's model-only throughput.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from toolkit.backends import is_onnx
from toolkit.bench.rows import BenchReport, BenchResult
from toolkit.errors import ToolkitError
from toolkit.model.spec import SpecOverrides

log = logging.getLogger(__name__)

Progress = Callable[[str], None] | None
_PLAIN_ITERS = (10, 100)  # plain ONNX Runtime's timed calls: the row's count, within these


def _say(progress: Progress, line: str) -> None:
    if progress is not None:
        progress(line)


def add_floor(
    report: BenchReport, *, overrides: SpecOverrides | None = None, progress: Progress = None
) -> None:
    """Fill in ``report.floor`` and each measured row's floor columns (module notes)."""
    from toolkit.bench import floor

    _say(progress, "floor: the machine's GEMM rate, MACs, plain ONNX Runtime")
    report.floor = floor.gemm_rate(None)
    # A row is held to the GEMM rate at its own thread count (a --threads sweep has several).
    gemm: dict[int | None, float | None] = {None: report.floor.get("gflops")}
    macs: dict[tuple[str, int], int | None] = {}
    plain: dict[tuple[str, int, int | None], dict[str, Any] | None] = {}
    for r in report.results:
        if not r.ok or r.latency_ms is None or r.latency_ms["p50"] <= 0:
            continue  # not run, or emulated: nothing to compare with the floor
        what = r.file or r.model
        if (what, r.batch) not in macs:
            macs[what, r.batch] = floor.model_macs(what, r.batch, overrides)
        if r.threads not in gemm:
            gemm[r.threads] = floor.gemm_rate(r.threads).get("gflops")
        _rate_columns(r, macs[what, r.batch], gemm[r.threads])
        if r.backend == "ort-cpu" and r.file is not None and is_onnx(r.file):
            key = (r.file, r.batch, r.threads)
            if key not in plain:
                iters = min(max(r.iters, _PLAIN_ITERS[0]), _PLAIN_ITERS[1])
                plain[key] = floor.plain_ort_latency(r.file, r.batch, r.threads, iters)
            _overhead_columns(r, plain[key])


def _rate_columns(r: BenchResult, macs: int | None, gemm: float | None) -> None:
    assert r.latency_ms is not None
    if not macs:
        return
    r.gflops = round(2.0 * macs / (r.latency_ms["p50"] / 1000.0) / 1e9, 3)
    if gemm:
        r.efficiency = round(r.gflops / gemm, 4)


def _overhead_columns(r: BenchResult, plain: dict[str, Any] | None) -> None:
    assert r.latency_ms is not None
    p50 = None if plain is None else plain.get("p50_ms")
    if not p50:
        return
    r.plain_ort_p50_ms = round(float(p50), 4)
    r.overhead_pct = round((r.latency_ms["p50"] / p50 - 1.0) * 100.0, 2)


def e2e_rows(report: BenchReport) -> list[tuple[int, BenchResult]]:
    """(row number, row) of the first batch's first measured row per model x backend."""
    first_batch = report.results[0].batch if report.results else None
    picked: dict[tuple[str, str], tuple[int, BenchResult]] = {}
    for i, r in enumerate(report.results, start=1):
        if r.ran and r.batch == first_batch:
            picked.setdefault((r.model, r.backend), (i, r))
    return list(picked.values())


def add_e2e(
    report: BenchReport,
    source: str,
    *,
    overrides: SpecOverrides | None = None,
    weights: str | None = None,
    model_source: str | None = None,
    max_frames: int = 300,
    progress: Progress = None,
) -> None:
    """``report.e2e``: one entry per :func:`e2e_rows` row; one that fails says why in its
    ``status`` (the others still run)."""
    from toolkit.backends import open_session
    from toolkit.bench.e2e import e2e_benchmark

    report.e2e = []
    for number, row in e2e_rows(report):
        _say(progress, f"e2e: {row.model} {row.backend} batch {row.batch} on {source}")
        target = row.model if row.backend == "torch" else (row.file or row.model)
        source_ref = model_source if row.backend == "torch" and is_onnx(row.model) else None
        entry: dict[str, Any] = {"model": row.model, "backend": row.backend, "batch": row.batch,
                                 "source": source, "row": number}  # fmt: skip
        try:
            with open_session(
                target, row.backend, overrides=overrides, threads=row.threads, weights=weights,
                spinning=row.spinning, opt_batch=row.batch, model_source=source_ref,
            ) as session:  # fmt: skip
                got = e2e_benchmark(target, source, backend=row.backend, batch=row.batch,
                                    max_frames=max_frames, session=session)  # fmt: skip
        except ToolkitError as e:
            report.e2e.append({**entry, "status": f"failed: {e}"})
            continue
        report.e2e.append(_with_model_row(got, entry, row))


def _with_model_row(got: dict[str, Any], entry: dict[str, Any], row: BenchResult) -> dict[str, Any]:
    """The e2e entry with its model-only row beside it: ``row``, ``threads``, ``model_fps``
    and ``e2e_ratio`` (e2e FPS over the row's throughput)."""
    fps, alone = got.get("fps"), row.throughput_fps
    ratio = round(fps / alone, 6) if fps is not None and alone else None
    return {**got, "model": row.model, "row": entry["row"], "threads": row.threads,
            "model_fps": alone, "e2e_ratio": ratio, "status": "ok"}  # fmt: skip
