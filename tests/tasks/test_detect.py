"""Detection decoding on ONNX files built to each YOLO layout, letterbox, Detections."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from _live_helpers import const_output_model

from toolkit.backends import open_session
from toolkit.errors import BadInputError
from toolkit.model.spec import InputSpec, ModelSpec, OutputSpec, PreprocessSpec
from toolkit.tasks.base import make_task, run_task
from toolkit.tasks.decode import DecodeOptions, decode
from toolkit.tasks.detect import Detections, DetectTask
from toolkit.tasks.preprocess import letterbox

# A 100 x 200 (h x w) frame letterboxed into 64 x 64: gain 0.32, 16 px of padding above.
FRAME_HW = (100, 200)
GAIN, TOP = 0.32, 16.0
# Two objects in original-frame pixels, and the classes / scores the fake models give them.
OBJECTS = np.array([[20, 10, 70, 60], [120, 40, 190, 95]], np.float32)
CLASSES = [1, 0]
SCORES = [0.9, 0.8]
# mAP50 the shipped zoo:defect-det weights must reach on 40 held-out scenes (see the model card).
SHIPPED_MAP50_FLOOR = 0.8


def _to_net(xyxy: np.ndarray) -> np.ndarray:
    return xyxy * GAIN + np.array([0, TOP, 0, TOP], np.float32)


def _const_model(out: np.ndarray, path: Path, meta: dict[str, str] | None = None) -> Path:
    """An ONNX model whose output is ``out`` (plus 0 * mean(images), so the input is used)."""
    model = const_output_model(out)
    for k, v in (meta or {}).items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _yolov8_output(n_cls: int = 3, anchors: int = 120) -> np.ndarray:
    out = np.zeros((1, 4 + n_cls, anchors), np.float32)
    net = _to_net(OBJECTS)
    for k, (box, c, s) in enumerate(zip(net, CLASSES, SCORES, strict=True)):
        cx, cy, w, h = (
            (box[0] + box[2]) / 2,
            (box[1] + box[3]) / 2,
            box[2] - box[0],
            box[3] - box[1],
        )
        # Three near-duplicates per object: NMS must keep one.
        for j, (jit, ds) in enumerate(((0.0, 0.0), (0.4, -0.05), (-0.3, -0.1))):
            a = 10 * k + j
            out[0, :4, a] = [cx + jit, cy, w, h]
            out[0, 4 + c, a] = s + ds
    out[0, 4:, 50:] = 0.01  # background below any threshold
    return out


def _yolov5_output(n_cls: int = 3, anchors: int = 120) -> np.ndarray:
    v8 = _yolov8_output(n_cls, anchors)[0].T  # [A, 4+C]
    out = np.zeros((1, anchors, 5 + n_cls), np.float32)
    out[0, :, :4] = v8[:, :4]
    # Objectness 0.95 times class probability ~ the v8 score.
    best = v8[:, 4:].max(1)
    out[0, :, 4] = np.where(best > 0.1, 0.95, 0.02)
    out[0, :, 5:] = v8[:, 4:] / 0.95
    return out


def _nms_output(k: int = 10) -> np.ndarray:
    out = np.zeros((1, k, 6), np.float32)
    for i, (box, c, s) in enumerate(zip(_to_net(OBJECTS), CLASSES, SCORES, strict=True)):
        out[0, i] = [*box, s, c]
    return out


def _frame() -> np.ndarray:
    return np.full((*FRAME_HW, 3), 90, np.uint8)


def _check(dets: Detections, labels: tuple[str, ...]) -> None:
    assert len(dets) == 2
    np.testing.assert_allclose(dets.xyxy, OBJECTS, atol=1.0 / GAIN)  # within a net pixel
    assert dets.class_id.tolist() == CLASSES
    assert dets.labels == tuple(labels[c] for c in CLASSES)
    np.testing.assert_allclose(dets.confidence, SCORES, atol=1e-5)


@pytest.mark.parametrize(
    ("fmt", "make"),
    [("yolov8", _yolov8_output), ("yolov5", _yolov5_output), ("yolo-nms", _nms_output)],
)
def test_foreign_layouts_decode_with_no_flags(tmp_path: Path, fmt: str, make) -> None:
    """Ultralytics-style files: names as a Python literal, no edgetk spec, layout from shape."""
    meta = {
        "names": "{0: 'scratch', 1: 'spot', 2: 'crack'}",
        "imgsz": "[64, 64]",
        "stride": "32",
        "task": "detect",
    }
    path = _const_model(make(), tmp_path / f"{fmt}.onnx", meta)
    with open_session(str(path), "ort-cpu") as session:
        assert session.spec.task == "detect"
        assert session.spec.output.format == fmt
        assert session.spec.preprocess.resize == "letterbox"
        task = make_task(session.spec, conf=0.25)
        [dets] = run_task(session, task, [_frame()])
    _check(dets, ("scratch", "spot", "crack"))
    # The CLI, with no flags: same boxes, labels from the file's Ultralytics metadata.
    from typer.testing import CliRunner

    from toolkit.cli.app import app

    img = tmp_path / "frame.png"
    cv2.imwrite(str(img), _frame())
    r = CliRunner().invoke(app, ["predict", str(path), str(img), "--json"])
    assert r.exit_code == 0, r.output
    found = json.loads(r.stdout)["results"][0]["detections"]
    assert [d["label"] for d in found] == ["spot", "scratch"]
    np.testing.assert_allclose([d["xyxy"] for d in found], OBJECTS, atol=1.0 / GAIN)


def test_classes_filter_and_conf(tmp_path: Path) -> None:
    path = _const_model(_yolov8_output(), tmp_path / "v8.onnx", {"names": "['a', 'b', 'c']"})
    with open_session(str(path), "ort-cpu") as session:
        [only0] = run_task(session, make_task(session.spec, classes=[0]), [_frame()])
        [high] = run_task(session, make_task(session.spec, conf=0.85), [_frame()])
    assert only0.class_id.tolist() == [0] and only0.labels == ("a",)
    assert high.class_id.tolist() == [1]


def test_decode_rejects_bad_shapes() -> None:
    with pytest.raises(BadInputError, match="yolov8"):
        decode(np.zeros((1, 3, 10), np.float32), "yolov8")
    with pytest.raises(BadInputError, match="unknown detection output"):
        decode(np.zeros((1, 7, 10), np.float32), "ssd")


def test_decode_yolov8_agnostic_merges_classes() -> None:
    out = np.zeros((1, 6, 20), np.float32)
    out[0, :4, 0] = [50, 50, 20, 20]
    out[0, :4, 1] = [51, 50, 20, 20]
    out[0, 4, 0], out[0, 5, 1] = 0.9, 0.8
    [(_, _, c1)] = decode(out, "yolov8", DecodeOptions())
    [(_, _, c2)] = decode(out, "yolov8", DecodeOptions(agnostic=True))
    assert c1.tolist() == [0, 1] and c2.tolist() == [0]


@pytest.mark.parametrize("hw", [(100, 200), (200, 100), (64, 64), (37, 251)])
def test_letterbox_round_trip_within_a_pixel(hw: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (*hw, 3), dtype=np.uint8)
    out, meta = letterbox(frame, (64, 64))
    assert out.shape == (64, 64, 3)
    h, w = hw
    xy = rng.uniform(0, 1, (20, 2)) * [w, h]
    wh = rng.uniform(0, 0.5, (20, 2)) * [w, h]
    boxes = np.clip(np.concatenate([xy, xy + wh], 1), 0, [w, h, w, h]).astype(np.float32)
    net = boxes * np.array([*meta.gain, *meta.gain]) + np.array([*meta.offset, *meta.offset])
    # Inside the 64x64 input and padding centred.
    assert net.min() >= 0 and net[:, [0, 2]].max() <= 64 and net[:, [1, 3]].max() <= 64
    back = meta.to_original(net)
    np.testing.assert_allclose(back, boxes, atol=1.0)
    # Padding is grey 114 on the letterboxed side.
    if h < w:
        assert (out[0] == 114).all()


def test_detections_validated_and_mask_indexable() -> None:
    d = Detections(
        np.array([[0, 0, 10, 10], [5, 5, 20, 20]]),
        np.array([0.9, 0.3]),
        np.array([1, 0]),
        ("spot", "scratch"),
    )
    sub = d[d.confidence > 0.5]
    assert len(sub) == 1 and sub.labels == ("spot",)
    assert sub.to_dict() == {
        "detections": [
            {"class_id": 1, "label": "spot", "confidence": 0.9, "xyxy": [0.0, 0.0, 10.0, 10.0]}
        ]
    }
    assert len(Detections.empty()) == 0 and Detections.empty().to_dict() == {"detections": []}
    with pytest.raises(ValueError):
        Detections(np.zeros((2, 4)), np.zeros(1), np.zeros(2, np.int64))
    with pytest.raises(ValueError):
        Detections(np.zeros((1, 3)), np.zeros(1), np.zeros(1, np.int64))


def test_detect_task_refuses_a_classifier_spec() -> None:
    with pytest.raises(BadInputError):
        DetectTask(ModelSpec(task="classify"))
    spec = ModelSpec(
        task="detect",
        input=InputSpec(shape=(1, 3, 64, 64)),
        preprocess=PreprocessSpec(resize="letterbox"),
        output=OutputSpec(format="logits"),
    )
    with pytest.raises(BadInputError, match="output format"):
        DetectTask(spec)


def test_annotated_image_has_boxes() -> None:
    from toolkit.tasks.annotate import draw_detections

    frame = np.zeros((100, 200, 3), np.uint8)
    d = Detections(np.array([[20, 30, 120, 90]]), np.array([0.8]), np.array([0]), ("scratch",))
    img = draw_detections(frame, d)
    assert img.shape == frame.shape and img[60, 20].any() and not img[60, 60].any()
    assert cv2.countNonZero(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)) > 100


def test_shipped_weights_detect_held_out_defects(tmp_path: Path) -> None:
    """zoo:defect-det's shipped weights on synthetic scenes they never saw (seed 1).

    models/defect-det.md records the figure on 200 held-out images; 40 are scored here.
    """
    from toolkit.data.synthetic_det import make_detection_set
    from toolkit.evaluate.detect import validate_detector
    from toolkit.zoo import get_registry
    from toolkit.zoo.create import shipped_weights_path

    if shipped_weights_path(get_registry().get("defect-det")) is None:
        pytest.skip("no shipped defect-det weights in this install")
    make_detection_set(tmp_path / "held", n_train=0, n_val=40, seed=1)
    with open_session("zoo:defect-det", "torch", threads=1) as session:
        assert session.spec.extra.get("weights") == "package:defect-det.pt"
        result = validate_detector(session, tmp_path / "held" / "data.yaml")
    assert result["images"] == 40
    assert result["map50"] >= SHIPPED_MAP50_FLOOR, result
