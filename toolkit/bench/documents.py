"""Benchmark reports as documents: Markdown and a standalone HTML page.

Both are made from the report dict (``BenchReport.to_dict()``, the ``--json`` document) and
hold what the terminal's tables do: the machine line, the rows (``#``, model, backend,
precision, batch, threads when swept, latency, throughput, speedup, status), then the
resources and floor, the ``--e2e`` runs and their stages when the report has them, and the
plot (a PNG from :func:`toolkit.bench.plot.plot_report`) when one is given. The Markdown links
the PNG; the HTML inlines it (base64), so the page stands alone.

Every key past the SPEC's may be missing (reports written by older versions): a column whose
key no row has is left out, a missing value reads "-".
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError

Row = dict[str, Any]
Table = tuple[list[str], list[str], list[list[str]]]  # headers, "l"/"r" aligns, cells


def machine_line(machine: dict[str, Any]) -> str:
    """``CPU (N cores), GPU; lib version, ...``: the line under every table."""
    versions = machine.get("versions") or {}
    libs = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    gpu = machine.get("gpu") or "no GPU"
    return f"{machine.get('cpu')} ({machine.get('cores')} cores), {gpu}; {libs}"


def short_model(model: str) -> str:
    """A model file's name without its folders; a reference (``zoo:resnet18``) as it is."""
    return Path(model).name if Path(model).suffix else model


def row_label(row: Row, *, number: bool = True, batch: bool = True) -> str:
    """``#3 m.onnx ort-cpu fp32 b8 t2``: a row as the plot and the comparison name it (the
    ``#row`` and ``tN`` parts only when the row has them)."""
    parts = [f"#{row['row']}"] if number and row.get("row") is not None else []
    parts += [short_model(str(row.get("model"))), str(row.get("backend")),
              str(row.get("precision") or "-")]  # fmt: skip
    if batch:
        parts.append(f"b{row.get('batch')}")
    if row.get("threads") is not None:
        parts.append(f"t{row['threads']}")
    return " ".join(parts)


def fmt_number(x: Any, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _text(x: Any) -> str:
    return "-" if x is None else str(x)


def _lat(key: str) -> Callable[[Row], str]:
    return lambda r: fmt_number((r.get("latency_ms") or {}).get(key))


def _precision(r: Row) -> str:
    text = r.get("precision") or "-"
    return f"{text} (emulated)" if r.get("emulated") is not None else text


def _speedup(r: Row) -> str:
    sp = r.get("speedup")
    return "-" if sp is None else f"{sp:.2f}x"


Column = tuple[str, str, Callable[[Row], str]]  # header, align, cell

# The main table's columns after "#" and before "status"; "threads" goes after "batch" when
# the rows differ in it (a --threads sweep), as in the terminal's table.
_COLUMNS: tuple[Column, ...] = (
    ("model", "l", lambda r: str(r.get("model"))),
    ("backend", "l", lambda r: str(r.get("backend"))),
    ("precision", "l", _precision),
    ("batch", "r", lambda r: str(r.get("batch"))),
    ("mean ms", "r", _lat("mean")),
    ("p50 ms", "r", _lat("p50")),
    ("p90 ms", "r", _lat("p90")),
    ("p99 ms", "r", _lat("p99")),
    ("throughput fps", "r", lambda r: fmt_number(r.get("throughput_fps"), 1)),
    ("speedup", "r", _speedup),
)
_NUMBER: Column = ("#", "r", lambda r: _text(r.get("row")))
# (key, header, digits) of the resources table, here and in the terminal's; a column no row
# has is left out.
# The per-row resources and floor: key, document header, terminal header, digits, the note
# printed under the terminal table (None: the header says it all).
RESOURCES: tuple[tuple[str, str, str, int, str | None], ...] = (
    ("file_mb", "file MB", "file MB", 1, None),
    ("cold_start_ms", "cold start ms", "cold ms", 1, "session open + first inference"),
    ("peak_rss_mb", "peak RSS MB", "RSS MB", 0, "the process's peak from the row's open to the "
     "end of its timed calls (the rows of one model and batch share that window)"),
    ("gflops", "GFLOP/s", "GFLOP/s", 1, None),
    ("efficiency", "efficiency", "eff", 3, "GFLOP/s (2 x MACs / p50) over the machine's GEMM rate"),
    ("plain_ort_p50_ms", "plain ORT p50 ms", "ORT p50", 2, "plain ONNX Runtime on the same file"),
    ("overhead_pct", "overhead %", "ovh %", 1, "this row's p50 over plain ONNX Runtime's"),
)  # fmt: skip
RESOURCE_COLUMNS = tuple((key, header, digits) for key, header, _, digits, _ in RESOURCES)


def _cells(columns: list[Column], rows: list[Row]) -> Table:
    return (
        [c[0] for c in columns],
        [c[1] for c in columns],
        [[cell(r) for _, _, cell in columns] for r in rows],
    )


def results_table(report: dict[str, Any]) -> Table:
    """The result rows as text cells: ``#`` first when rows are numbered, ``threads`` when
    they differ in it, the status last."""
    rows: list[Row] = report.get("results") or []
    columns = list(_COLUMNS)
    if len({r["threads"] for r in rows if r.get("threads") is not None}) > 1:
        columns.insert(4, ("threads", "r", lambda r: _text(r.get("threads"))))
    if any(r.get("row") is not None for r in rows):
        columns.insert(0, _NUMBER)
    columns.append(("status", "l", lambda r: str(r.get("status"))))
    return _cells(columns, rows)


def resources_table(report: dict[str, Any]) -> Table | None:
    """File size, cold start, memory and the floor per row that ran: the ``RESOURCE_COLUMNS``
    some row has (None: nothing of that was measured)."""
    ran = [r for r in report.get("results") or [] if r.get("latency_ms")]
    keys = [k for k in RESOURCE_COLUMNS if any(r.get(k[0]) is not None for r in ran)]
    if not keys:
        return None
    columns = [_NUMBER, _COLUMNS[1], ("threads", "r", lambda r: _text(r.get("threads")))]
    columns += [(header, "r", lambda r, k=key, d=digits: fmt_number(r.get(k), d))
                for key, header, digits in keys]  # fmt: skip
    return _cells(columns, ran)


def model_only_row(report: dict[str, Any], entry: Row) -> Row | None:
    """The model-only row an ``--e2e`` entry ran beside: the one its ``row`` names, else the
    first with its model, backend and batch that ran."""
    rows = report.get("results") or []
    if entry.get("row") is not None:
        return next((r for r in rows if r.get("row") == entry["row"]), None)
    for r in rows:
        same = all(r.get(k) == entry.get(k) for k in ("model", "backend", "batch"))
        if same and (r.get("latency_ms") or {}).get("p50") is not None:
            return r
    return None


def _e2e_cells(report: dict[str, Any], e: Row) -> list[str]:
    alone = e.get("model_fps", (model_only_row(report, e) or {}).get("throughput_fps"))
    fps, age = e.get("fps"), e.get("frame_age_ms") or {}
    ratio = e.get("e2e_ratio", fps / alone if fps is not None and alone else None)
    return [fmt_number(fps, 1), fmt_number(alone, 1), "-" if ratio is None else f"{ratio:.2f}x",
            fmt_number(age.get("p50")), fmt_number(age.get("p99"))]  # fmt: skip


def e2e_table(report: dict[str, Any]) -> Table:
    """One line per ``--e2e`` run: FPS, the model-only row's beside it, the frame age (or the
    run's status when it did not run)."""
    headers = ["run", "#", "source", "frames", "e2e fps", "model-only fps", "e2e / model",
               "frame age p50 ms", "frame age p99 ms"]  # fmt: skip
    cells = []
    for e in report.get("e2e") or []:
        where = [row_label(e, number=False), _text(e.get("row")), str(e.get("source")),
                 _text(e.get("frames"))]  # fmt: skip
        status = str(e.get("status", "ok"))
        numbers = _e2e_cells(report, e) if status == "ok" else [status, "", "", "", ""]
        cells.append(where + numbers)
    return headers, ["l", "r", "l"] + ["r"] * 6, cells


def stages_table(report: dict[str, Any]) -> Table:
    """One line per (``--e2e`` run, stage): the stage's p50, p99 and mean in ms."""
    cells = []
    for e in report.get("e2e") or []:
        if e.get("status", "ok") != "ok":
            continue
        for stage, t in (e.get("stages") or {}).items():
            cells.append([row_label(e, number=False), str(stage), fmt_number(t.get("p50")),
                          fmt_number(t.get("p99")), fmt_number(t.get("mean"))])  # fmt: skip
    return ["run", "stage", "p50 ms", "p99 ms", "mean ms"], ["l", "l", "r", "r", "r"], cells


def floor_line(report: dict[str, Any]) -> str | None:
    """The machine's floor (its GEMM rate, how it was measured) as one line, if measured."""
    floor = report.get("floor")
    if not floor:
        return None
    if isinstance(floor, dict) and floor.get("gflops") is not None:
        how = f" ({floor['how']})" if floor.get("how") else ""
        return (f"Floor: this machine's GEMM rate is {floor['gflops']:.1f} GFLOP/s{how}; "
                "efficiency = GFLOP/s (2 x MACs / p50) over it.")  # fmt: skip
    return f"Floor: {json.dumps(floor)}"


def _sections(report: dict[str, Any]) -> list[tuple[str, Table]]:
    """The tables after the main one, with their titles: resources, e2e runs, stages."""
    out = []
    resources = resources_table(report)
    if resources is not None:
        out.append(("Resources and floor", resources))
    if report.get("e2e"):
        out += [("End to end (--e2e)", e2e_table(report)),
                ("Stages of the --e2e runs (ms per frame)", stages_table(report))]  # fmt: skip
    return out


# -- Markdown --------------------------------------------------------------------------------


def _markdown_table(table: Table) -> list[str]:
    headers, aligns, cells = table

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "/") for v in values) + " |"

    return [line(headers), line(["---:" if a == "r" else "---" for a in aligns])] + [
        line(c) for c in cells
    ]


def _markdown_link(plot: str | Path) -> str:
    target = Path(plot).as_posix()
    return f"![benchmark plot](<{target}>)" if " " in target else f"![benchmark plot]({target})"


def to_markdown(report: dict[str, Any], plot: str | Path | None = None) -> str:
    """The machine line, the table, then the resources, the ``--e2e`` runs, the floor and the
    plot when present. ``plot`` is put in the image link as it is: give it relative to the Markdown
    file (``write_report`` does)."""
    lines = [f"Machine: {machine_line(report.get('machine') or {})}", ""]
    lines += _markdown_table(results_table(report))
    for title, table in _sections(report):
        lines += ["", f"{title}:", "", *_markdown_table(table)]
    floor = floor_line(report)
    if floor:
        lines += ["", floor]
    if plot is not None:
        lines += ["", _markdown_link(plot)]
    return "\n".join(lines) + "\n"


# -- HTML ------------------------------------------------------------------------------------

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{padding:.25em .6em;border-bottom:1px solid #ddd}"
    "th{text-align:left;background:#f4f4f4}.r{text-align:right}"
    "img{max-width:100%}"
)


def _html_table(table: Table) -> str:
    headers, aligns, cells = table

    def cell(tag: str, text: str, align: str) -> str:
        cls = ' class="r"' if align == "r" else ""
        return f"<{tag}{cls}>{html.escape(text)}</{tag}>"

    head = "".join(cell("th", h, a) for h, a in zip(headers, aligns, strict=True))
    body = "".join(
        "<tr>" + "".join(cell("td", v, a) for v, a in zip(row, aligns, strict=True)) + "</tr>\n"
        for row in cells
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def _inline_png(plot: str | Path) -> str:
    p = Path(plot)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise BadInputError(f"cannot read the plot {p}: {e.strerror or e}") from e
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="benchmark plot" src="data:image/png;base64,{encoded}">'


def to_html(report: dict[str, Any], plot: str | Path | None = None) -> str:
    """A standalone page: what :func:`to_markdown` holds, every text escaped, and ``plot``
    (a PNG file) inlined as base64."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        f'<head><meta charset="utf-8"><title>edgetk benchmark</title><style>{_STYLE}</style>'
        "</head>",
        "<body>",
        "<h1>edgetk benchmark</h1>",
        f"<p>Machine: {html.escape(machine_line(report.get('machine') or {}))}</p>",
        _html_table(results_table(report)),
    ]
    for title, table in _sections(report):
        parts += [f"<h2>{html.escape(title)}</h2>", _html_table(table)]
    floor = floor_line(report)
    if floor:
        parts.append(f"<p>{html.escape(floor)}</p>")
    if plot is not None:
        parts.append(_inline_png(plot))
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"
