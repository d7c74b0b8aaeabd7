"""`edgetk demo`: the whole story, end to end, through the installed console script."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import onnx
from _cli import edgetk_script
from typer.testing import CliRunner

from toolkit.cli.app import app
from toolkit.model.modelfile import read_metadata

SUMMARY_KEYS = {
    "version",
    "workdir",
    "quick",
    "seed",
    "train_val_top1",
    "train_seconds",
    "parity_passed",
    "onnx_val_top1",
    "speedup_ort_vs_torch_batch1",
    "steps",
    "timings_s",
    "total_s",
    "artifacts",
}
STEPS = [
    "data",
    "train",
    "export",
    "validate",
    "benchmark",
    "predict",
    "quantize",
    "detect",
    "live",
]


_edgetk = edgetk_script


def test_quick_demo_through_the_console_script(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    proc = subprocess.run(
        [_edgetk(), "demo", "--quick", "--workdir", str(workdir), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # nothing from the repository tree is needed
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # exactly one JSON document on stdout
    assert set(summary) == SUMMARY_KEYS
    assert list(summary["steps"]) == STEPS == list(summary["timings_s"])
    assert summary["quick"] is True
    assert summary["parity_passed"] is True
    assert 0.0 <= summary["onnx_val_top1"] <= 1.0
    on_disk = json.loads((workdir / "summary.json").read_text())
    assert on_disk == summary
    # Artifacts: the data set, the checkpoint, the ONNX model (with its spec), reports.
    model = workdir / "model.onnx"
    assert model.is_file() and (workdir / "weights.pt").is_file()
    assert (workdir / "data" / "val" / "crack").is_dir()
    spec = json.loads(read_metadata(onnx.load(str(model)))["edgetk"])
    assert spec["labels"] == ["ok", "scratch", "spot", "crack"]
    bench = json.loads((workdir / "bench.json").read_text())
    assert {r["backend"] for r in bench["results"]} == {"ort-cpu", "torch"}
    rows = summary["steps"]["benchmark"]["results"]
    assert rows[0]["ort_cpu_status"] == "ok" and rows[0]["torch_status"] == "ok"
    predictions = summary["steps"]["predict"]["images"]
    assert {p["truth"] for p in predictions} == {"ok", "scratch", "spot", "crack"}
    assert (workdir / "predictions.png").stat().st_size > 0
    # int8 for the CPU, its spec says so; the shipped detector finds defects; the live loop
    # wrote a video and one event per frame, and saw NG parts.
    q = summary["steps"]["quantize"]
    assert q["passed"] and q["target"] == "cpu"
    int8_spec = json.loads(read_metadata(onnx.load(str(workdir / "model.int8.onnx")))["edgetk"])
    assert int8_spec["precision"] == "int8"
    assert int8_spec["extra"]["quantization"]["target"] == "cpu"
    det = summary["steps"]["detect"]
    assert det["val"]["map50"] >= 0.5 and det["predict"]["detections"] > 0
    live = summary["steps"]["live"]
    events = (workdir / "live" / "events.jsonl").read_text().splitlines()
    assert len(events) == live["frames"] > 0 and live["dropped"] == 0
    assert live["ng"] > 0 and live["ok"] + live["ng"] == live["frames"]
    assert (workdir / "live" / "live.mp4").stat().st_size > 0
    # The human summary went to stderr.
    assert "edgetk demo" in proc.stderr


def test_demo_refuses_a_used_workdir_without_force(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["demo", "--quick", "--workdir", str(workdir)])
    assert result.exit_code == 2
    assert "--force" in result.output
    assert sorted(p.name for p in workdir.iterdir()) == ["notes.txt"]
