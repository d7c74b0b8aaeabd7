"""NMS against a brute-force Python reference; IoU by hand."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.tasks.boxes import batched_nms, box_iou, nms


def _iou1(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _reference(boxes, scores, classes, iou, agnostic, max_det):
    """Textbook greedy NMS, one box at a time."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep: list[int] = []
    for i in order:
        if len(keep) >= max_det:
            break
        if all(
            (not agnostic and classes[i] != classes[k]) or _iou1(boxes[i], boxes[k]) <= iou
            for k in keep
        ):
            keep.append(i)
    return keep


def _random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(5, 60, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


def test_box_iou_by_hand() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0, 1.0]], rtol=1e-6)


@pytest.mark.parametrize("agnostic", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nms_matches_brute_force(seed: int, agnostic: bool) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    boxes = _random_boxes(rng, n)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    classes = rng.integers(0, 4, n)
    got = batched_nms(boxes, scores, classes, iou=0.45, agnostic=agnostic)
    want = _reference(boxes, scores, classes, 0.45, agnostic, 300)
    assert got.tolist() == want
    # Class-aware NMS keeps more boxes than agnostic on the same input.
    if not agnostic:
        assert len(got) > len(batched_nms(boxes, scores, classes, iou=0.45, agnostic=True))


def test_nms_max_det_and_empty() -> None:
    rng = np.random.default_rng(3)
    boxes = _random_boxes(rng, 100)
    scores = rng.uniform(0, 1, 100).astype(np.float32)
    keep = nms(boxes, scores, 0.9, max_det=5)
    assert len(keep) == 5
    assert keep.tolist() == np.argsort(-scores)[:5].tolist()  # nothing overlaps > 0.9 at the top
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)).size == 0


def test_overlapping_boxes_of_different_classes_both_survive() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10.5]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    assert batched_nms(boxes, scores, np.array([0, 1])).tolist() == [0, 1]
    assert batched_nms(boxes, scores, np.array([0, 0])).tolist() == [0]
    assert batched_nms(boxes, scores, np.array([0, 1]), agnostic=True).tolist() == [0]
