"""``edgetk export --dynamic-hw``: a detector whose input height and width are dynamic.

A tiny anchor-free detector (one stride-8 level, zoo:defect-det's output layout) is exported
with dynamic H/W: the input axes are symbolic, the spec records the stride, parity is
checked at two sizes, and the file runs rect inputs. Classifiers are refused. The shipped
zoo:defect-det is exported too (slow) and its rect boxes compared with its square ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from toolkit.cli.app import app

runner = CliRunner()

TINY_DET = """
import torch
from torch import nn


class TinyDet(nn.Module):
    def __init__(self, num_classes: int = 2, in_chans: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(
            nn.Conv2d(in_chans, 8, 3, 2, 1), nn.SiLU(), nn.Conv2d(8, 8, 3, 2, 1), nn.SiLU(),
            nn.Conv2d(8, 8, 3, 2, 1), nn.SiLU(),
        )
        self.head = nn.Conv2d(8, 4 + num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.body(x))
        _, _, h, w = y.shape
        gy, gx = torch.meshgrid(
            (torch.arange(h, dtype=y.dtype) + 0.5) * 8,
            (torch.arange(w, dtype=y.dtype) + 0.5) * 8,
            indexing="ij",
        )
        ltrb = nn.functional.softplus(y[:, :4]).flatten(2) * 8
        xy = torch.stack([gx.flatten(), gy.flatten()])[None]
        x1y1, x2y2 = xy - ltrb[:, :2], xy + ltrb[:, 2:]
        box = torch.cat([(x1y1 + x2y2) / 2, x2y2 - x1y1], 1)
        return torch.cat([box, y[:, 4:].flatten(2).sigmoid()], 1)


class TinyCls(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.body(x))
"""


@pytest.fixture(scope="module")
def tiny_py(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dynhw") / "tiny.py"
    path.write_text(TINY_DET)
    return path


@pytest.fixture(scope="module")
def dyn_det(tiny_py: Path) -> tuple[Path, dict]:
    out = tiny_py.with_name("tinydet.onnx")
    result = runner.invoke(app, [
        "export", f"{tiny_py}:TinyDet", "-o", str(out), "--imgsz", "64", "--task", "detect",
        "--output-format", "yolov8", "--resize", "letterbox", "--dynamic-hw", "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_dynamic_hw_export_has_symbolic_height_and_width(dyn_det: tuple[Path, dict]) -> None:
    path, report = dyn_det
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"]
    assert dims[1].dim_value == 3
    assert report["dynamic_hw"] is True
    assert report["parity"]["passed"] and report["parity_sizes"] == [[64, 64], [32, 64]]
    assert report["spec"]["extra"]["stride"] == 32 and report["spec"]["extra"]["dynamic_hw"]


def test_dynamic_hw_export_runs_rect_inputs(dyn_det: tuple[Path, dict]) -> None:
    from toolkit.backends import open_session
    from toolkit.tasks.base import make_task, prepare_inputs, run_task
    from toolkit.tasks.rect import rect_allowed

    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    with open_session(dyn_det[0], "ort-cpu", threads=1) as session:
        assert rect_allowed(session)
        task = make_task(session.spec, conf=0.01)
        inputs, _ = prepare_inputs(session, task, [frame])
        assert inputs["images"].shape == (1, 3, 64, 64)  # 48 -> 64: 16 pads up to stride 32
        [dets] = run_task(session, task, [frame])
        assert len(dets) and dets.xyxy[:, 3].max() <= 480


def test_dynamic_hw_refuses_a_classifier(tiny_py: Path) -> None:
    out = tiny_py.with_name("cls.onnx")
    result = runner.invoke(
        app, ["export", f"{tiny_py}:TinyCls", "-o", str(out), "--imgsz", "64", "--dynamic-hw"]
    )
    assert result.exit_code == 2
    assert "--dynamic-hw applies to detectors" in result.output
    assert not out.exists()


def test_dynamic_hw_needs_stride_multiples(tiny_py: Path) -> None:
    out = tiny_py.with_name("odd.onnx")
    result = runner.invoke(app, [
        "export", f"{tiny_py}:TinyDet", "-o", str(out), "--imgsz", "72", "--task", "detect",
        "--output-format", "yolov8", "--dynamic-hw",
    ])  # fmt: skip
    assert result.exit_code == 2
    assert "multiples of the stride 32, got 72x72" in result.output


@pytest.mark.slow
def test_shipped_detector_rect_boxes_agree_with_square(tmp_path: Path) -> None:
    """zoo:defect-det (trained weights) exported with --dynamic-hw: on 640x480 belt scenes
    at imgsz 256, rect inputs (192x256, 25% fewer pixels) find the square path's boxes.

    Tolerance: every square box of confidence >= 0.5 has a rect box of its class with IoU
    >= 0.7, and their mean IoU is >= 0.9 (measured 0.97: the padding around the content
    differs, so a convolution net's outputs move slightly)."""
    from toolkit.backends import open_session
    from toolkit.data.synthetic_det import render_scene
    from toolkit.export import export_onnx
    from toolkit.tasks.base import make_task, prepare_inputs, run_task
    from toolkit.tasks.boxes import box_iou

    out = tmp_path / "dd.onnx"
    report = export_onnx("zoo:defect-det", out, dynamic_hw=True)
    assert report.parity.passed and report.parity_sizes == [[256, 256], [192, 256]]
    rng = np.random.default_rng(5)
    frames = [render_scene(rng, (480, 640))[0] for _ in range(8)]
    ious = []
    with open_session(out, "ort-cpu") as session:
        task = make_task(session.spec, conf=0.5)
        assert prepare_inputs(session, task, frames[:1])[0]["images"].shape[2:] == (192, 256)
        rect = run_task(session, task, frames)
        square = run_task(session, task, frames, square=True)
    for r, s in zip(rect, square, strict=True):
        for box, cls in zip(s.xyxy, s.class_id, strict=True):
            same = r.class_id == cls
            best = box_iou(box[None], r.xyxy[same]).max() if same.any() else 0.0
            ious.append(float(best))
    assert len(ious) >= 5
    assert min(ious) >= 0.7 and np.mean(ious) >= 0.9, ious
