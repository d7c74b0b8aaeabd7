"""Rect inference: a dynamic-H/W detector gets the frame's aspect, not a square.

The detector is hand-built (tests/tasks/_blob_detector.py): it boxes the bright pixels of its
input, so rect and square inputs must give the same boxes. Tolerance: IoU >= 0.99 (measured
1.0: both paths resize at the same scale to integer offsets).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _blob_detector import blob_detector, frame_with
from _live_helpers import const_detector

from toolkit.backends import open_session
from toolkit.errors import BadInputError
from toolkit.model.spec import ModelSpec
from toolkit.tasks.base import make_task, prepare_inputs, run_task
from toolkit.tasks.boxes import box_iou
from toolkit.tasks.rect import batch_rect_shape, model_stride, rect_allowed, rect_shape


@pytest.mark.parametrize(
    ("orig", "imgsz", "stride", "want"),
    [
        ((480, 640), (320, 320), 32, (256, 320)),  # the example
        ((640, 480), (320, 320), 32, (320, 256)),
        ((480, 640), (640, 640), 32, (480, 640)),
        ((1080, 1920), (640, 640), 32, (384, 640)),
        ((100, 100), (320, 320), 32, (320, 320)),
        ((480, 640), (320, 320), 64, (256, 320)),  # 240 + 80 % 64
        ((300, 640), (320, 320), 16, (160, 320)),
    ],
)
def test_rect_shape(orig, imgsz, stride, want) -> None:
    assert rect_shape(orig, imgsz, stride) == want


def test_batch_of_mixed_aspects_takes_one_shape_that_fits_all() -> None:
    assert batch_rect_shape([(480, 640), (640, 480)], (320, 320), 32) == (320, 320)
    assert batch_rect_shape([(480, 640), (360, 640)], (320, 320), 32) == (256, 320)
    with pytest.raises(BadInputError):
        batch_rect_shape([], (320, 320), 32)


@pytest.mark.parametrize(
    ("extra", "want"),
    [({}, 32), ({"stride": 16}, 16), ({"stride": "8"}, None), ({"stride": 0}, None)],
)
def test_model_stride(extra, want) -> None:
    spec = ModelSpec(task="detect", extra=extra)
    if want is None:
        with pytest.raises(BadInputError, match=r"extra\.stride"):
            model_stride(spec)
    else:
        assert model_stride(spec) == want


@pytest.fixture(scope="module")
def blob(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return blob_detector(tmp_path_factory.mktemp("rect") / "blob.onnx", imgsz=320)


def test_rect_input_has_fewer_pixels_and_the_same_boxes(blob: Path) -> None:
    rng = np.random.default_rng(0)
    with open_session(blob, "ort-cpu", threads=1) as session:
        assert rect_allowed(session)
        task = make_task(session.spec)
        for _ in range(5):
            x, y = int(rng.integers(0, 560)), int(rng.integers(0, 400))
            w, h = int(rng.integers(30, 80)), int(rng.integers(30, 80))
            frame = frame_with([(x, y, x + w, y + h)])
            rect, _ = prepare_inputs(session, task, [frame])
            square, _ = prepare_inputs(session, task, [frame], square=True)
            assert rect["images"].shape == (1, 3, 256, 320)
            assert square["images"].shape == (1, 3, 320, 320)
            [r] = run_task(session, task, [frame])
            [s] = run_task(session, task, [frame], square=True)
            assert len(r) == len(s) == 1
            assert box_iou(r.xyxy, s.xyxy)[0, 0] >= 0.99
            assert np.abs(r.xyxy[0] - [x, y, x + w, y + h]).max() <= 2.5  # 1 input px = 2 px


def test_mixed_batch_is_one_call_with_each_box_mapped_back(blob: Path) -> None:
    frames = [frame_with([(50, 60, 150, 140)]), frame_with([(20, 300, 90, 420)], hw=(640, 480))]
    with open_session(blob, "ort-cpu", threads=1) as session:
        task = make_task(session.spec)
        inputs, metas = prepare_inputs(session, task, frames)
        assert inputs["images"].shape == (2, 3, 320, 320)
        dets = task.postprocess(session.infer(inputs), metas)
    assert np.abs(dets[0].xyxy[0] - [50, 60, 150, 140]).max() <= 2.5
    assert np.abs(dets[1].xyxy[0] - [20, 300, 90, 420]).max() <= 2.5


def test_static_model_keeps_the_square(tmp_path: Path) -> None:
    with open_session(const_detector(tmp_path / "c.onnx"), "ort-cpu", threads=1) as session:
        assert not rect_allowed(session)
        task = make_task(session.spec)
        inputs, _ = prepare_inputs(session, task, [np.zeros((480, 640, 3), np.uint8)])
    assert inputs["images"].shape == (1, 3, 64, 64)
