"""Benchmark plots and documents: the PNG's size, the Markdown link, the standalone HTML."""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from toolkit.bench.documents import to_html, to_markdown
from toolkit.bench.plot import DPI, PANEL_INCHES, plot_report, plot_size
from toolkit.bench.report import write_report
from toolkit.bench.runner import BenchReport, BenchResult
from toolkit.errors import BadInputError, MissingDependencyError

pytest.importorskip("matplotlib")  # the plot extra (in dev)

MACHINE = {"cpu": "Test CPU", "cores": 2, "gpu": None, "versions": {"numpy": "2"}}


def _row(n: int, batch: int, median: float, model: str = "m.onnx", **extra: Any) -> dict:
    """A row as the --json document has it, with its call latencies."""
    samples = np.random.default_rng(n).gamma(20.0, median / 20.0, size=60)
    lat = {"mean": samples.mean(), "min": samples.min(), "max": samples.max(),
           "std": samples.std(), "p50": np.percentile(samples, 50),
           "p90": np.percentile(samples, 90), "p99": np.percentile(samples, 99)}  # fmt: skip
    return {"row": n, "model": model, "backend": "ort-cpu", "precision": "fp32", "batch": batch,
            "latency_ms": {k: float(v) for k, v in lat.items()},
            "throughput_fps": 1000.0 * batch / median, "iters": 60, "warmup": 2, "status": "ok",
            "threads": 2, "samples_ms": samples.tolist(), **extra}  # fmt: skip


E2E = {"model": "m.onnx", "backend": "ort-cpu", "precision": "fp32", "batch": 1,
       "source": "synthetic",
       "frames": 50, "fps": 90.0, "frame_age_ms": {"p50": 12.0, "p99": 20.0},
       "stages": {"decode": {"p50": 1.0, "p99": 2.0, "mean": 1.1},
                  "infer": {"p50": 8.0, "p99": 9.0, "mean": 8.2},
                  "postprocess": {"p50": 0.5, "p99": 1.0, "mean": 0.6},
                  "end_to_end": {"p50": 10.0, "p99": 12.0, "mean": 10.2}}}  # fmt: skip


def _report(*, e2e: bool, batches: tuple[int, ...] = (1, 4)) -> dict:
    rows = [_row(i + 1, b, 5.0 * b) for i, b in enumerate(batches)]
    rows.append({"model": "m.onnx", "backend": "ort-cuda", "precision": "fp32", "batch": 1,
                 "latency_ms": None, "throughput_fps": None, "iters": 0, "warmup": 2,
                 "status": "unavailable: no GPU"})  # fmt: skip
    return {"machine": MACHINE, "results": rows, **({"e2e": [E2E]} if e2e else {})}


def _pixels(path: Path) -> tuple[int, int]:
    image = cv2.imread(str(path))
    assert image is not None, f"{path} is not an image"
    return image.shape[1], image.shape[0]


@pytest.mark.parametrize(
    ("e2e", "batches", "panels"),
    [(False, (1,), 1), (False, (1, 4), 2), (True, (1,), 2), (True, (1, 4), 3)],
)
def test_plot_is_the_documented_size(tmp_path: Path, e2e: bool, batches: tuple, panels: int):
    """One panel row of 12 x 4 inches at 100 dpi per panel: latency always, throughput when a
    group ran several batches, the stages when the report has --e2e entries."""
    report = _report(e2e=e2e, batches=batches)
    png = plot_report(report, tmp_path / "latency.png")
    want = (PANEL_INCHES[0] * DPI, PANEL_INCHES[1] * DPI * panels)
    assert want == (1200, 400 * panels)
    assert _pixels(png) == want == plot_size(report)


def test_rows_without_samples_and_nothing_ran(tmp_path: Path):
    """Rows from an older report (no samples_ms, no row number) are drawn from their
    percentiles; a report where nothing ran still gives its one panel."""
    old = _report(e2e=False)
    for r in old["results"]:
        r.pop("samples_ms", None)
        r.pop("row", None)
    assert _pixels(plot_report(old, tmp_path / "old.png")) == (1200, 800)
    nothing = {"machine": MACHINE, "results": old["results"][-1:]}
    assert _pixels(plot_report(nothing, tmp_path / "none.png")) == (1200, 400)


def test_plot_path_must_be_png(tmp_path: Path):
    with pytest.raises(BadInputError, match=r"--plot must end in \.png"):
        plot_report(_report(e2e=False), tmp_path / "latency.svg")


def test_missing_matplotlib_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(MissingDependencyError) as info:
        plot_report(_report(e2e=False), tmp_path / "latency.png")
    message = str(info.value)
    assert "\n" not in message and 'pip install "edgetk[plot]"' in message
    assert "matplotlib" in message and info.value.exit_code == 2
    assert not (tmp_path / "latency.png").exists()


def test_markdown_holds_machine_table_e2e_and_plot_link():
    md = to_markdown(_report(e2e=True), "plots/latency.png")
    assert md.startswith("Machine: Test CPU (2 cores), no GPU; numpy 2\n")
    assert "| 1 | m.onnx | ort-cpu | fp32 | 1 |" in md and "unavailable: no GPU" in md
    assert "threads" not in md.splitlines()[2]  # every row ran with 2: no sweep, no column
    assert "End to end (--e2e):" in md
    assert "| m.onnx ort-cpu fp32 b1 | infer | 8.00 | 9.00 | 8.20 |" in md
    assert "![benchmark plot](plots/latency.png)" in md
    assert "Resources" not in md and "Floor" not in md


def test_markdown_threads_sweep_resources_and_floor():
    report = _report(e2e=False)
    report["results"][1].update(threads=1, file_mb=1.25, peak_rss_mb=300.4)
    report["floor"] = {"gflops": 123.45, "threads": 2, "how": "ORT MatMul fp32"}
    md = to_markdown(report)
    assert "| # | model | backend | precision | batch | threads | mean ms |" in md
    assert "Resources and floor:" in md and "| 2 | ort-cpu | 1 | 1.2 | 300 |" in md
    assert "123.5 GFLOP/s (ORT MatMul fp32)" in md


def _bench_report(model: str = "m.onnx") -> BenchReport:
    lat = {"mean": 20.0, "p50": 19.0, "p90": 22.0, "p99": 30.0, "min": 18.0, "max": 31.0,
           "std": 1.0}  # fmt: skip
    return BenchReport(
        machine=MACHINE,
        results=[
            BenchResult(model=model, backend="torch", precision="fp32", batch=1,
                        latency_ms={**lat, "mean": 40.0}, throughput_fps=25.0, iters=10),
            BenchResult(model=model, backend="ort-cpu", precision="fp32", batch=1,
                        latency_ms=lat, throughput_fps=50.0, iters=10),
        ],
    )  # fmt: skip


def test_write_report_md_links_the_plot_relative_to_the_file(tmp_path: Path):
    report = _bench_report()
    png = plot_report(report.to_dict(), tmp_path / "plots" / "latency.png")
    md = write_report(report, tmp_path / "report.md", plot=png)
    text = md.read_text()
    assert "![benchmark plot](plots/latency.png)" in text
    assert "| m.onnx | ort-cpu | fp32 | 1 | 20.00 |" in text and "2.00x" in text
    assert (md.parent / "plots/latency.png").is_file()


def test_write_report_html_inlines_the_plot_and_escapes(tmp_path: Path):
    report = _bench_report(model="<b>evil</b>&.onnx")
    png = plot_report(report.to_dict(), tmp_path / "latency.png")
    page = write_report(report, tmp_path / "report.html", plot=png).read_text()
    assert page.startswith("<!DOCTYPE html>") and "Test CPU (2 cores)" in page
    assert "&lt;b&gt;evil&lt;/b&gt;&amp;.onnx" in page and "<b>evil</b>" not in page
    [encoded] = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert base64.b64decode(encoded) == png.read_bytes()
    assert "2.00x" in page


def test_html_without_plot_and_with_e2e():
    page = to_html(_report(e2e=True))
    assert "<img" not in page and "End to end" in page and "0.45x" in page  # 90 / 200 fps
    with pytest.raises(BadInputError, match="cannot read the plot"):
        to_html(_report(e2e=False), plot="/nonexistent/latency.png")
