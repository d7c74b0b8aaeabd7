"""mAP against cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.evaluate.metrics import DetectionMetrics, average_precision

NAMES = ("a", "b")


def _metrics(preds, gts) -> dict:
    m = DetectionMetrics(NAMES)
    for (pb, pc, pk), (gb, gk) in zip(preds, gts, strict=True):
        m.update(
            np.asarray(pb, np.float32).reshape(-1, 4),
            np.asarray(pc, np.float32),
            np.asarray(pk, np.int64),
            np.asarray(gb, np.float32).reshape(-1, 4),
            np.asarray(gk, np.int64),
        )
    return m.compute()


def test_perfect_predictions_score_one() -> None:
    gt = ([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1])
    r = _metrics([(gt[0], [0.9, 0.8], gt[1])], [gt])
    assert r["map50"] == pytest.approx(1.0)
    assert r["map50_95"] == pytest.approx(1.0)
    assert r["precision"] == pytest.approx(1.0) and r["recall"] == pytest.approx(1.0)


def test_shifted_box_counts_up_to_its_iou() -> None:
    # A box shifted right by 2.5 on a 10-wide box: IoU = 75 / 125 = 0.6, a hit at the
    # thresholds 0.50, 0.55, 0.60 and a miss at 0.65 ... 0.95: mAP50-95 = 3/10.
    r = _metrics([([[2.5, 0, 12.5, 10]], [0.9], [0])], [([[0, 0, 10, 10]], [0])])
    assert r["map50"] == pytest.approx(1.0)
    assert r["map50_95"] == pytest.approx(0.3)
    # Only class "a" has ground truth: "b" is left out of the mean.
    assert r["per_class"][1]["ap50"] is None


def test_missed_object_halves_recall() -> None:
    gts = [([[0, 0, 10, 10], [50, 50, 60, 60]], [0, 0])]
    r = _metrics([([[0, 0, 10, 10]], [0.9], [0])], gts)
    # Recall reaches 0.5 at precision 1: 51 of the 101 recall points (0.00 .. 0.50).
    assert r["map50"] == pytest.approx(51 / 101)
    assert r["recall"] == pytest.approx(0.5) and r["precision"] == pytest.approx(1.0)


def test_false_positive_ranked_above_the_hit() -> None:
    gts = [([[0, 0, 10, 10]], [0])]
    preds = [([[100, 100, 110, 110], [0, 0, 10, 10]], [0.9, 0.5], [0, 0])]
    r = _metrics(preds, gts)
    # The hit comes second: precision 1/2 at recall 1 everywhere on the curve.
    assert r["map50"] == pytest.approx(0.5)
    # Below the hit's confidence the false positive alone gives nothing; the best F1 point
    # is the hit: P = 1/2, R = 1.
    assert r["precision"] == pytest.approx(0.5) and r["recall"] == pytest.approx(1.0)


def test_false_positive_ranked_below_does_not_cost_ap() -> None:
    gts = [([[0, 0, 10, 10]], [0])]
    preds = [([[0, 0, 10, 10], [100, 100, 110, 110]], [0.9, 0.5], [0, 0])]
    assert _metrics(preds, gts)["map50"] == pytest.approx(1.0)


def test_wrong_class_is_not_a_hit() -> None:
    r = _metrics([([[0, 0, 10, 10]], [0.9], [1])], [([[0, 0, 10, 10]], [0])])
    assert r["map50"] == 0.0


def test_duplicate_counts_once() -> None:
    gts = [([[0, 0, 10, 10]], [0])]
    preds = [([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8], [0, 0])]
    r = _metrics(preds, gts)
    assert r["map50"] == pytest.approx(1.0)  # the duplicate comes after full recall
    assert r["per_class"][0]["instances"] == 1


def test_average_precision_101_points() -> None:
    # Recall 1 at precision 1 from the first prediction: every point is 1.
    assert average_precision(np.array([1.0]), np.array([1.0])) == pytest.approx(1.0)
    assert average_precision(np.array([]), np.array([])) == 0.0
