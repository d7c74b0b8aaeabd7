"""Benchmark rows: the baseline, the threads sweep, the shared spinning default, the new
columns, and the CLI's floor, --e2e, --plot and --compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _backend_models import make_sourced_onnx
from typer.testing import CliRunner

from toolkit.backends import open_session
from toolkit.backends.ort_options import DEFAULT_SPINNING, spin_wait
from toolkit.bench import sessions
from toolkit.bench.rows import MAX_SAMPLES, BenchReport, BenchResult, speedups, subsample
from toolkit.bench.runner import benchmark
from toolkit.bench.terminal import render_table
from toolkit.cli.app import app
from toolkit.errors import BadInputError

LAT = {"mean": 20.0, "p50": 19.0, "p90": 22.0, "p99": 30.0, "min": 18.0, "max": 31.0, "std": 1.0}


def _report(baseline: int | None = None) -> BenchReport:
    rows = [
        BenchResult("a.onnx", "torch", "fp32", 1, {**LAT, "mean": 40.0}, 25.0, 10, 2, "ok"),
        BenchResult("a.onnx", "ort-cpu", "fp32", 1, LAT, 50.0, 10, 2, "ok"),
        BenchResult("b.onnx", "ort-cpu", "int8", 1, {**LAT, "mean": 10.0}, 100.0, 10, 2, "ok"),
        BenchResult("b.onnx", "ort-cpu", "int8", 4, {**LAT, "mean": 20.0}, 200.0, 10, 2, "ok"),
    ]
    return BenchReport(machine={"cpu": "CPU", "cores": 2, "gpu": None, "versions": {}},
                       results=rows, baseline=baseline)  # fmt: skip


def _text(renderable) -> str:
    from rich.console import Console

    console = Console(record=True, width=160)
    console.print(renderable)
    return console.export_text()


def test_baseline_is_any_row_across_models_and_batches():
    assert speedups(_report().results) == [1.0, 2.0, 4.0, 8.0]  # default: row 1
    assert speedups(_report().results, 2) == [0.5, 1.0, 2.0, 4.0]  # fp32 vs int8 file too
    d = _report(2).to_dict()
    assert d["baseline"] == 2 and [r["speedup"] for r in d["results"]] == [0.5, 1.0, 2.0, 4.0]
    assert [r["row"] for r in d["results"]] == [1, 2, 3, 4]


def test_baseline_changes_the_speedup_column():
    lines = _text(render_table(_report(3))).splitlines()
    row = {line.split()[0]: line for line in lines if line.split()[:1] in (["1"], ["3"], ["4"])}
    assert "0.25x" in row["1"] and "base" in row["3"] and "2.00x" in row["4"]
    assert "against row 3" in " ".join(lines)
    assert "base" in next(line for line in _text(render_table(_report())).splitlines()
                          if line.startswith(" 1 ") or line.startswith("1 "))  # fmt: skip


def test_a_baseline_that_did_not_run_gives_no_speedups():
    report = _report(2)
    report.results[1].latency_ms, report.results[1].status = None, "unavailable: no"
    assert speedups(report.results, 2) == [None] * 4
    assert "row 2, has no comparable latency" in _text(render_table(report))


def test_baseline_out_of_range_is_bad_input(tiny_onnx: Path):
    with pytest.raises(BadInputError, match="--baseline must be a row number from 1 to 4"):
        benchmark([tiny_onnx], ["ort-cpu"], [1, 2], threads=[1, 2], iters=1, baseline=5)


def test_threads_sweep_rows_per_count_interleaved(tiny_onnx: Path, monkeypatch):
    order: list[tuple[int, int | None]] = []
    real = sessions.Run.call

    def spy(self, n):
        order.append((self.result.batch, self.result.threads))
        real(self, n)

    monkeypatch.setattr(sessions.Run, "call", spy)
    report = benchmark([tiny_onnx], ["ort-cpu", "tensorrt"], [1, 2], threads=[1, 2],
                       warmup=1, iters=4)  # fmt: skip
    got = [(r.backend, r.batch, r.threads, r.spinning) for r in report.results]
    assert got[:2] == [("ort-cpu", 1, 1, False), ("ort-cpu", 1, 2, False)]
    assert got[2][:3] == ("tensorrt", 1, None)  # no CPU threads: one row, not one per count
    assert got[3:5] == [("ort-cpu", 2, 1, False), ("ort-cpu", 2, 2, False)]
    timed = [t for b, t in order if b == 1][2:]  # after one warm-up call each
    assert timed[:4] == [1, 2, 1, 2]  # blocks alternate: a noisy phase hits both alike


def test_torch_rows_of_a_sweep_run_at_their_own_count(tmp_path: Path, monkeypatch):
    import torch

    model = make_sourced_onnx(tmp_path)
    seen: list[tuple[int | None, int]] = []
    real = sessions.Run.call

    def spy(self, n):
        real(self, n)
        seen.append((self.result.threads, torch.get_num_threads()))

    monkeypatch.setattr(sessions.Run, "call", spy)
    benchmark([model.onnx], ["torch"], [1], threads=[1, 2], warmup=0, iters=4,
              model_source=model.ref, weights=str(model.weights))  # fmt: skip
    assert seen and all(want == got for want, got in seen)  # set_num_threads is process-wide


def test_one_spinning_default_for_the_benchmark_and_the_live_loop(tiny_onnx: Path):
    assert spin_wait() is DEFAULT_SPINNING is False and spin_wait(True) is True
    with open_session(tiny_onnx, "ort-cpu") as s:  # how edgetk run opens its session
        assert s.describe()["spinning"] is spin_wait()
    (row,) = benchmark([tiny_onnx], ["ort-cpu"], [1], warmup=0, iters=2).results
    assert row.spinning is spin_wait() and row.threads is not None
    (spun,) = benchmark([tiny_onnx], ["ort-cpu"], [1], warmup=0, iters=2, spinning=True).results
    assert spun.spinning is True


def test_rows_record_size_cold_start_samples_and_memory(tiny_onnx: Path):
    (row,) = benchmark([tiny_onnx], ["ort-cpu"], [1], warmup=0, iters=7).results
    assert row.file == str(tiny_onnx)
    assert row.file_mb == pytest.approx(tiny_onnx.stat().st_size / 1e6, abs=1e-3)
    assert row.cold_start_ms is not None and row.cold_start_ms > 0
    assert row.samples_ms is not None and len(row.samples_ms) == 7
    assert min(row.samples_ms) == pytest.approx(row.latency_ms["min"], abs=1e-3)
    assert row.peak_rss_mb is None or row.peak_rss_mb > 0


def test_samples_are_subsampled_evenly_in_order():
    values = [float(i) for i in range(1234)]
    got = subsample(values)
    assert len(got) == MAX_SAMPLES and got[0] == 0.0 and got[-1] == 1233.0
    assert got == sorted(got) and subsample([1.23456, 2.0]) == [1.2346, 2.0]


# -- CLI --------------------------------------------------------------------------------------


def _cli(*args: str):
    return CliRunner().invoke(app, ["benchmark", *args])


def test_cli_floor_columns(tiny_onnx: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    result = _cli(str(tiny_onnx), "--backend", "ort-cpu", "--iters", "5", "--warmup", "1",
                  "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["floor"]["gflops"] > 0 and {"threads", "how", "cached"} <= set(data["floor"])
    (row,) = data["results"]
    assert row["gflops"] > 0 and row["efficiency"] == pytest.approx(
        row["gflops"] / data["floor"]["gflops"], rel=1e-2
    )
    assert row["plain_ort_p50_ms"] > 0
    want = (row["latency_ms"]["p50"] / row["plain_ort_p50_ms"] - 1) * 100
    assert row["overhead_pct"] == pytest.approx(want, abs=0.02)


def test_cli_e2e_beside_the_model_only_row(tiny_onnx: Path):
    result = _cli(str(tiny_onnx), "--backend", "ort-cpu", "--iters", "3", "--warmup", "0",
                  "--no-floor", "--e2e", "synthetic", "--max-frames", "4", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (entry,) = data["e2e"]
    assert entry["status"] == "ok" and entry["row"] == 1 and entry["frames"] == 4
    assert entry["model"] == str(tiny_onnx) and {"infer", "end_to_end"} <= set(entry["stages"])
    assert entry["model_fps"] == data["results"][0]["throughput_fps"]
    assert entry["e2e_ratio"] == pytest.approx(entry["fps"] / entry["model_fps"], abs=1e-6)
    table = _cli(str(tiny_onnx), "--backend", "ort-cpu", "--iters", "3", "--warmup", "0",
                 "--no-floor", "--e2e", "synthetic", "--max-frames", "4")  # fmt: skip
    assert table.exit_code == 0 and "end to end on synthetic" in table.stdout
    assert "end_to_end" in table.stdout


def test_cli_plot_and_report_with_it(tiny_onnx: Path, tmp_path: Path):
    pytest.importorskip("matplotlib")
    png, md = tmp_path / "latency.png", tmp_path / "report.md"
    result = _cli(str(tiny_onnx), "--backend", "ort-cpu", "--iters", "3", "--warmup", "0",
                  "--no-floor", "--plot", str(png), "--out", str(md))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "latency.png" in md.read_text()
    bad = _cli(str(tiny_onnx), "--iters", "1", "--plot", str(tmp_path / "x.jpg"))
    assert bad.exit_code == 2 and "--plot must end in .png" in bad.stderr


def test_cli_compare_flags_a_regression(tmp_path: Path):
    samples = [10.0 + 0.01 * i for i in range(50)]
    row = {"model": "m.onnx", "backend": "ort-cpu", "precision": "fp32", "batch": 1,
           "threads": 2, "status": "ok", "latency_ms": {**LAT, "p50": 10.0},
           "samples_ms": samples, "iters": 50}  # fmt: skip
    slow = {**row, "latency_ms": {**LAT, "p50": 20.0}, "samples_ms": [2 * v for v in samples]}
    old, same, new = tmp_path / "old.json", tmp_path / "same.json", tmp_path / "new.json"
    old.write_text(json.dumps({"machine": {}, "results": [row]}))
    same.write_text(json.dumps({"machine": {}, "results": [row]}))
    new.write_text(json.dumps({"machine": {}, "results": [slow]}))
    assert _cli("--compare", str(old), str(same)).exit_code == 0
    flagged = _cli("--compare", str(old), str(new), "--json")
    assert flagged.exit_code == 1 and json.loads(flagged.stdout)["regressions"] == 1
    both = _cli("m.onnx", "--compare", str(old), str(new))
    assert both.exit_code == 2 and "no MODEL" in both.stderr
    none = _cli()
    assert none.exit_code == 2 and "--compare" in none.stderr


@pytest.mark.parametrize(("args", "match"), [
    (["--threads", "1,x"], "--threads"), (["--threads", "0"], "--threads"),
    (["--baseline", "9"], "--baseline"), (["--e2e", "synthetic", "--max-frames", "0"], "max-frames"),
])  # fmt: skip
def test_cli_new_options_bad_input(tiny_onnx: Path, args: list[str], match: str):
    result = _cli(str(tiny_onnx), "--iters", "1", "--no-floor", *args)
    assert result.exit_code == 2 and match in result.stderr
