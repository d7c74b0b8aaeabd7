"""The int8 accuracy gate: a layer made sensitive on purpose is found and kept in float."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli import quantize_cli as cli
from _quantize_models import color_classifier, color_images, color_tensors


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate")
    return {
        "sensitive": color_classifier(root / "sensitive.onnx", outlier=5000.0),
        "good": color_classifier(root / "good.onnx"),
        "npz": color_tensors(root / "calib.npz"),
        "val": color_images(root / "val"),
    }


def _float_inputs_of(model: Path, node_names: list[str]) -> dict[str, bool]:
    """For each Conv among ``node_names``: is its data input float (not a DequantizeLinear)?"""
    import onnx

    graph = onnx.load(str(model)).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    return {
        n.name: producer.get(n.input[0]) != "DequantizeLinear"
        for n in graph.node
        if n.name in node_names and n.op_type == "Conv"
    }


@pytest.mark.parametrize("target", ["tensorrt", "cpu"])
def test_gate_keeps_the_sensitive_layer_in_float(
    data: dict[str, Path], tmp_path: Path, target: str
) -> None:
    from toolkit.model.modelfile import read_spec

    out = tmp_path / "m.onnx"
    code, stdout, stderr = cli(data["sensitive"], "-o", out, "--target", target, "--calib",
                               data["npz"], "--calib-size", 60, "--max-drop", 1, "--json")  # fmt: skip
    assert code == 0, stderr
    report = json.loads(stdout)
    gate = report["gate"]
    # All-int8 collapses (the outlier channel crushes the others), one float layer fixes it.
    assert gate["steps"][0]["drop"] > 30
    assert gate["passed"] and gate["steps"][-1]["drop"] <= 1
    kept = report["kept_float"]
    assert kept and kept == gate["steps"][-1]["kept_float"]
    assert gate["ranking"][0]["nodes"] == kept  # the most helpful layer came first
    floats = _float_inputs_of(out, kept)
    assert floats and all(floats.values())  # the named Conv really reads float data
    assert "kept in float: " + ", ".join(kept) in stderr
    assert read_spec(out).extra["quantization"]["kept_float"] == kept
    if target == "tensorrt":  # a float layer does not break TensorRT compatibility
        assert report["tensorrt_check"]["passed"]


def test_gate_with_eval_reports_both_accuracies(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    code, stdout, stderr = cli(data["sensitive"], "-o", out, "--target", "cpu", "--calib",
                               data["npz"], "--calib-size", 60, "--eval", data["val"],
                               "--max-drop", 0.5, "--json")  # fmt: skip
    assert code == 0, stderr
    report = json.loads(stdout)
    metrics = report["metrics"]
    assert metrics["metric"] == "top1" and metrics["float"] == 1.0
    assert metrics["quantized"] == 1.0 and report["drop"] == 0.0
    assert report["gate"]["steps"][0]["value"] < 0.5  # all-int8 top-1 on the eval set
    assert report["kept_float"]
    assert "accuracy (top1 on" in stderr


def test_good_model_needs_no_fallback(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    code, stdout, _ = cli(data["good"], "-o", out, "--calib", data["npz"], "--calib-size", 60,
                          "--eval", data["val"], "--max-drop", 0.5, "--json")  # fmt: skip
    assert code == 0
    report = json.loads(stdout)
    assert report["kept_float"] == [] and report["drop"] <= 0.5
    assert len(report["gate"]["steps"]) == 1


def test_a_gate_that_cannot_pass_exits_1_and_writes_nothing(
    data: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "m.onnx"
    code, stdout, stderr = cli(data["sensitive"], "-o", out, "--calib", data["npz"],
                               "--calib-size", 60, "--eval", data["val"], "--max-drop", 0.5,
                               "--max-fallback", 0, "--json")  # fmt: skip
    assert code == 1
    report = json.loads(stdout)
    assert report["passed"] is False and report["output"] is None
    assert report["drop"] > 50
    assert "rejected" in stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_demo_step_quantizes_and_benchmarks(data: dict[str, Path], tmp_path: Path) -> None:
    from toolkit.demo.quantize_step import run_quantize_step

    result = run_quantize_step(tmp_path, data["good"], data["val"], quick=True)
    assert result["passed"] and Path(result["output"]).is_file()
    assert result["float_top1"] == 1.0 and result["drop_pt"] is not None
    assert [r["precision"] for r in result["benchmark"]] == ["fp32", "int8"]
    assert all(r["status"] == "ok" and r["p50_ms"] > 0 for r in result["benchmark"])


def test_prescreen_finds_the_sensitive_layer_in_one_pass(data: dict[str, Path]) -> None:
    import numpy as np
    import onnx

    from toolkit.model.modelfile import load_onnx
    from toolkit.quantize.gate import layer_units, prescreen
    from toolkit.quantize.int8 import Int8Quantizer

    calib = np.load(data["npz"])["images"][:32]
    with Int8Quantizer(load_onnx(data["sensitive"]), calib, "images", target="cpu") as q:
        prepared = onnx.load(str(q.prepared))
        units = layer_units(prepared)
        assert len(units) > 1
        [top] = prescreen(prepared, q.quantize(), units, calib[:8], "images", keep=1)
    convs = [u for u in units if "Conv" in u[0] or "conv" in u[0]]
    assert top == convs[1]  # the second conv: the one that reads the outlier channel
