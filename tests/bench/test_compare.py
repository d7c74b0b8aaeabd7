"""Comparing two benchmark reports: a planted regression is flagged, noise is not."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from toolkit.bench.compare import compare_reports, load_report, render_compare, spread
from toolkit.errors import BadInputError


def _row(backend: str, median: float, *, seed: int = 0, **extra: Any) -> dict:
    """A row with its call latencies: about 4% relative IQR around ``median``."""
    samples = median * (1.0 + 0.03 * np.random.default_rng(seed).standard_normal(80))
    lat = {k: float(np.percentile(samples, q)) for k, q in (("p50", 50), ("p90", 90), ("p99", 99))}
    lat.update(mean=float(samples.mean()), min=float(samples.min()), max=float(samples.max()),
               std=float(samples.std()))  # fmt: skip
    return {"model": "m.onnx", "backend": backend, "precision": "fp32", "batch": 1,
            "latency_ms": lat, "throughput_fps": 1000.0 / median, "iters": 80, "warmup": 2,
            "status": "ok", "threads": 2, "samples_ms": samples.tolist(), **extra}  # fmt: skip


def _report(*rows: dict) -> dict:
    return {"machine": {"cpu": "Test CPU", "cores": 2}, "results": list(rows)}


def _scaled(row: dict, factor: float) -> dict:
    out = copy.deepcopy(row)
    if "samples_ms" in out:
        out["samples_ms"] = [x * factor for x in out["samples_ms"]]
    out["latency_ms"] = {k: v * factor for k, v in out["latency_ms"].items()}
    return out


def test_identical_reports_pass():
    report = _report(_row("torch", 20.0), _row("ort-cpu", 10.0, seed=1))
    result = compare_reports(report, copy.deepcopy(report))
    assert result["regressions"] == 0 and result["improvements"] == 0
    assert [r["flag"] for r in result["rows"]] == ["", ""]
    assert all(r["change_pct"] == 0 for r in result["rows"]) and result["unmatched"] == []


def test_a_planted_2x_regression_is_flagged_and_a_speedup_too():
    torch, ort = _row("torch", 20.0), _row("ort-cpu", 10.0, seed=1)
    result = compare_reports(_report(torch, ort), _report(_scaled(torch, 0.5), _scaled(ort, 2)))
    by_backend = {r["key"].split()[1]: r for r in result["rows"]}
    assert by_backend["ort-cpu"]["flag"] == "regression"
    assert by_backend["ort-cpu"]["change_pct"] == pytest.approx(100.0)
    assert by_backend["torch"]["flag"] == "improvement"
    assert result["regressions"] == 1 and result["improvements"] == 1
    assert 0 < by_backend["ort-cpu"]["noise_pct"] < 20  # both rows' spread, combined


def test_a_change_within_the_noise_or_the_floor_is_not_flagged():
    quiet = {**_row("ort-cpu", 10.0), "samples_ms": [10.0] * 20}  # no spread: no noise
    # On rows without noise, the 5% floor decides: 4% passes, 6% is flagged.
    result = compare_reports(_report(quiet), _report(_scaled(quiet, 1.04)))
    assert result["rows"][0]["noise_pct"] == 0 and result["regressions"] == 0
    assert compare_reports(_report(quiet), _report(_scaled(quiet, 1.06)))["regressions"] == 1
    # A 30% change on rows whose calls spread by about 50%: within the noise.
    wide = _row("ort-cpu", 10.0)
    wide["samples_ms"] = list(np.linspace(7.5, 12.5, 81))
    result = compare_reports(_report(wide), _report(_scaled(wide, 1.3)))
    [row] = result["rows"]
    assert row["change_pct"] == pytest.approx(30.0) and row["noise_pct"] > 30
    assert row["flag"] == "" and result["regressions"] == 0


def test_rows_without_samples_use_the_p90_spread():
    row = _row("ort-cpu", 10.0)
    del row["samples_ms"]
    row["latency_ms"].update(p50=10.0, p90=11.0)
    assert spread(row) == pytest.approx(0.1)
    result = compare_reports(_report(row), _report(_scaled(row, 2.0)))
    assert result["rows"][0]["flag"] == "regression"


def test_matching_by_threads_and_the_unmatched_rows():
    old = _report(_row("ort-cpu", 10.0, threads=1), _row("torch", 20.0))
    gone = {**_row("ort-cuda", 5.0), "latency_ms": None, "status": "unavailable: no GPU"}
    new = _report(_row("ort-cpu", 10.0, threads=2), gone)
    result = compare_reports({**old, "results": [*old["results"], gone]}, new)
    assert result["rows"] == []
    whys = {u["key"]: u["why"] for u in result["unmatched"]}
    assert whys["m.onnx ort-cpu fp32 b1 t2"] == "only in new"
    assert whys["m.onnx ort-cpu fp32 b1 t1"] == "only in old"
    assert whys["m.onnx ort-cuda fp32 b1 t2"] == "did not run in old: unavailable: no GPU"


def test_render_compare_shows_the_change_and_the_flag():
    row = _row("ort-cpu", 10.0)
    result = compare_reports(_report(row, _row("torch", 20.0)), _report(_scaled(row, 2.0)))
    console = Console(record=True, width=140)
    console.print(render_compare(result))
    text = console.export_text()
    assert "+100.0%" in text and "regression" in text and "1 regression(s)" in text
    assert "only in old" in text


def test_load_report(tmp_path: Path):
    good = tmp_path / "old.json"
    good.write_text(json.dumps(_report(_row("ort-cpu", 10.0))))
    assert load_report(good)["results"][0]["backend"] == "ort-cpu"
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"a": 1}')
    for name, why in (("bad.json", "not JSON"), ("other.json", "no \"results\""),
                      ("missing.json", "cannot read")):  # fmt: skip
        with pytest.raises(BadInputError, match=why):
            load_report(tmp_path / name)
