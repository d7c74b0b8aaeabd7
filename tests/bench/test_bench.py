"""Benchmark: statistics, the runner side by side, reports and the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from _backend_models import make_sourced_onnx
from typer.testing import CliRunner

from toolkit.bench.report import render_table, speedups, to_markdown, write_report
from toolkit.bench.runner import BenchReport, BenchResult, benchmark
from toolkit.cli.app import app
from toolkit.errors import BadInputError, OutputExistsError
from toolkit.latency import LatencyStats, latency_stats

RESULT_KEYS = {
    "model",
    "backend",
    "precision",
    "batch",
    "latency_ms",
    "throughput_fps",
    "iters",
    "warmup",
    "status",
}
LATENCY_KEYS = {"mean", "p50", "p90", "p99", "min", "max", "std"}
ADDED_KEYS = {
    "row", "speedup", "threads", "spinning", "file", "file_mb", "cold_start_ms", "samples_ms",
    "peak_rss_mb", "gflops", "efficiency", "plain_ort_p50_ms", "overhead_pct",
}  # fmt: skip
NO_CUDA = "CUDAExecutionProvider" not in ort.get_available_providers()


@pytest.fixture(scope="module")
def sourced(tmp_path_factory: pytest.TempPathFactory):
    return make_sourced_onnx(tmp_path_factory.mktemp("bench_sourced"))


# -- stats -----------------------------------------------------------------------------------


def test_latency_stats_match_numpy():
    seconds = np.random.default_rng(1).gamma(2.0, 0.004, size=257)
    ms = seconds * 1000
    got = latency_stats(seconds)
    assert set(got) == LATENCY_KEYS
    want = {
        "mean": ms.mean(),
        "p50": np.percentile(ms, 50),
        "p90": np.percentile(ms, 90),
        "p99": np.percentile(ms, 99),
        "min": ms.min(),
        "max": ms.max(),
        "std": ms.std(),
    }
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-4), key


def test_latency_stats_known_values():
    s = LatencyStats.from_seconds([0.001 * i for i in range(1, 101)])  # 1..100 ms
    assert (s.min, s.max, s.mean, s.n) == pytest.approx((1.0, 100.0, 50.5, 100))
    assert s.p50 == pytest.approx(50.5) and s.p90 == pytest.approx(90.1)
    assert s.to_dict(("mean", "max")) == {"mean": 50.5, "max": 100.0}


def test_latency_stats_empty_is_an_error():
    with pytest.raises(BadInputError):
        latency_stats([])


# -- runner ----------------------------------------------------------------------------------


def test_report_has_the_spec_keys_and_the_additions(tiny_onnx: Path):
    report = benchmark([tiny_onnx], ["ort-cpu", "tensorrt"], [1, 2], warmup=1, iters=3)
    d = json.loads(json.dumps(report.to_dict()))
    assert set(d) == {"machine", "baseline", "results"} and d["baseline"] == 1
    assert {"cpu", "cores", "gpu", "versions"} <= set(d["machine"])
    assert d["machine"]["versions"]["onnxruntime"] == ort.__version__
    assert [(r["backend"], r["batch"]) for r in d["results"]] == [
        ("ort-cpu", 1),
        ("tensorrt", 1),
        ("ort-cpu", 2),
        ("tensorrt", 2),
    ]
    for number, r in enumerate(d["results"], start=1):
        assert set(r) == RESULT_KEYS | ADDED_KEYS  # the SPEC's keys, unchanged, plus additions
        assert r["row"] == number
    ok = [r for r in d["results"] if r["backend"] == "ort-cpu"]
    for r in ok:
        assert r["status"] == "ok" and r["iters"] == 3 and r["warmup"] == 1
        assert set(r["latency_ms"]) == LATENCY_KEYS
        assert r["latency_ms"]["min"] <= r["latency_ms"]["p50"] <= r["latency_ms"]["max"]
        assert r["throughput_fps"] == pytest.approx(
            r["batch"] * 1000 / r["latency_ms"]["mean"], rel=1e-3
        )
        assert r["precision"] == "fp32"


def test_unavailable_backend_is_reported_not_raised(tiny_onnx: Path):
    report = benchmark([tiny_onnx], ["tensorrt", "torch"], [1], warmup=0, iters=2)
    trt, torch_row = report.results
    assert trt.status.startswith("unavailable: ") and "tensorrt" in trt.status
    assert trt.latency_ms is None and trt.throughput_fps is None and trt.iters == 0
    # tiny_onnx names no PyTorch source: the torch backend cannot run it.
    assert torch_row.status.startswith("unavailable: ") and "PyTorch source" in torch_row.status


def test_ort_and_torch_side_by_side_on_a_torch_sourced_model(sourced):
    report = benchmark(
        [sourced.onnx], ["ort-cpu", "torch"], [1, 3], warmup=1, iters=4,
        model_source=sourced.ref, weights=str(sourced.weights),
    )  # fmt: skip
    assert [(r.backend, r.batch, r.status) for r in report.results] == [
        ("ort-cpu", 1, "ok"),
        ("torch", 1, "ok"),
        ("ort-cpu", 3, "ok"),
        ("torch", 3, "ok"),
    ]
    assert all(r.iters == 4 and r.latency_ms is not None for r in report.results)
    ratios = speedups(report.results)
    means = [r.latency_ms["mean"] for r in report.results]
    assert ratios[0] == 1.0  # row 1 is the baseline of every row, other batches too
    assert ratios[1] == pytest.approx(means[0] / means[1])  # same batch: the latency ratio
    assert ratios[2] == pytest.approx((3 / means[2]) / (1 / means[0]))  # else throughput


def test_static_batch_model_is_measured_at_its_batch_only(tiny_onnx: Path, tmp_path: Path):
    proto = onnx.load(str(tiny_onnx))
    for v in (*proto.graph.input, *proto.graph.output):
        v.type.tensor_type.shape.dim[0].dim_value = 2
    static = tmp_path / "static2.onnx"
    onnx.save(proto, str(static))
    report = benchmark([static], ["ort-cpu"], [1, 2], warmup=0, iters=2)
    assert report.results[0].status == "unavailable: model has a static batch of 2"
    assert report.results[1].status == "ok"


def test_duration_mode_and_auto(tiny_onnx: Path):
    report = benchmark([tiny_onnx], ["auto"], [1], warmup=0, duration=0.05)
    (row,) = report.results
    assert row.status == "ok" and row.iters >= 1
    assert row.backend != "auto"  # reported as the backend auto picked


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backends": ["onnx-gpu"]}, "unknown backend"),
        ({"batches": [0]}, "batch"),
        ({"iters": 3, "duration": 1.0}, "not both"),
        ({"iters": 0}, "iters"),
        ({"warmup": -1}, "warmup"),
    ],
)
def test_bad_arguments(tiny_onnx: Path, kwargs: dict, match: str):
    args = {"backends": ["ort-cpu"], "batches": [1], **kwargs}
    with pytest.raises(BadInputError, match=match):
        benchmark([tiny_onnx], args.pop("backends"), args.pop("batches"), **args)


def test_missing_model_is_bad_input_not_unavailable(tmp_path: Path):
    with pytest.raises(BadInputError, match="not found"):
        benchmark([tmp_path / "nope.onnx"], ["ort-cpu"], [1], iters=1)


# -- reports ---------------------------------------------------------------------------------


def _report() -> BenchReport:
    lat = {
        "mean": 20.0,
        "p50": 19.0,
        "p90": 22.0,
        "p99": 30.0,
        "min": 18.0,
        "max": 31.0,
        "std": 1.0,
    }
    return BenchReport(
        machine={"cpu": "Test CPU", "cores": 2, "gpu": None, "versions": {"numpy": "2"}},
        results=[
            BenchResult("m.onnx", "torch", "fp32", 1, {**lat, "mean": 40.0}, 25.0, 10, 2, "ok"),
            BenchResult("m.onnx", "ort-cpu", "fp32", 1, lat, 50.0, 10, 2, "ok"),
            BenchResult(
                "m.onnx", "ort-cuda", "fp32", 1, None, None, 0, 2, 'unavailable: needs "x[gpu]"'
            ),
        ],
    )


def test_speedup_is_relative_to_the_first_backend():
    assert speedups(_report().results) == [1.0, 2.0, None]


def test_human_table_shows_ratio_and_reasons():
    from rich.console import Console

    console = Console(record=True, width=120)
    console.print(render_table(_report()))
    text = console.export_text()
    assert "2.00x" in text and "base" in text
    assert 'needs "x[gpu]"' in text  # brackets survive (no rich markup eaten)


def test_write_report_formats(tmp_path: Path):
    report = _report()
    j = write_report(report, tmp_path / "r.json")
    assert json.loads(j.read_text()) == report.to_dict()
    c = write_report(report, tmp_path / "r.csv")
    rows = list(csv.DictReader(c.open()))
    assert [r["backend"] for r in rows] == ["torch", "ort-cpu", "ort-cuda"]
    assert rows[1]["p99_ms"] == "30.0" and rows[2]["mean_ms"] == ""
    m = write_report(report, tmp_path / "r.md")
    assert "| m.onnx | ort-cpu | fp32 | 1 | 20.00 |" in m.read_text()
    assert "2.00x" in to_markdown(report)
    with pytest.raises(OutputExistsError):
        write_report(report, tmp_path / "r.json")
    write_report(report, tmp_path / "r.json", force=True)
    with pytest.raises(BadInputError, match="must end in"):
        write_report(report, tmp_path / "r.txt")


# -- CLI -------------------------------------------------------------------------------------


def test_cli_json_with_an_unavailable_backend(tiny_onnx: Path):
    result = CliRunner().invoke(
        app,
        [
            "benchmark",
            str(tiny_onnx),
            "--backend",
            "ort-cpu,ort-cuda",
            "--batch",
            "1,2",
            "--iters",
            "5",
            "--warmup",
            "1",
            "--no-floor",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # exactly one JSON document on stdout
    rows = {(r["backend"], r["batch"]): r for r in data["results"]}
    assert rows["ort-cpu", 1]["status"] == "ok" and rows["ort-cpu", 2]["iters"] == 5
    if NO_CUDA:
        assert rows["ort-cuda", 1]["status"].startswith("unavailable: ")
        assert "onnxruntime-gpu" in rows["ort-cuda", 2]["status"]


@pytest.mark.parametrize("suffix", [".csv", ".md"])
def test_cli_out_file(tiny_onnx: Path, tmp_path: Path, suffix: str):
    out = tmp_path / f"report{suffix}"
    args = ["benchmark", str(tiny_onnx), "--backend", "ort-cpu", "--iters", "2", "--warmup", "0",
            "--no-floor"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "ort-cpu" in out.read_text()
    again = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.stderr


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--backend", "nope"], "unknown backend"),
        (["--batch", "1,x"], "--batch"),
        (["--out", "r.txt"], "--out"),
    ],
)
def test_cli_bad_input_exit_2(tiny_onnx: Path, args: list[str], match: str):
    result = CliRunner().invoke(app, ["benchmark", str(tiny_onnx), "--iters", "1", *args])
    assert result.exit_code == 2
    assert match in result.stderr and result.stderr.count("\n") == 1
