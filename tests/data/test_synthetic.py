"""The synthetic defect generator: determinism, defect boxes, belt frames, ImageFolder sets."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from toolkit.data.synthetic import (
    CLASSES,
    belt_window,
    draw_part,
    make_belt,
    make_classification_set,
    paste_part,
    render_part,
    sample_part,
)
from toolkit.errors import BadInputError, OutputExistsError


@pytest.mark.parametrize("defect", [None, "scratch", "spot", "crack"])
def test_same_seed_same_bytes_different_seed_different(defect: str | None) -> None:
    a, boxes_a = render_part(np.random.default_rng(7), 96, defect)
    b, boxes_b = render_part(np.random.default_rng(7), 96, defect)
    c, _ = render_part(np.random.default_rng(8), 96, defect)
    assert a.dtype == np.uint8 and a.shape == (96, 96, 3)
    assert a.tobytes() == b.tobytes()
    assert boxes_a == boxes_b
    assert a.tobytes() != c.tobytes()


@pytest.mark.parametrize("defect", ["scratch", "spot", "crack"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_defect_changes_the_image_only_inside_its_box(defect: str, seed: int) -> None:
    ok, ok_boxes = render_part(np.random.default_rng(seed), 96, None)
    bad, boxes = render_part(np.random.default_rng(seed), 96, defect)
    assert ok_boxes == []
    assert [b.label for b in boxes] == [defect]
    x1, y1, x2, y2 = boxes[0].xyxy
    diff = np.abs(ok.astype(np.int16) - bad.astype(np.int16)).max(axis=2)
    inside = np.zeros(diff.shape, bool)
    inside[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))] = True
    # The defect is plainly visible in its box...
    assert diff[inside].max() >= 40
    # ...and nothing changes beyond it (2 px for the bilinear resampling of the rotated part).
    near = cv2.dilate(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert diff[~near].max() == 0


@pytest.mark.parametrize("size", [96, (72, 128), 200])
def test_boxes_lie_inside_the_image(size: int | tuple[int, int]) -> None:
    h, w = (size, size) if isinstance(size, int) else size
    for seed in range(12):
        defects = ["scratch", "spot", "crack", "missing_hole"][: 1 + seed % 4]
        img, boxes = render_part(np.random.default_rng(seed), size, defects, kind="plate")
        assert img.shape == (h, w, 3)
        assert {b.label for b in boxes} == set(defects)
        for b in boxes:
            x1, y1, x2, y2 = b.xyxy
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h


def test_unknown_defect_or_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown defect"):
        render_part(np.random.default_rng(0), 64, "dent-ish")
    with pytest.raises(ValueError, match="unknown part kind"):
        render_part(np.random.default_rng(0), 64, None, kind="gear")


def test_part_pasted_anywhere_on_a_moving_belt() -> None:
    rng = np.random.default_rng(3)
    belt = make_belt(rng, 120, 400)
    # The belt wraps: a window across the end continues at the start.
    win = belt_window(belt, 395, 10)
    assert np.array_equal(win, np.concatenate([belt[:, 395:], belt[:, :5]], axis=1))
    sprite = draw_part(sample_part(rng, 80, "washer").with_defects(("spot",), rng))
    centre = belt_window(belt, 0, 200)
    boxes = paste_part(centre, sprite, (100, 60), angle=30)
    assert len(boxes) == 1
    x1, y1, x2, y2 = boxes[0].xyxy
    assert 40 <= x1 < x2 <= 160 and 0 <= y1 < y2 <= 120
    # Half out of the frame: what is visible is drawn, boxes are clipped to the frame.
    edge = belt_window(belt, 0, 200)
    for b in paste_part(edge, sprite, (0, 60)):
        assert b.xyxy[0] >= 0
    # Wholly out of the frame: nothing is drawn, no boxes.
    away = belt_window(belt, 0, 200)
    assert paste_part(away, sprite, (-300, 60)) == []
    assert np.array_equal(away, belt_window(belt, 0, 200))


def test_classification_set_counts_and_overwrite_rules(tmp_path: Path) -> None:
    root = tmp_path / "set"
    info = make_classification_set(root, n_per_class=5, size=48, seed=1)
    for split, n in (("train", 4), ("val", 1)):
        for cls in CLASSES:
            files = sorted((root / split / cls).glob("*.png"))
            assert len(files) == n
            assert cv2.imread(str(files[0])).shape == (48, 48, 3)
    assert info["counts"] == {"train": dict.fromkeys(CLASSES, 4), "val": dict.fromkeys(CLASSES, 1)}
    assert json.loads((root / "dataset.json").read_text())["seed"] == 1
    first = (root / "val" / "spot" / "spot_00004.png").read_bytes()
    with pytest.raises(OutputExistsError):
        make_classification_set(root, n_per_class=5, size=48, seed=1)
    make_classification_set(root, n_per_class=5, size=48, seed=1, force=True)
    assert (root / "val" / "spot" / "spot_00004.png").read_bytes() == first
    # A folder it did not make is never replaced, even with force.
    other = tmp_path / "photos"
    other.mkdir()
    (other / "keep.jpg").write_bytes(b"x")
    with pytest.raises(BadInputError, match="not made by edgetk"):
        make_classification_set(other, n_per_class=2, force=True)
    assert (other / "keep.jpg").exists()


def test_single_folder_set(tmp_path: Path) -> None:
    make_classification_set(
        tmp_path / "s", n_per_class=3, size=32, splits={"": 1.0}, classes=("ok", "crack")
    )
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["crack", "dataset.json", "ok"]
    assert len(list((tmp_path / "s" / "ok").glob("*.png"))) == 3
