"""Benchmark plots: one PNG of the report's panels (matplotlib, the ``plot`` extra).

Made from the report dict (``BenchReport.to_dict()``, the ``--json`` document). The panels
are stacked one above the other, each ``PANEL_INCHES`` (12 x 4 inches) at ``DPI`` (100), so a
plot of n panels is 1200 x 400n pixels:

1. **Latency per row**, always: a box per row that ran, labelled ``#row model backend
   precision bN tT``. From the row's call latencies (``samples_ms``): the box spans p25-p75
   with the median across it, the whiskers reach from the fastest call to p99, and the calls
   slower than p99 are dots. A row without samples is drawn hatched from its percentiles: the
   box spans p50-p90, the whiskers min to p99, the slowest call is a dot.
2. **Throughput against batch**, when some model x backend x precision x threads ran more
   than one batch: one line each.
3. **End to end**, when the report has ``e2e`` entries: a bar per run, the p50 of each stage
   stacked (a sum of medians, near but not equal to the median frame), with the loop's own
   ``end_to_end`` p50 (solid) and the model-only row's p50 per frame (dashed) across it.

Drawn on a matplotlib ``Figure`` (the Agg canvas), never through pyplot: no display, no global
state. The PNG is written atomically.
"""

from __future__ import annotations

import inspect
import io
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.bench.documents import model_only_row, row_label
from toolkit.errors import BadInputError, MissingDependencyError
from toolkit.fileio import atomic_write_bytes

PANEL_INCHES = (12, 4)  # width, height of one panel
DPI = 100
_LOG_SPAN = 30  # a log axis when the largest value is this many times the smallest


def _figure_class() -> Any:
    """matplotlib's Figure, or the one-line error that names the extra."""
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise MissingDependencyError("matplotlib", "plot", "--plot") from e
    return Figure


def plot_size(report: dict[str, Any]) -> tuple[int, int]:
    """The PNG's (width, height) in pixels for this report."""
    return PANEL_INCHES[0] * DPI, PANEL_INCHES[1] * DPI * len(_panels(report))


def plot_report(report: dict[str, Any], path: str | Path) -> Path:
    """Draw the report's panels (see the module's docstring) into one PNG at ``path``.

    Raises:
        BadInputError: ``path`` does not end in .png.
        MissingDependencyError: matplotlib is not installed (``pip install "edgetk[plot]"``).
    """
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise BadInputError(f"--plot must end in .png (got '{p.name}')")
    figure = _figure_class()
    panels = _panels(report)
    fig = figure(figsize=(PANEL_INCHES[0], PANEL_INCHES[1] * len(panels)), dpi=DPI)
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, draw in zip(axes, panels, strict=True):
        draw(ax, report)
    fig.tight_layout()  # moves the axes inside the figure; its size stays
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    atomic_write_bytes(p, buf.getvalue())
    return p


def _panels(report: dict[str, Any]) -> list[Any]:
    panels: list[Any] = [_draw_latency]
    if _throughput_lines(report):
        panels.append(_draw_throughput)
    if report.get("e2e"):
        panels.append(_draw_e2e)
    return panels


# -- latency ---------------------------------------------------------------------------------


def _ran(row: dict[str, Any]) -> bool:
    lat = row.get("latency_ms")
    return bool(lat) and lat.get("p50") is not None and str(row.get("status", "")).startswith("ok")


def _box_stats(row: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """matplotlib's box statistics for a row, and whether they come from its samples."""
    samples = np.asarray(row.get("samples_ms") or [], dtype=float)
    label = row_label(row)
    if samples.size >= 2:
        q1, med, q3, p99 = np.percentile(samples, [25, 50, 75, 99])
        lo = float(samples.min())
        return {"label": label, "med": med, "q1": q1, "q3": q3, "whislo": lo, "whishi": p99,
                "fliers": samples[samples > p99]}, True  # fmt: skip
    lat = row["latency_ms"]
    p50 = lat["p50"]
    low = lat.get("min", p50)
    high = lat.get("max")
    return {"label": label, "med": p50, "q1": p50, "q3": lat.get("p90", p50),
            "whislo": low, "whishi": lat.get("p99", p50),
            "fliers": [] if high is None else [high]}, False  # fmt: skip


def _horizontal() -> dict[str, Any]:
    """The keyword for horizontal boxes (``orientation`` since matplotlib 3.10, ``vert``
    before)."""
    from matplotlib.axes import Axes

    if "orientation" in inspect.signature(Axes.bxp).parameters:
        return {"orientation": "horizontal"}
    return {"vert": False}


def _draw_latency(ax: Any, report: dict[str, Any]) -> None:
    rows = report.get("results") or []
    ran = [r for r in rows if _ran(r)]
    title = "Latency per call (ms)"
    if len(ran) < len(rows):
        title += f"; {len(rows) - len(ran)} row(s) did not run"
    ax.set_title(title, loc="left", fontsize=10)
    if not ran:
        ax.text(0.5, 0.5, "no row ran", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    stats, measured = zip(*(_box_stats(r) for r in ran), strict=True)
    drawn = ax.bxp(list(stats), patch_artist=True, widths=0.6, **_horizontal())
    for box, from_samples in zip(drawn["boxes"], measured, strict=True):
        box.set_facecolor("#9ecae1" if from_samples else "white")
        if not from_samples:
            box.set_hatch("//")
    if not all(measured):
        ax.set_title("hatched: from percentiles (no samples)", loc="right", fontsize=8)
    values = [v for s in stats for v in (s["whislo"], s["whishi"], *s["fliers"])]
    if min(values) > 0 and max(values) / min(values) > _LOG_SPAN:
        _log_axis(ax.xaxis, ax.set_xscale)
    ax.invert_yaxis()  # row 1 on top, as in the table
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel("ms")
    ax.grid(axis="x", alpha=0.3)


def _log_axis(axis: Any, set_scale: Any) -> None:
    """A log axis whose ticks read as plain numbers (``20``, not ``2 x 10^1``)."""
    from matplotlib.ticker import FuncFormatter

    set_scale("log")
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    # Between the decades only 2 and 5 (and 20, 50...) are labelled: 8 9 10 would collide.
    axis.set_minor_formatter(FuncFormatter(lambda v, _pos: f"{v:g}" if _lead(v) in (2, 5) else ""))


def _lead(v: float) -> int:
    """The leading digit of a positive number (``20`` -> 2)."""
    return int(f"{v:e}"[0])


# -- throughput ------------------------------------------------------------------------------


def _throughput_lines(report: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """label -> [(batch, fps)] for each model x backend x precision x threads that ran more
    than one batch."""
    lines: dict[str, dict[int, float]] = {}
    for r in report.get("results") or []:
        if not _ran(r) or r.get("throughput_fps") is None:
            continue
        label = row_label(r, number=False, batch=False)
        lines.setdefault(label, {}).setdefault(int(r["batch"]), float(r["throughput_fps"]))
    return {k: sorted(v.items()) for k, v in lines.items() if len(v) > 1}


def _draw_throughput(ax: Any, report: dict[str, Any]) -> None:
    lines = _throughput_lines(report)
    for label, points in lines.items():
        batches, fps = zip(*points, strict=True)
        ax.plot(batches, fps, marker="o", label=label)
    batches = sorted({b for points in lines.values() for b, _ in points})
    if batches[-1] / batches[0] >= 8:
        ax.set_xscale("log", base=2)
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.set_ylim(bottom=0)
    ax.set_title("Throughput against batch", loc="left", fontsize=10)
    ax.set_xlabel("batch")
    ax.set_ylabel("images / s")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2 if len(lines) > 4 else 1)


# -- end to end ------------------------------------------------------------------------------


_TOTAL = "end_to_end"  # the loop's whole-frame time: a mark across the bar, not a layer
# (what, line style) of the marks across each bar, in the legend's words.
_MARKS = (("end to end p50 (measured)", "solid"), ("model only p50 per frame", "dashed"))


def _draw_e2e(ax: Any, report: dict[str, Any]) -> None:
    entries = [e for e in report.get("e2e") or [] if e.get("status", "ok") == "ok"]
    ax.set_title("End to end: p50 per stage (ms per frame)", loc="left", fontsize=10)
    if not entries:
        ax.text(0.5, 0.5, "no --e2e run ran", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    stages = list(dict.fromkeys(s for e in entries for s in e.get("stages") or {} if s != _TOTAL))
    x = np.arange(len(entries))
    bottom = np.zeros(len(entries))
    for stage in stages:
        heights = np.array([_stage_p50(e, stage) or 0.0 for e in entries])
        ax.bar(x, heights, bottom=bottom, width=0.6, label=stage)
        bottom += heights
    marks = [[_stage_p50(e, _TOTAL) for e in entries],
             [_model_only_ms(report, e) for e in entries]]  # fmt: skip
    top = _draw_marks(ax, marks)
    for i, e in enumerate(entries):
        if e.get("fps") is not None:
            ax.annotate(f"{e['fps']:.1f} fps", (i, max(bottom[i], top[i])), ha="center",
                        va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")  # fmt: skip
    # Two lines per label (model, then backend precision batch): side by side they fit.
    labels = [row_label(e, number=False).replace(" ", "\n", 1) for e in entries]
    ax.set_xticks(x, labels, fontsize=8)
    pad = max(0.0, (4 - len(entries)) / 2)  # a lone bar is not drawn as a wall
    ax.set_xlim(-0.5 - pad, len(entries) - 0.5 + pad)
    ax.set_ylim(0, max(float(np.maximum(bottom, top).max()), 1e-3) * 1.15)  # room for labels
    ax.set_ylabel("ms")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _stage_p50(entry: dict[str, Any], stage: str) -> float | None:
    p50 = ((entry.get("stages") or {}).get(stage) or {}).get("p50")
    return None if p50 is None else float(p50)


def _draw_marks(ax: Any, marks: list[list[float | None]]) -> Any:
    """Draw each of ``_MARKS`` across the bars that have it (the first one drawn carries the
    legend's label). Returns the highest mark per bar (0 where none)."""
    top = np.zeros(len(marks[0]))
    for (what, style), values in zip(_MARKS, marks, strict=True):
        label: str | None = what
        for i, v in enumerate(values):
            if v is not None:
                ax.hlines(v, i - 0.35, i + 0.35, colors="black", linestyles=style, label=label)
                label, top[i] = None, max(top[i], v)
    return top


def _model_only_ms(report: dict[str, Any], entry: dict[str, Any]) -> float | None:
    """The p50 per frame of the entry's model-only row (a call runs ``batch`` frames)."""
    r = model_only_row(report, entry)
    if r is None or not (r.get("latency_ms") or {}).get("p50"):
        return None
    return float(r["latency_ms"]["p50"]) / max(int(r.get("batch") or 1), 1)
