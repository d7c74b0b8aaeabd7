"""Benchmark reports: JSON (the SPEC's format plus additions), CSV, Markdown, HTML, and the
terminal's tables (:mod:`toolkit.bench.terminal`).

The JSON holds the SPEC's keys and, per result, its ``row`` number, its ``speedup`` (throughput
against the ``--baseline`` row, across models and batches too) and the additions
:class:`~toolkit.bench.rows.BenchResult` lists; the report's ``baseline`` is the row used.

A row that ran emulated (a tensorrt-target int8 file on ort-cpu, Q/DQ as float) is marked
(JSON ``"emulated"``, status ``EMULATED_STATUS``, "emulated" in the tables) and has no speedup,
nor is it any row's baseline: its latency is not int8 latency.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from toolkit.bench.rows import BenchReport, speedups
from toolkit.bench.terminal import render_table
from toolkit.errors import BadInputError
from toolkit.fileio import atomic_write_text, check_output

__all__ = ["REPORT_SUFFIXES", "render_table", "speedups", "to_csv", "to_json", "write_report"]

REPORT_SUFFIXES = (".json", ".csv", ".md", ".html")
_LAT_KEYS = ("mean", "p50", "p90", "p99", "min", "max", "std")
# The CSV's columns after the SPEC's (each result's additions, lists left out).
_CSV_ADDED = (
    "threads", "spinning", "file_mb", "cold_start_ms", "peak_rss_mb", "gflops", "efficiency",
    "plain_ort_p50_ms", "overhead_pct",
)  # fmt: skip


def to_json(report: BenchReport) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


def to_csv(report: BenchReport) -> str:
    """One row per result; latency columns in ms, empty for rows that did not run; then the
    row number, the speedup and the scalar additions."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["model", "backend", "precision", "batch"]
        + [f"{k}_ms" for k in _LAT_KEYS]
        + ["throughput_fps", "iters", "warmup", "status", "row", "speedup", *_CSV_ADDED]
    )
    ratios = speedups(report.results, report.baseline)
    for i, (r, sp) in enumerate(zip(report.results, ratios, strict=True), start=1):
        lat = r.latency_ms or {}
        w.writerow(
            [r.model, r.backend, r.precision or "", r.batch]
            + [lat.get(k, "") for k in _LAT_KEYS]
            + [_cell(r.throughput_fps), r.iters, r.warmup, r.status, i, _cell(sp)]
            + [_cell(getattr(r, k)) for k in _CSV_ADDED]
        )
    return buf.getvalue()


def _cell(x: Any) -> Any:
    if isinstance(x, float):
        return round(x, 4)
    return "" if x is None else x


def to_markdown(report: BenchReport, plot: str | Path | None = None) -> str:
    """A Markdown table with the machine above it (for docs/benchmarks.md and PRs); see
    :func:`toolkit.bench.documents.to_markdown` (``plot``: the image link's target)."""
    from toolkit.bench import documents

    return documents.to_markdown(report.to_dict(), plot)


def write_report(
    report: BenchReport, path: str | Path, *, force: bool = False, plot: str | Path | None = None
) -> Path:
    """Write the report as .json, .csv, .md or .html (by suffix), atomically, never
    overwriting without ``force``.

    ``plot`` (a PNG from :func:`toolkit.bench.plot.plot_report`) is embedded in .md (a link
    relative to the file's folder) and .html (inlined, so the page stands alone); .json and
    .csv do not take it.
    """
    from toolkit.bench import documents

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise BadInputError(f"--out must end in {', '.join(REPORT_SUFFIXES)} (got '{p.name}')")
    check_output(p, force)
    if suffix == ".md":
        link = None if plot is None else os.path.relpath(Path(plot).resolve(), p.resolve().parent)
        text = to_markdown(report, link)
    elif suffix == ".html":
        text = documents.to_html(report.to_dict(), plot)
    else:
        text = {".json": to_json, ".csv": to_csv}[suffix](report)
    atomic_write_text(p, text)
    return p
