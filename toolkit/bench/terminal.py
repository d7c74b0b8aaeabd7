"""The benchmark's tables for the terminal (rich): the rows, their resources, the ``--e2e`` runs.

- The main table: ``#`` (the row number ``--baseline`` takes), backend, precision, batch,
  threads (when rows differ in them), latency, throughput, speedup against the baseline row
  and status. A failure's reason is printed once below, numbered; an emulated row is marked.
- The resources table (when something was measured): file size, cold start, peak RSS, and the
  floor (achieved GFLOP/s, efficiency against the machine's GEMM rate, plain ONNX Runtime's
  p50 and edgetk's overhead over it), keyed by ``#``.
- The ``--e2e`` table: FPS, frame age and per-stage p50/p99, beside the model-only row.
"""

from __future__ import annotations

from typing import Any

from toolkit.bench.documents import RESOURCES, short_model
from toolkit.bench.documents import fmt_number as _fmt
from toolkit.bench.rows import BenchReport, BenchResult, speedups

# The main table's columns after "#" and "model" (the latter when there are several models).
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
# The resources table: key -> (header, digits, what the header means, printed under it).
_RESOURCES = {key: (short, digits, note) for key, _, short, digits, note in RESOURCES}


def render_table(report: BenchReport) -> Any:
    """A rich renderable: the rows, each unavailable reason once, then the resources and
    ``--e2e`` tables when the report has them."""
    from rich.console import Group
    from rich.text import Text

    results = report.results
    many_models = len({r.model for r in results}) > 1
    swept = len({r.threads for r in results if r.threads is not None}) > 1
    table = _empty_table(report, many_models, swept)
    base = report.base_row()
    ratios = speedups(results, report.baseline)
    notes: dict[str, int] = {}
    emulated: dict[str, None] = {}  # ordered set of the "*" notes
    for i, (r, sp) in enumerate(zip(results, ratios, strict=True), start=1):
        lat = r.latency_ms or {}
        table.add_row(
            str(i),
            *([Text(short_model(r.model))] if many_models else []),
            r.backend,
            _precision_text(r, "*"),  # short: the status column and its note say the rest
            str(r.batch),
            *([_fmt_threads(r)] if swept else []),
            _fmt(lat.get("mean")),
            _fmt(lat.get("p50")),
            _fmt(lat.get("p99")),
            _fmt(r.throughput_fps, 0),
            _speedup_text(sp, base == i),
            _status_cell(r, notes, emulated),
        )
    lines = [Text(why, style="magenta") for why in emulated]
    lines += [Text(f"[{n}] {why}", style="yellow") for why, n in notes.items()]
    lines.insert(0, Text(_speedup_note(report, ratios)))
    parts = [p for p in (_resources_table(report), _e2e_table(report)) if p is not None]
    return Group(table, *[line for line in lines if line.plain], *parts)


def _speedup_note(report: BenchReport, ratios: list[float | None]) -> str:
    base = report.base_row()
    if report.baseline is not None and base is None:
        return f"speedup: none (the baseline, row {report.baseline}, has no comparable latency)"
    if base is None or sum(sp is not None for sp in ratios) < 2:
        return ""
    return f"speedup: throughput against row {base} (same batch: its mean latency / this one)"


def _fmt_threads(r: BenchResult) -> str:
    return "-" if r.threads is None else str(r.threads)


def _empty_table(report: BenchReport, many_models: bool, swept: bool) -> Any:
    """The table with its title, machine caption and columns, no rows yet."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from toolkit.bench.documents import machine_line

    results = report.results
    title = "edgetk benchmark"
    if results and not many_models:
        title += f": {results[0].model}"
    # Text, not markup strings: statuses hold brackets ("edgetk[gpu]") rich would eat.
    table = Table(
        title=Text(title),
        caption=Text(machine_line(report.machine)),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1, 0, 0),  # two spaces between columns: 80 columns hold the table
    )
    columns = [("#", "right"), *((("model", "left"),) if many_models else ()), *_COLUMNS]
    if swept:
        columns.insert(columns.index(("batch", "right")) + 1, ("thr", "right"))
    for col, justify in columns:
        table.add_column(col, justify=justify, no_wrap=col != "model")  # type: ignore[arg-type]
    return table


def _precision_text(r: BenchResult, mark: str = " (emulated)") -> str:
    """``int8 (emulated)`` for a row whose latency is an emulation's, else the precision."""
    text = r.precision or "-"
    return f"{text}{mark}" if r.emulated is not None else text


def _emulation_note(r: BenchResult) -> str:
    from toolkit.backends.ort_options import emulation_note

    what = emulation_note(str(r.emulated))
    return f"* {r.backend}: {what}; the latency is not int8 latency (no speedup shown)"


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


def _small_table(title: str, headers: list[str], left: tuple[int, ...] = (1,)) -> Any:
    """A titled table of ``headers``; the columns at ``left`` are left-aligned, others right."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i in left else "right", no_wrap=True)
    return table


def _resources_table(report: BenchReport) -> Any:
    """File size, cold start, memory and the floor per row that ran (None: nothing known)."""
    from rich.console import Group
    from rich.text import Text

    ran = [(i, r) for i, r in enumerate(report.results, start=1) if r.ran]
    keys = [k for k in _RESOURCES if any(getattr(r, k) is not None for _, r in ran)]
    if not keys:
        return None
    headers = ["#", "backend", "thr"] + [_RESOURCES[k][0] for k in keys]
    table = _small_table("resources and floor", headers)
    for i, r in ran:
        cells = [_fmt(getattr(r, k), _RESOURCES[k][1]) for k in keys]
        table.add_row(str(i), r.backend, _fmt_threads(r), *cells)
    notes = [f"{_RESOURCES[k][0]}: {_RESOURCES[k][2]}" for k in keys if _RESOURCES[k][2]]
    lines = [Text("; ".join(notes), style="dim")]
    floor = report.floor or {}
    if floor.get("gflops") is not None:
        how = f"{floor['gflops']:.1f} GFLOP/s ({floor.get('how', 'GEMM')})"
        lines.append(Text(f"GEMM rate of this machine: {how}"))
    return Group(table, *lines)


def _e2e_table(report: BenchReport) -> Any:
    """The ``--e2e`` runs: FPS beside the model-only row's, frame age, then the stages' p50 /
    p99 (a column per run)."""
    from rich.console import Group
    from rich.text import Text

    if not report.e2e:
        return None
    sources = ", ".join(dict.fromkeys(str(e.get("source")) for e in report.e2e))
    headers = ["#", "backend", "batch", "fps", "model fps", "e2e/model", "age p50", "age p99"]
    table = _small_table(f"end to end on {sources} (ms; # is the model-only row)", headers)
    ran = [e for e in report.e2e if e.get("status", "ok") == "ok"]
    for e in ran:
        age = e.get("frame_age_ms") or {}
        table.add_row(
            _fmt_row(e), str(e.get("backend")), str(e.get("batch")), _fmt(e.get("fps"), 1),
            _fmt(e.get("model_fps"), 1), _fmt(e.get("e2e_ratio")), _fmt(age.get("p50"), 1),
            _fmt(age.get("p99"), 1),
        )  # fmt: skip
    failed = [Text(f"e2e #{_fmt_row(e)} {e.get('backend')}: {e.get('status')}", style="yellow")
              for e in report.e2e if e not in ran]  # fmt: skip
    return Group(table, *failed, *([_stages_table(ran)] if ran else []))


def _stages_table(runs: list[dict[str, Any]]) -> Any:
    """Per stage (rows), each run's p50 / p99 in ms (columns, named by their model row)."""
    stages = list(dict.fromkeys(s for e in runs for s in (e.get("stages") or {})))
    names = [f"#{_fmt_row(e)} {e.get('backend')}" for e in runs]
    table = _small_table("stages: p50 / p99 ms", ["stage", *names], left=(0,))
    for stage in stages:
        table.add_row(stage, *(_p50_p99((e.get("stages") or {}).get(stage)) for e in runs))
    return table


def _p50_p99(stage: dict[str, Any] | None) -> str:
    return "-" if stage is None else f"{_fmt(stage.get('p50'))} / {_fmt(stage.get('p99'))}"


def _fmt_row(e: dict[str, Any]) -> str:
    return "-" if e.get("row") is None else str(e["row"])
