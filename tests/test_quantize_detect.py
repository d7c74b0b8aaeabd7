"""int8 detectors: box agreement with the float model and mAP on a YOLO set."""

from __future__ import annotations

import json
from pathlib import Path

from _quantize_models import tiny_detector
from typer.testing import CliRunner

from toolkit.cli.app import app


def test_detector_int8_reports_box_agreement_and_map(tmp_path: Path) -> None:
    from toolkit.data.synthetic_det import make_detection_set

    model = tiny_detector(tmp_path / "det.onnx")
    make_detection_set(tmp_path / "set", n_train=0, n_val=4, size=64)
    out = tmp_path / "det.int8.onnx"
    args = [model, "-o", out, "--target", "tensorrt", "--calib", "synthetic",
            "--calib-size", 24, "--eval", tmp_path / "set", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, ["quantize", *[str(a) for a in args]])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    det = report["agreement"]["detection"]
    assert det["float_boxes"] > 0
    assert det["matched_fraction"] >= 0.5 and det["score_error"] < 0.1
    assert report["metrics"]["metric"] == "map50_95"
    assert 0.0 <= report["metrics"]["float"] <= 1.0
    assert report["drop"] == round(
        (report["metrics"]["float"] - report["metrics"]["quantized"]) * 100, 4
    )
    assert report["tensorrt_check"]["passed"]
    # The head's output (boxes and scores in one tensor) stays float, and says so.
    assert report["kept_float"] and any("output node stays float" in n for n in report["notes"])
    assert "boxes vs float" in result.stderr


def test_detector_gate_without_eval_is_bad_usage(tmp_path: Path) -> None:
    model = tiny_detector(tmp_path / "det.onnx")
    args = [model, "-o", tmp_path / "o.onnx", "--calib", "synthetic", "--max-drop", 1]
    result = CliRunner().invoke(app, ["quantize", *[str(a) for a in args]])
    assert result.exit_code == 2 and "needs --eval" in result.stderr
