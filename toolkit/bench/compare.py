"""Compare two benchmark reports (``--json`` documents): the p50 change per row, flagged when
it is beyond the rows' own noise.

Rows are matched by (model, backend, precision, batch, threads); a key that occurs twice in a
report is matched in order. The rule (docs/benchmarks.md, "Comparing runs"):

- each row's spread is its relative IQR, ``(p75 - p25) / p50`` of its call latencies
  (``samples_ms``, when it has at least ``MIN_SAMPLES``); without samples it is
  ``(p90 - p50) / p50``, which for a bell-shaped distribution is about the same number;
- the noise of the comparison is both rows' spreads combined, ``sqrt(old^2 + new^2)``, in %;
- the change is ``(new p50 - old p50) / old p50`` in %; it is flagged ("regression" when
  slower, "improvement" when faster) only beyond the noise and beyond ``floor_pct`` (5% by
  default), so two quiet runs that differ by 2% are not a regression.

A row that is in one report only, or that did not run in one of them, is listed as
unmatched, with the reason.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.bench.documents import row_label
from toolkit.errors import BadInputError

FLOOR_PCT = 5.0
MIN_SAMPLES = 5
Row = dict[str, Any]


def load_report(path: str | Path) -> dict[str, Any]:
    """A report written by ``edgetk benchmark --json`` (or ``--out x.json``).

    Raises:
        BadInputError: the file cannot be read, is not JSON, or holds no ``results`` list.
    """
    p = Path(path)
    try:
        report = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise BadInputError(f"cannot read {p}: {e.strerror or e}") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInputError(f"{p} is not a benchmark report (not JSON: {e})") from e
    if not isinstance(report, dict) or not isinstance(report.get("results"), list):
        raise BadInputError(f"{p} is not a benchmark report (no \"results\" list)")
    return report


def _key(row: Row) -> tuple[Any, ...]:
    return tuple(row.get(k) for k in ("model", "backend", "precision", "batch", "threads"))


def _p50(row: Row) -> float | None:
    p50 = (row.get("latency_ms") or {}).get("p50")
    return float(p50) if p50 is not None and p50 > 0 else None


def spread(row: Row) -> float:
    """The row's relative spread (see the module's docstring), 0 when it cannot be told."""
    samples = np.asarray(row.get("samples_ms") or [], dtype=float)
    if samples.size >= MIN_SAMPLES:
        q1, med, q3 = np.percentile(samples, [25, 50, 75])
        return float((q3 - q1) / med) if med > 0 else 0.0
    lat = row.get("latency_ms") or {}
    p50, p90 = lat.get("p50"), lat.get("p90")
    if p50 is None or p90 is None or p50 <= 0:
        return 0.0
    return max(0.0, float(p90 - p50) / float(p50))


def _compare_row(old: Row, new: Row, p50s: tuple[float, float], floor_pct: float) -> Row:
    old_p50, new_p50 = p50s
    change = (new_p50 - old_p50) / old_p50 * 100.0
    noise = math.hypot(spread(old), spread(new)) * 100.0
    flag = ""
    if abs(change) > max(noise, floor_pct):
        flag = "regression" if change > 0 else "improvement"
    return {"key": row_label(new, number=False), "old_p50": old_p50, "new_p50": new_p50,
            "change_pct": change, "noise_pct": noise, "flag": flag}  # fmt: skip


def _why_not_run(old: Row, new: Row) -> str:
    """Why a matched pair cannot be compared: which of them did not run, and its status."""
    side, row = ("old", old) if _p50(old) is None else ("new", new)
    return f"did not run in {side}: {row.get('status')}"


def compare_reports(
    old: dict[str, Any], new: dict[str, Any], *, floor_pct: float = FLOOR_PCT
) -> dict[str, Any]:
    """Match the rows of two reports and flag the p50 changes beyond the noise (the rule is
    in the module's docstring).

    Returns ``{"rows": [{"key", "old_p50", "new_p50", "change_pct", "noise_pct", "flag"}],
    "regressions": n, "improvements": n, "unmatched": [{"key", "why"}]}``, rows in the new
    report's order.
    """
    waiting: dict[tuple[Any, ...], list[Row]] = {}
    for row in old.get("results") or []:
        waiting.setdefault(_key(row), []).append(row)
    rows: list[Row] = []
    unmatched: list[Row] = []
    for row in new.get("results") or []:
        pending = waiting.get(_key(row))
        if not pending:
            unmatched.append({"key": row_label(row, number=False), "why": "only in new"})
            continue
        before = pending.pop(0)
        old_p50, new_p50 = _p50(before), _p50(row)
        if old_p50 is None or new_p50 is None:
            unmatched.append({"key": row_label(row, number=False), "why": _why_not_run(before, row)})
        else:
            rows.append(_compare_row(before, row, (old_p50, new_p50), floor_pct))
    for left in waiting.values():
        unmatched += [{"key": row_label(r, number=False), "why": "only in old"} for r in left]
    return {
        "rows": rows,
        "regressions": sum(r["flag"] == "regression" for r in rows),
        "improvements": sum(r["flag"] == "improvement" for r in rows),
        "unmatched": unmatched,
    }


def render_compare(result: dict[str, Any]) -> Any:
    """A rich table: one line per matched row (the flagged ones coloured), then the unmatched
    ones; the caption counts the regressions."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    n = result.get("regressions", 0)
    caption = f"{n} regression(s) beyond the noise" if n else "no regression beyond the noise"
    table = Table(title=Text("edgetk benchmark --compare"), caption=Text(caption),
                  box=box.SIMPLE_HEAD, pad_edge=False)  # fmt: skip
    for col in ("row", "old p50 ms", "new p50 ms", "change", "noise", "flag"):
        table.add_column(col, justify="left" if col in ("row", "flag") else "right")
    styles = {"regression": "bold red", "improvement": "green", "": ""}
    for r in result.get("rows") or []:
        style = styles.get(r["flag"], "")
        table.add_row(
            Text(r["key"]),
            f"{r['old_p50']:.2f}",
            f"{r['new_p50']:.2f}",
            Text(f"{r['change_pct']:+.1f}%", style=style),
            f"±{r['noise_pct']:.1f}%",
            Text(r["flag"] or "ok", style=style),
        )
    for u in result.get("unmatched") or []:
        table.add_row(Text(u["key"]), "-", "-", "-", "-", Text(u["why"], style="yellow"))
    return table
