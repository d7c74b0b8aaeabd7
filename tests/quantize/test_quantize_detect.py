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
    # The box decoding (everything after the head's last convolutions) stays float, says so,
    # and the written graph has no Q/DQ pair inside it.
    import onnx

    from toolkit.quantize.convert import decode_tail

    tail = decode_tail(onnx.load(str(model)))
    assert tail and set(tail) <= set(report["kept_float"]) and report["decode_float"] == tail
    assert f"the box decoding ({len(tail)} nodes, no weights)" in result.stderr
    assert any("box decoding stays float" in n for n in report["notes"])
    q = onnx.load(str(out))
    producer = {o: n for n in q.graph.node for o in n.output}
    tail_nodes = [n for n in q.graph.node if n.name in tail]
    assert len(tail_nodes) == len(tail)
    for node in tail_nodes:
        fed = [producer[i].op_type for i in node.input if i in producer]
        assert "DequantizeLinear" not in fed, node.name
    assert "boxes vs float" in result.stderr


def test_decode_tail_is_what_follows_the_last_convolutions(tmp_path: Path) -> None:
    import onnx

    from toolkit.quantize.convert import decode_tail

    graph = onnx.load(str(tiny_detector(tmp_path / "det.onnx"))).graph
    tail = set(decode_tail(onnx.load(str(tmp_path / "det.onnx"))))
    outputs = {o.name for o in graph.output}
    assert any(set(n.output) & outputs for n in graph.node if n.name in tail)
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert convs and not tail & {n.name for n in convs}
    # Nothing in the tail feeds a convolution; every node outside it (but a Conv) does.
    def feeds_conv(node, seen=()):
        below = [c for o in node.output for c in consumers.get(o, ())]
        return any(c.op_type == "Conv" or feeds_conv(c) for c in below)

    for n in graph.node:
        if n.op_type != "Conv" and n.name:
            assert (n.name in tail) == (not feeds_conv(n)), n.name


def test_detector_gate_without_eval_is_bad_usage(tmp_path: Path) -> None:
    model = tiny_detector(tmp_path / "det.onnx")
    args = [model, "-o", tmp_path / "o.onnx", "--calib", "synthetic", "--max-drop", 1]
    result = CliRunner().invoke(app, ["quantize", *[str(a) for a in args]])
    assert result.exit_code == 2 and "needs --eval" in result.stderr
