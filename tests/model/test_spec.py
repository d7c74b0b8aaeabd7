from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import BadInputError
from toolkit.model.modelfile import guess_output_format, load_onnx, read_spec, spec_from_onnx
from toolkit.model.spec import ModelSpec, PreprocessSpec, SpecOverrides, parse_imgsz, parse_labels
from toolkit.tasks.preprocess import FrameMeta, preprocess


def test_spec_json_roundtrip() -> None:
    spec = ModelSpec(labels=("a", "b"), preprocess=PreprocessSpec(mean=(0.1, 0.2, 0.3)))
    back = ModelSpec.from_json(spec.to_json())
    assert back == spec


def test_spec_rejects_bad_values() -> None:
    with pytest.raises(BadInputError, match="unknown task"):
        ModelSpec.from_dict({"task": "segment"})
    with pytest.raises(BadInputError, match="not JSON"):
        ModelSpec.from_json("{nope")


def test_onnx_spec_roundtrip(tiny_onnx) -> None:
    spec = read_spec(tiny_onnx)
    assert spec.labels == ("ok", "scratch", "spot")
    assert spec.input.shape == (None, 3, 32, 32)


def test_overrides_win(tiny_onnx) -> None:
    spec = read_spec(tiny_onnx, SpecOverrides(imgsz=(48, 40), labels=("x", "y", "z"), color="bgr"))
    assert spec.input.hw == (48, 40)
    assert spec.labels == ("x", "y", "z")
    assert spec.input.color == "bgr"


def test_foreign_onnx_defaults(tiny_onnx, tmp_path) -> None:
    import onnx

    proto = load_onnx(tiny_onnx)
    del proto.metadata_props[:]
    spec = spec_from_onnx(proto)
    assert spec.task == "classify" and spec.output.format == "logits"
    assert spec.preprocess.resize == "center-crop" and spec.labels == ()
    # Ultralytics-style literal metadata is read safely.
    entry = proto.metadata_props.add()
    entry.key, entry.value = "names", "{0: 'ok', 1: 'ng', 2: 'dent'}"  # one per class
    bad = proto.metadata_props.add()
    bad.key, bad.value = "imgsz", "__import__('os').system('false')"
    assert spec_from_onnx(proto).labels == ("ok", "ng", "dent")
    onnx.save(proto, str(tmp_path / "f.onnx"))


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((1, 1000), ("classify", "logits")),
        ((1, 84, 8400), ("detect", "yolov8")),
        ((1, 25200, 85), ("detect", "yolov5")),
        ((1, 300, 6), ("detect", "yolo-nms")),
    ],
)
def test_guess_output_format(shape, expected) -> None:
    assert guess_output_format(shape) == expected


def test_parsers(tmp_path) -> None:
    assert parse_imgsz("224") == (224, 224)
    assert parse_imgsz("480,640") == (480, 640)
    with pytest.raises(BadInputError):
        parse_imgsz("big")
    f = tmp_path / "labels.txt"
    f.write_text("ok\nscratch\n\n")
    assert parse_labels(str(f)) == ("ok", "scratch")
    assert parse_labels("a, b") == ("a", "b")


def test_preprocess_normalizes_and_orders_channels() -> None:
    spec = ModelSpec().with_changes(
        preprocess=PreprocessSpec(resize="stretch", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    )
    spec = SpecOverrides(imgsz=(4, 4)).apply(spec)
    frame = np.zeros((8, 8, 3), np.uint8)
    frame[..., 0] = 255  # blue in BGR
    x, metas = preprocess([frame, frame], spec)
    assert x.shape == (2, 3, 4, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 2], 1.0)  # RGB: blue is the last channel
    np.testing.assert_allclose(x[0, 0], -1.0)
    assert metas[0] == FrameMeta((8, 8), (0.5, 0.5), (0.0, 0.0))


def test_letterbox_round_trip() -> None:
    spec = SpecOverrides(imgsz=(64, 64), resize="letterbox").apply(ModelSpec())
    frame = np.zeros((48, 96, 3), np.uint8)
    _, (meta,) = preprocess([frame], spec)
    box = np.array([[10.0, 5.0, 90.0, 40.0]])
    net = box.copy()
    net[:, [0, 2]] = box[:, [0, 2]] * meta.gain[0] + meta.offset[0]
    net[:, [1, 3]] = box[:, [1, 3]] * meta.gain[1] + meta.offset[1]
    np.testing.assert_allclose(meta.to_original(net), box, atol=1.0)


def test_preprocess_rejects_wrong_channels() -> None:
    with pytest.raises(BadInputError, match="channels"):
        preprocess([np.zeros((8, 8, 2), np.uint8)], ModelSpec())
