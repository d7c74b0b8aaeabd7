"""Benchmark reports: JSON (the SPEC's format), CSV, Markdown, and a table for humans.

The JSON holds exactly the SPEC's keys. The human table and the Markdown add a "speedup"
column: each backend's mean latency against the first backend that ran for the same model and
batch (``--backend torch,ort-cpu`` reads as "ORT is N x faster than eager").

A row that ran emulated (a tensorrt-target int8 file on ort-cpu, Q/DQ as float) is marked
(JSON ``"emulated"``, status ``EMULATED_STATUS``, "emulated" in the tables) and has no speedup,
nor is it any row's reference: its latency is not int8 latency.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from toolkit.bench.runner import BenchReport, BenchResult
from toolkit.errors import BadInputError
from toolkit.fileio import atomic_write_text, check_output

REPORT_SUFFIXES = (".json", ".csv", ".md")
_LAT_KEYS = ("mean", "p50", "p90", "p99", "min", "max", "std")


def _base_index(results: list[BenchResult]) -> dict[tuple[str, int], int]:
    """(model, batch) -> index of the first result that ran: the speedups' reference."""
    base: dict[tuple[str, int], int] = {}
    for i, r in enumerate(results):
        if r.ok and r.latency_ms is not None and r.latency_ms["mean"] > 0:
            base.setdefault((r.model, r.batch), i)
    return base


def speedups(results: list[BenchResult]) -> list[float | None]:
    """For each result, base mean / its mean, the base being the first backend that ran for
    the same model and batch (None for rows that did not run)."""
    base = _base_index(results)
    out: list[float | None] = []
    for r in results:
        i = base.get((r.model, r.batch))
        ref = results[i].latency_ms if i is not None else None
        if not r.ok or r.latency_ms is None or ref is None or r.latency_ms["mean"] <= 0:
            out.append(None)
        else:
            out.append(ref["mean"] / r.latency_ms["mean"])
    return out


def to_json(report: BenchReport) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


def to_csv(report: BenchReport) -> str:
    """One row per result; latency columns in ms, empty for rows that did not run."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["model", "backend", "precision", "batch"]
        + [f"{k}_ms" for k in _LAT_KEYS]
        + ["throughput_fps", "iters", "warmup", "status"]
    )
    for r in report.results:
        lat = r.latency_ms or {}
        w.writerow(
            [r.model, r.backend, r.precision or "", r.batch]
            + [lat.get(k, "") for k in _LAT_KEYS]
            + [
                "" if r.throughput_fps is None else r.throughput_fps,
                r.iters,
                r.warmup,
                r.status,
            ]
        )
    return buf.getvalue()


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _machine_line(machine: dict[str, Any]) -> str:
    versions = machine.get("versions") or {}
    libs = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    gpu = machine.get("gpu") or "no GPU"
    return f"{machine.get('cpu')} ({machine.get('cores')} cores), {gpu}; {libs}"


def to_markdown(report: BenchReport) -> str:
    """A Markdown table with the machine above it (for docs/benchmarks.md and PRs)."""
    lines = [
        f"Machine: {_machine_line(report.machine)}",
        "",
        "| model | backend | precision | batch | mean ms | p50 ms | p90 ms | p99 ms | "
        "throughput fps | speedup | status |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r, sp in zip(report.results, speedups(report.results), strict=True):
        lat = r.latency_ms or {}
        lines.append(
            f"| {r.model} | {r.backend} | {_precision_text(r)} | {r.batch} | "
            f"{_fmt(lat.get('mean'))} | {_fmt(lat.get('p50'))} | {_fmt(lat.get('p90'))} | "
            f"{_fmt(lat.get('p99'))} | {_fmt(r.throughput_fps, 1)} | "
            f"{'-' if sp is None else f'{sp:.2f}x'} | {r.status.replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"


def write_report(report: BenchReport, path: str | Path, *, force: bool = False) -> Path:
    """Write the report as .json, .csv or .md (by suffix), atomically, never overwriting
    without ``force``."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise BadInputError(f"--out must end in {', '.join(REPORT_SUFFIXES)} (got '{p.name}')")
    check_output(p, force)
    text = {".json": to_json, ".csv": to_csv, ".md": to_markdown}[suffix](report)
    atomic_write_text(p, text)
    return p


def _precision_text(r: BenchResult, mark: str = " (emulated)") -> str:
    """``int8 (emulated)`` for a row whose latency is an emulation's, else the precision."""
    text = r.precision or "-"
    return f"{text}{mark}" if r.emulated is not None else text


def _emulation_note(r: BenchResult) -> str:
    from toolkit.backends.ort_options import emulation_note

    what = emulation_note(str(r.emulated))
    return f"* {r.backend}: {what}; the latency is not int8 latency (no speedup shown)"


# The table's columns after "model" (shown when the report holds several models).
_COLUMNS = (
    ("backend", "left"),
    ("prec", "left"),
    ("batch", "right"),
    ("mean ms", "right"),
    ("p50 ms", "right"),
    ("p99 ms", "right"),
    ("fps", "right"),
    ("speedup", "right"),
    ("status", "left"),
)


def render_table(report: BenchReport) -> Any:
    """A rich renderable for the terminal: the table, then each unavailable reason once."""
    from rich.console import Group
    from rich.text import Text

    results = report.results
    many_models = len({r.model for r in results}) > 1
    table = _empty_table(report, many_models)
    bases = _base_index(results)
    notes: dict[str, int] = {}
    emulated: dict[str, None] = {}  # ordered set of the "*" notes
    for i, (r, sp) in enumerate(zip(results, speedups(results), strict=True)):
        lat = r.latency_ms or {}
        model = [Text(Path(r.model).name if Path(r.model).suffix else r.model)]
        table.add_row(
            *(model if many_models else []),
            r.backend,
            _precision_text(r, "*"),  # short: the status column and its note say the rest
            str(r.batch),
            _fmt(lat.get("mean")),
            _fmt(lat.get("p50")),
            _fmt(lat.get("p99")),
            _fmt(r.throughput_fps, 0),
            _speedup_text(sp, bases.get((r.model, r.batch)) == i),
            _status_cell(r, notes, emulated),
        )
    lines = [Text(why, style="magenta") for why in emulated]
    lines += [Text(f"[{n}] {why}", style="yellow") for why, n in notes.items()]
    if len(results) > len(bases) and any(sp is not None for sp in speedups(results)):
        lines.insert(0, Text("speedup: mean latency of the first backend that ran / this one"))
    return Group(table, *lines)


def _empty_table(report: BenchReport, many_models: bool) -> Any:
    """The table with its title, machine caption and columns, no rows yet."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    results = report.results
    title = "edgetk benchmark"
    if results and not many_models:
        title += f": {results[0].model}"
    # Text, not markup strings: statuses hold brackets ("edgetk[gpu]") rich would eat.
    table = Table(
        title=Text(title),
        caption=Text(_machine_line(report.machine)),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    columns = ((("model", "left"),) if many_models else ()) + _COLUMNS
    for col, justify in columns:
        table.add_column(col, justify=justify, no_wrap=col != "model")  # type: ignore[arg-type]
    return table


def _speedup_text(speedup: float | None, is_base: bool) -> str:
    if speedup is None:
        return "-"
    return "base" if is_base else f"{speedup:.2f}x"


def _status_cell(r: BenchResult, notes: dict[str, int], emulated: dict[str, None]) -> Any:
    """The status cell; an emulated row's note goes to ``emulated``, a failure's to ``notes``
    (numbered, each reason once)."""
    from rich.text import Text

    if r.emulated is not None and r.ran:
        emulated[_emulation_note(r)] = None
        return Text("emulated", style="magenta")
    if not r.ok:
        ref = notes.setdefault(f"{r.backend}: {r.status}", len(notes) + 1)
        return Text(f"n/a [{ref}]", style="yellow")
    return Text(r.status)
