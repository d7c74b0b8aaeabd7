"""The gate that needs no labels: held-out calibration samples must agree with the float model.

``color_classifier(outlier=5000)`` plants a sensitive layer: its input carries a huge constant
channel, so per-tensor int8 crushes the colours and all-int8 top-1 collapses; keeping that one
layer float restores it. No ``--eval`` is given anywhere here unless said.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from _cli import quantize_cli as cli
from _quantize_models import color_classifier, color_images, color_tensors, tiny_detector


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("labelfree")
    return {
        "sensitive": color_classifier(root / "sensitive.onnx", outlier=5000.0),
        "good": color_classifier(root / "good.onnx"),
        "npz": color_tensors(root / "calib.npz", n=150),
        "val": color_images(root / "val"),
    }


@pytest.mark.parametrize("target", ["tensorrt", "cpu"])
def test_falls_back_on_a_planted_sensitive_layer_without_eval(
    data: dict[str, Path], tmp_path: Path, target: str
) -> None:
    from toolkit.model.modelfile import read_spec

    out = tmp_path / "m.onnx"
    code, stdout, stderr = cli(data["sensitive"], "-o", out, "--target", target, "--calib",
                               data["npz"], "--calib-size", 100, "--json")  # fmt: skip
    assert code == 0, stderr
    report = json.loads(stdout)
    gate = report["gate"]
    assert gate["kind"] == "agreement" and gate["min_agreement"] == 99.0
    assert gate["metric"] == "top1_agreement"
    assert gate["inputs"].endswith("held-out calibration samples")
    first, last = gate["steps"][0], gate["steps"][-1]
    assert first["kept_float"] == [] and first["agreement"] < 0.7  # all-int8 collapses
    assert gate["passed"] and last["agreement"] >= 0.99 and len(gate["steps"]) >= 2
    assert report["kept_float"] == last["kept_float"]
    assert report["agreement"]["top1_agreement"] == last["agreement"]
    assert read_spec(out).extra["quantization"]["kept_float"] == report["kept_float"]
    assert "gate (top-1 agreement >= 99% with the float model on" in stderr
    assert f"agreement {first['agreement'] * 100:.1f}%" in stderr  # each step is listed


def test_refuses_when_max_fallback_cannot_reach_the_default(
    data: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "m.onnx"
    code, stdout, stderr = cli(data["sensitive"], "-o", out, "--target", "cpu", "--calib",
                               data["npz"], "--calib-size", 100, "--max-fallback", 0, "--json")  # fmt: skip
    assert code == 1
    report = json.loads(stdout)
    assert report["passed"] is False and report["output"] is None
    [step] = report["gate"]["steps"]
    assert step["kept_float"] == [] and step["agreement"] < 0.99
    assert "rejected:" in stderr and "under 99%" in stderr and "nothing was written" in stderr
    assert "(not written)" in stderr and report["sizes"]["rejected_bytes"] > 0
    assert list(tmp_path.iterdir()) == []

    # --min-agreement (a percentage) moves the bar: at the measured agreement it passes as is.
    bar = math.floor(step["agreement"] * 100)
    code, stdout, stderr = cli(data["sensitive"], "-o", out, "--target", "cpu", "--calib",
                               data["npz"], "--calib-size", 100, "--max-fallback", 0,
                               "--min-agreement", bar, "--json")  # fmt: skip
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["gate"]["passed"] and report["gate"]["min_agreement"] == bar
    assert report["kept_float"] == [] and out.is_file()


def test_a_good_model_passes_with_no_fallback(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    code, stdout, stderr = cli(data["good"], "-o", out, "--target", "cpu", "--calib",
                               data["npz"], "--calib-size", 100, "--json")  # fmt: skip
    assert code == 0, stderr
    gate = json.loads(stdout)["gate"]
    assert gate["passed"] and len(gate["steps"]) == 1 and gate["steps"][0]["agreement"] >= 0.99
    assert "kept in float: none" in stderr


def test_with_eval_the_accuracy_gates_and_the_agreement_is_reported(
    data: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "m.onnx"
    code, stdout, stderr = cli(data["sensitive"], "-o", out, "--target", "cpu", "--calib",
                               data["npz"], "--calib-size", 100, "--eval", data["val"],
                               "--max-drop", 0.5, "--json")  # fmt: skip
    assert code == 0, stderr
    report = json.loads(stdout)
    gate = report["gate"]
    assert gate["kind"] == "accuracy" and gate["metric"] == "top1"
    assert report["metrics"]["float"] == 1.0 and report["drop"] <= 0.5
    # Every step carries both numbers: the accuracy it gated on and the agreement.
    assert all("agreement" in s and "drop" in s for s in gate["steps"])
    assert gate["steps"][0]["agreement"] < 0.7
    assert report["agreement"]["top1_agreement"] >= 0.99
    assert "accuracy (top1 on" in stderr and "top-1 agreement" in stderr


def test_detector_is_gated_on_mean_box_f1_without_labels(tmp_path: Path) -> None:
    model = tiny_detector(tmp_path / "det.onnx")
    out = tmp_path / "det.int8.onnx"
    # --min-agreement 0: always passes, so what is measured can be checked on its own.
    code, stdout, stderr = cli(model, "-o", out, "--target", "cpu", "--calib", "synthetic",
                               "--calib-size", 24, "--min-agreement", 0, "--json")  # fmt: skip
    assert code == 0, stderr
    report = json.loads(stdout)
    gate, det = report["gate"], report["agreement"]["detection"]
    assert gate["metric"] == "box_f1_50_95" and gate["min_agreement"] == 0
    found = det["matched"] + det["extra_boxes"]
    assert det["float_boxes"] > 0
    assert det["box_f1"] == round(2 * det["matched"] / (det["float_boxes"] + found), 4)
    # The mean over IoU 0.5:0.95 counts fewer matches at the stricter thresholds.
    assert 0.0 < det["box_f1_50_95"] <= det["box_f1"]
    assert gate["steps"][0]["agreement"] == det["box_f1_50_95"]
    assert "box F1" in stderr and "IoU 0.5:0.95" in stderr
    # With the default bar (90), the mean F1 is held to it: passed means it got there.
    code, stdout, _ = cli(model, "-o", tmp_path / "d2.onnx", "--target", "cpu", "--calib",
                          "synthetic", "--calib-size", 24, "--json")  # fmt: skip
    gate = json.loads(stdout)["gate"]
    assert gate["min_agreement"] == 90.0
    assert (code == 0) is gate["passed"] is (gate["steps"][-1]["agreement"] >= 0.90)


def test_mean_box_f1_sees_boxes_that_moved() -> None:
    """A box shifted to IoU ~0.7 still matches at 0.5 but not at 0.75..0.95."""
    import numpy as np

    from toolkit.evaluate.agreement import detection_agreement
    from toolkit.model.spec import InputSpec, ModelSpec, OutputSpec

    spec = ModelSpec(task="detect", input=InputSpec(shape=(1, 3, 64, 64)),
                     output=OutputSpec(format="yolov8"), labels=("a",))  # fmt: skip
    ref = np.zeros((1, 5, 4), np.float32)  # yolov8: [batch, 4 box (cx cy w h) + classes, anchors]
    ref[0, :, 0] = [32, 32, 20, 20, 0.9]
    same, moved = ref.copy(), ref.copy()
    moved[0, 0, 0] = 36  # 4 px right: IoU 16*20 / (2*400 - 320) = 0.667
    exact = detection_agreement(spec, ref, same)
    shifted = detection_agreement(spec, ref, moved)
    assert exact["box_f1"] == shifted["box_f1"] == 1.0
    assert exact["box_f1_50_95"] == 1.0
    assert shifted["box_f1_50_95"] == 0.4  # matched at 0.50, 0.55, 0.60, 0.65 of 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-agreement", 0.99], "a percentage: 99 for 0.99"),
        (["--min-agreement", 101], "--min-agreement must be a percentage 0..100"),
        (["--min-agreement", 99, "--max-drop", 1], "not both"),
        (["--min-agreement", 99, "--precision", "fp16"], "gates int8 models"),
    ],
    ids=["fraction", "over-100", "with-max-drop", "fp16"],
)
def test_bad_min_agreement_is_exit_2(
    data: dict[str, Path], tmp_path: Path, args: list[object], message: str
) -> None:
    out = tmp_path / "o.onnx"
    code, stdout, stderr = cli(data["good"], "-o", out, "--calib", data["npz"], *args)
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1
    assert stdout == "" and not out.exists()


def test_min_agreement_with_eval_is_exit_2(data: dict[str, Path], tmp_path: Path) -> None:
    code, _, stderr = cli(data["good"], "-o", tmp_path / "o.onnx", "--calib", data["npz"],
                          "--eval", data["val"], "--min-agreement", 99)  # fmt: skip
    assert code == 2 and "with --eval, gate on accuracy with --max-drop" in stderr
