"""Our mAP50 and mAP50-95 against pycocotools' COCOeval on the same seeded detection sets.

Both implement the same algorithm: per image and class, detections sorted by score take the
unmatched ground-truth box they overlap most if the IoU reaches the threshold (ten thresholds
0.50 ... 0.95); per class the detections of all images are ranked by score, the precision
envelope is read at COCO's 101 recall points (0.00, 0.01, ... 1.00) and averaged; classes
without ground truth are left out of the mean. So the results must agree to rounding, not
only approximately: TOL allows float32 IoUs (ours) against float64 (COCO's), which differ
only for a pair within ~1e-7 of a threshold, and the sets below are drawn so that none is.
Anything beyond that is a real difference in the metric, not noise.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from toolkit.evaluate.metrics import DetectionMetrics
from toolkit.tasks.boxes import box_iou

NAMES = ("scratch", "spot", "crack", "ghost")  # "ghost" is only ever a false positive
TOL = 1e-6
W, H = 640, 480


@dataclass
class Image:
    gt_xyxy: np.ndarray
    gt_cls: np.ndarray
    xyxy: list[list[float]] = field(default_factory=list)
    conf: list[float] = field(default_factory=list)
    cls: list[int] = field(default_factory=list)


def _box(rng: np.random.Generator) -> list[float]:
    w, h = rng.uniform(12, 200), rng.uniform(12, 160)
    x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
    return [x, y, x + w, y + h]


def _jitter(rng: np.random.Generator, box: np.ndarray, scale: float) -> list[float]:
    """The box with each side moved by noise proportional to its size (IoU spread 0.3-1)."""
    w, h = box[2] - box[0], box[3] - box[1]
    noise = rng.normal(0, scale, 4) * np.array([w, h, w, h])
    return (box + noise).clip(0, [W, H, W, H]).tolist()


def _image(rng: np.random.Generator) -> Image:
    """Ground truth (0-6 boxes of the first three classes) and its predictions."""
    n = int(rng.integers(0, 7))
    # "crack" is rare: a class whose AP rests on a few instances.
    gt_cls = rng.choice(3, size=n, p=[0.5, 0.4, 0.1]).astype(np.int64)
    img = Image(np.array([_box(rng) for _ in range(n)], np.float64).reshape(-1, 4), gt_cls)
    for box, c in zip(img.gt_xyxy, gt_cls, strict=True):
        if rng.random() < 0.15:
            continue  # missed
        scale = rng.uniform(0.02, 0.2)
        wrong = rng.random() < 0.08
        img.xyxy.append(_jitter(rng, box, scale))
        img.cls.append(int(rng.integers(0, 3)) if wrong else int(c))
        img.conf.append(float(np.clip(1.0 - 2.5 * scale + rng.normal(0, 0.15), 0.01, 0.99)))
        if rng.random() < 0.1:  # a duplicate, ranked below its original
            img.xyxy.append(_jitter(rng, box, 0.05))
            img.cls.append(int(c))
            img.conf.append(img.conf[-1] * rng.uniform(0.3, 0.9))
    for _ in range(int(rng.poisson(1.5))):  # false positives anywhere, any class
        img.xyxy.append(_box(rng))
        img.cls.append(int(rng.integers(0, len(NAMES))))
        img.conf.append(float(rng.uniform(0.01, 0.7)))
    return img


def _dataset(seed: int, images: int = 60) -> list[Image]:
    rng = np.random.default_rng(seed)
    return [_image(rng) for _ in range(images)]


def _ours(data: list[Image]) -> dict:
    m = DetectionMetrics(NAMES)
    for img in data:
        m.update(
            np.asarray(img.xyxy, np.float32).reshape(-1, 4),
            np.asarray(img.conf, np.float32),
            np.asarray(img.cls, np.int64),
            img.gt_xyxy.astype(np.float32),
            img.gt_cls,
        )
    return m.compute()


def _xywh(b) -> list[float]:
    return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]


def _coco(data: list[Image]) -> COCOeval:
    """COCOeval (bbox) over in-memory dicts; ids start at 1 (COCO treats 0 as "no match")."""
    anns = []
    for i, img in enumerate(data):
        for b, c in zip(img.gt_xyxy, img.gt_cls, strict=True):
            x, y, w, h = _xywh(b)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": int(c) + 1,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    gt = COCO()
    gt.dataset = {
        "images": [{"id": i + 1, "width": W, "height": H} for i in range(len(data))],
        "annotations": anns,
        "categories": [{"id": k + 1, "name": n} for k, n in enumerate(NAMES)],
    }
    results = [
        {"image_id": i + 1, "category_id": c + 1, "bbox": _xywh(b), "score": s}
        for i, img in enumerate(data)
        for b, s, c in zip(img.xyxy, img.conf, img.cls, strict=True)
    ]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _near_threshold(data: list[Image]) -> float:
    """The smallest distance of any same-class IoU from one of the ten thresholds."""
    gaps = [1.0]
    for img in data:
        if img.xyxy and len(img.gt_cls):
            iou = box_iou(np.asarray(img.xyxy), img.gt_xyxy).astype(np.float64)
            same = np.asarray(img.cls)[:, None] == img.gt_cls[None, :]
            thr = np.linspace(0.5, 0.95, 10)
            gaps.append(float(np.abs(iou[same][:, None] - thr[None, :]).min(initial=1.0)))
    return min(gaps)


def _drop_class(data: list[Image], k: int) -> list[Image]:
    """The set with every prediction of class ``k`` removed (its ground truth kept)."""
    out = []
    for img in data:
        keep = [i for i, c in enumerate(img.cls) if c != k]
        out.append(
            Image(
                img.gt_xyxy,
                img.gt_cls,
                [img.xyxy[i] for i in keep],
                [img.conf[i] for i in keep],
                [img.cls[i] for i in keep],
            )
        )
    return out


@pytest.fixture(
    scope="module",
    params=[(0, None), (1, None), (2, None), (3, 2)],
    ids=["seed0", "seed1", "seed2", "crack-never-predicted"],
)
def case(request: pytest.FixtureRequest) -> tuple[list[Image], dict, COCOeval]:
    seed, dropped = request.param
    data = _dataset(seed)
    if dropped is not None:
        data = _drop_class(data, dropped)
    assert _near_threshold(data) > 1e-5  # no IoU where float32 and float64 could disagree
    return data, _ours(data), _coco(data)


def test_the_set_is_not_trivial(case) -> None:
    data, ours, _ = case
    n_pred = sum(len(img.conf) for img in data)
    n_gt = sum(len(img.gt_cls) for img in data)
    assert n_gt > 100 and n_pred > n_gt  # misses, duplicates and false positives included
    # COCOeval keeps the 100 best detections per image and class: all of ours count.
    assert max(len(img.conf) for img in data) < 100
    assert 0.3 < ours["map50"] < 0.95 and 0.1 < ours["map50_95"] < ours["map50"]


def test_map_matches_cocoeval(case) -> None:
    _, ours, ev = case
    # COCOeval.stats: [0] AP@[.50:.95], [1] AP@.50 (area "all", 100 detections per image).
    assert ours["map50_95"] == pytest.approx(ev.stats[0], abs=TOL)
    assert ours["map50"] == pytest.approx(ev.stats[1], abs=TOL)


def test_per_class_ap_matches_cocoeval(case) -> None:
    _, ours, ev = case
    # precision[T, R, K, A, M]: thresholds, 101 recall points, classes, area "all", 100 dets.
    prec = ev.eval["precision"][:, :, :, 0, -1]
    for k, row in enumerate(ours["per_class"]):
        if row["instances"] == 0:  # COCO marks a class without ground truth with -1
            assert row["ap50"] is None and (prec[:, :, k] == -1).all()
            continue
        assert row["ap50"] == pytest.approx(prec[0, :, k].mean(), abs=TOL), row["label"]
        assert row["ap50_95"] == pytest.approx(prec[:, :, k].mean(), abs=TOL), row["label"]
