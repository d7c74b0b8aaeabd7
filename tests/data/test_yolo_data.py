"""YOLO-format sets: reading data.yaml and labels, the synthetic set and the belt scene."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from toolkit.data.synthetic_det import BeltScene, make_detection_set, render_scene
from toolkit.data.yolo import is_yolo_set, label_path, load_yolo_set, read_labels
from toolkit.errors import BadInputError, OutputExistsError


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_synthetic_set_is_deterministic_and_readable(tmp_path: Path) -> None:
    info = make_detection_set(tmp_path / "a", n_train=6, n_val=3, size=128, seed=5)
    make_detection_set(tmp_path / "b", n_train=6, n_val=3, size=128, seed=5)
    make_detection_set(tmp_path / "c", n_train=6, n_val=3, size=128, seed=6)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")
    ys = load_yolo_set(tmp_path / "a" / "data.yaml")
    assert ys.names == ("scratch", "spot", "crack")
    assert len(ys.images("train")) == 6 and len(ys.images("val")) == 3
    n_boxes = 0
    for img, cls, xyxy in ys.samples("train"):
        assert img.suffix == ".png"
        assert ((cls >= 0) & (cls < 3)).all()
        assert (xyxy >= 0).all() and (xyxy <= 1).all() and (xyxy[:, 2:] > xyxy[:, :2]).all()
        n_boxes += len(cls)
    counts = info["counts"]["train"]  # type: ignore[index]
    assert n_boxes == sum(counts[c] for c in ys.names) > 0
    with pytest.raises(OutputExistsError):
        make_detection_set(tmp_path / "a", n_train=1, n_val=1)


def test_render_scene_boxes_mark_the_defects() -> None:
    img, boxes = render_scene(np.random.default_rng(3), (120, 160))
    again, boxes2 = render_scene(np.random.default_rng(3), (120, 160))
    assert img.shape == (120, 160, 3) and img.dtype == np.uint8
    assert np.array_equal(img, again) and boxes == boxes2
    for b in boxes:
        x1, y1, x2, y2 = b.xyxy
        assert 0 <= x1 < x2 <= 160 and 0 <= y1 < y2 <= 120


def test_belt_scene_moves_parts_along() -> None:
    scene = BeltScene(seed=1, size=(120, 160), fps=10, speed=0.5)
    a, _ = scene.frame(20)
    b, _ = BeltScene(seed=1, size=(120, 160), fps=10, speed=0.5).frame(20)
    assert np.array_equal(a, b)
    # Follow one defect: the same box, 8 px further right one frame later (0.5 * 160 / 10).
    for i in range(60):
        _, now = scene.frame(i)
        _, nxt = scene.frame(i + 1)
        inner = [d for d in now if d.xyxy[0] > 30 and d.xyxy[2] < 100]
        if inner:
            d = inner[0]
            match = [e for e in nxt if e.label == d.label and abs(e.xyxy[0] - d.xyxy[0] - 8) < 1.5]
            assert match, (d, nxt)
            break
    else:
        pytest.fail("no defect crossed the view in 60 frames")


def test_yaml_with_list_names_and_label_parsing(tmp_path: Path) -> None:
    (tmp_path / "imgs" / "images").mkdir(parents=True)
    (tmp_path / "imgs" / "labels").mkdir(parents=True)
    (tmp_path / "imgs" / "images" / "a.jpg").write_bytes(b"")
    (tmp_path / "imgs" / "labels" / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n\n0 0.1 0.1 0.2 0.2\n")
    (tmp_path / "d.yaml").write_text("train: imgs/images\nval: imgs/images\nnames: [x, y]\n")
    ys = load_yolo_set(tmp_path / "d.yaml")
    assert ys.names == ("x", "y") and is_yolo_set(tmp_path / "d.yaml")
    [(img, cls, xyxy)] = list(ys.samples("val"))
    assert cls.tolist() == [1, 0]
    np.testing.assert_allclose(xyxy[0], [0.4, 0.3, 0.6, 0.7], atol=1e-6)
    assert label_path(img) == tmp_path / "imgs" / "labels" / "a.txt"
    assert read_labels(tmp_path / "missing.txt")[0].size == 0
    with pytest.raises(BadInputError, match="no 'test' split"):
        ys.images("test")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("train: x\n", "names"),
        ("names: [a]\nval: nowhere\n", "split folder not found"),
        ("names: {0: a, 2: b}\n", "number the classes"),
        (": : :\n", "invalid YAML"),
    ],
)
def test_bad_data_yaml(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "data.yaml"
    p.write_text(text)
    with pytest.raises(BadInputError, match=match):
        load_yolo_set(p)


def test_bad_label_line(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_text("0 0.5 0.5\n")
    with pytest.raises(BadInputError, match=r"a\.txt:1"):
        read_labels(p)


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ({"data.yaml": "names: [a]\n"}, True),
        ({"data.yml": "names: [a]\n"}, True),
        ({"images/x.txt": "", "labels/x.txt": ""}, True),
        ({"ok/a.png": ""}, False),  # an ImageFolder
        ({}, False),
    ],
    ids=["data.yaml", "data.yml", "images+labels", "imagefolder", "empty"],
)
def test_one_rule_says_what_a_yolo_set_is(tmp_path: Path, layout: dict, expected: bool) -> None:
    """val, train and the quantize gate share this rule (train used to refuse data.yml)."""
    from toolkit.data.yolo import data_yaml

    for rel, text in layout.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert is_yolo_set(tmp_path) is expected
    assert is_yolo_set(tmp_path / "set.yml") and is_yolo_set(tmp_path / "set.YAML")
    if "data.yml" in layout:
        assert data_yaml(tmp_path) == tmp_path / "data.yml"
