"""Detection end to end: a tiny detector exported to ONNX, then predict / val / train CLIs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from toolkit.cli.app import app

runner = CliRunner()
LABELS = ("scratch", "spot", "crack")

TINY_DET = '''
import torch
from torch import nn


class TinyDet(nn.Module):
    """An anchor-free detector in miniature: one stride-8 level, defect-det's output layout.

    Decoded like zoo:defect-det: ``[N, 4 + C, A]`` with cx, cy, w, h in input pixels and
    sigmoid scores; the class bias starts high so that it always detects something.
    """

    def __init__(self, num_classes: int = 3, in_chans: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(
            nn.Conv2d(in_chans, 8, 3, 2, 1), nn.SiLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.SiLU(),
            nn.Conv2d(16, 16, 3, 2, 1), nn.SiLU(),
        )
        self.head = nn.Conv2d(16, 4 + num_classes, 1)
        nn.init.constant_(self.head.bias[4:], 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.body(x))
        _, _, h, w = y.shape
        gy, gx = torch.meshgrid(
            (torch.arange(h, dtype=y.dtype) + 0.5) * 8,
            (torch.arange(w, dtype=y.dtype) + 0.5) * 8,
            indexing="ij",
        )
        ltrb = nn.functional.softplus(y[:, :4]).flatten(2) * 16
        xy = torch.stack([gx.flatten(), gy.flatten()])[None]
        x1y1, x2y2 = xy - ltrb[:, :2], xy + ltrb[:, 2:]
        box = torch.cat([(x1y1 + x2y2) / 2, x2y2 - x1y1], 1)
        return torch.cat([box, y[:, 4:].flatten(2).sigmoid()], 1)
'''


@pytest.fixture(scope="module")
def yolo_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from toolkit.data.synthetic_det import make_detection_set

    root = tmp_path_factory.mktemp("det") / "defects"
    make_detection_set(root, n_train=4, n_val=3, size=(96, 128), seed=1)
    return root / "data.yaml"


@pytest.fixture(scope="module")
def tiny_det_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from toolkit.export import export_onnx
    from toolkit.model.spec import SpecOverrides

    d = tmp_path_factory.mktemp("tinydet")
    (d / "tinydet.py").write_text(TINY_DET)
    out = d / "tinydet.onnx"
    overrides = SpecOverrides(
        task="detect", labels=LABELS, resize="letterbox", output_format="yolov8"
    )
    report = export_onnx(f"{d / 'tinydet.py'}:TinyDet", out, imgsz=64, overrides=overrides)
    assert report.parity.passed
    return out


def test_export_gives_the_ultralytics_layout(tiny_det_onnx: Path) -> None:
    from toolkit.model.modelfile import graph_io, read_spec

    _, outs = graph_io(onnx.load(str(tiny_det_onnx)))
    # stride 8 at 64 px: 8 x 8 anchors; rows cx, cy, w, h + 3 classes.
    assert list(outs[0][1][1:]) == [7, 64]
    spec = read_spec(tiny_det_onnx)
    assert (spec.task, spec.output.format, spec.labels) == ("detect", "yolov8", LABELS)


def test_predict_json_and_save(tiny_det_onnx: Path, yolo_set: Path, tmp_path: Path) -> None:
    images = yolo_set.parent / "images" / "val"
    save = tmp_path / "annotated"
    r = runner.invoke(
        app,
        [
            "predict",
            str(tiny_det_onnx),
            str(images),
            "--json",
            "--save",
            str(save),
            "--max-det",
            "5",
        ],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["count"] == 3
    for res in doc["results"]:
        assert 0 < len(res["detections"]) <= 5
        for d in res["detections"]:
            assert d["label"] in LABELS and 0.25 <= d["confidence"] <= 1
            x1, y1, x2, y2 = d["xyxy"]
            # Boxes in the original 128 x 96 frame, clipped to it.
            assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 96
    saved = sorted(save.glob("*.png"))
    assert len(saved) == 3
    original = cv2.imread(str(images / saved[0].name))
    assert cv2.imread(str(saved[0])).shape == original.shape
    assert not np.array_equal(cv2.imread(str(saved[0])), original)  # boxes were drawn


def test_predict_classes_filter_and_bad_class(tiny_det_onnx: Path, yolo_set: Path) -> None:
    img = str(next((yolo_set.parent / "images" / "val").glob("*.png")))
    r = runner.invoke(app, ["predict", str(tiny_det_onnx), img, "--json", "--classes", "crack"])
    assert r.exit_code == 0, r.output
    dets = json.loads(r.stdout)["results"][0]["detections"]
    assert dets and {d["label"] for d in dets} == {"crack"}
    r = runner.invoke(app, ["predict", str(tiny_det_onnx), img, "--classes", "dent"])
    assert r.exit_code == 2 and "--classes dent: no such class" in r.output


def test_val_on_a_yolo_set(tiny_det_onnx: Path, yolo_set: Path) -> None:
    r = runner.invoke(app, ["val", str(tiny_det_onnx), str(yolo_set), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["images"] == 3 and doc["classes"] == list(LABELS)
    for key in ("map50", "map50_95", "precision", "recall"):
        assert 0.0 <= doc[key] <= 1.0
    assert doc["map50_95"] <= doc["map50"]
    assert sum(row["instances"] for row in doc["per_class"]) == doc["instances"] > 0
    # The folder works too, and a classifier on a YOLO set is a clear usage error.
    r = runner.invoke(app, ["val", str(tiny_det_onnx), str(yolo_set.parent)])
    assert r.exit_code == 0, r.output
    assert "mAP50" in r.output


def test_val_refuses_a_classifier_on_a_yolo_set(tiny_onnx: Path, yolo_set: Path) -> None:
    r = runner.invoke(app, ["val", str(tiny_onnx), str(yolo_set)])
    assert r.exit_code == 2 and "needs a detector" in r.output


def test_train_detector_cli(yolo_set: Path, tmp_path: Path) -> None:
    import torch

    out = tmp_path / "det.pt"
    args = ["train", "zoo:defect-det", str(yolo_set), "-o", str(out), "--epochs", "1"]
    r = runner.invoke(app, [*args, "--imgsz", "64", "--batch", "2", "--json", "--threads", "1"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["labels"] == list(LABELS) and doc["imgsz"] == [64, 64] and doc["best_epoch"] == 1
    ckpt = torch.load(str(out), map_location="cpu", weights_only=True)
    assert ckpt["arch"] == "zoo:defect-det" and ckpt["labels"] == list(LABELS)
    assert ckpt["imgsz"] == [64, 64] and ckpt["task"] == "detect"
    # No overwrite without --force.
    r = runner.invoke(app, [*args, "--imgsz", "64"])
    assert r.exit_code == 2 and "exists" in r.output
