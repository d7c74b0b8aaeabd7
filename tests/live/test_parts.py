"""Per-part verdicts: one event per part, debounce, K-frame emission, counts, classifier runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toolkit.errors import BadInputError
from toolkit.live.parts import PartVerdicts
from toolkit.live.snapshots import snapshot_stem
from toolkit.live.verdict import Judge
from toolkit.tasks.classify import Classification
from toolkit.tasks.detect import Detections

LABELS = ("ok", "scratch", "spot")  # a part-and-defect detector: "ok" boxes are parts
HW = (240, 320)


def _dets(boxes: list[tuple[list[float], float, int]]) -> Detections:
    if not boxes:
        return Detections.empty()
    xyxy, conf, cls = zip(*boxes, strict=True)
    return Detections(np.array(xyxy), np.array(conf), np.array(cls), tuple(LABELS[c] for c in cls))


def _part(x: float, y: float = 80, size: float = 60) -> list[float]:
    return [x, y, x + size, y + size]


def _defect(x: float, y: float = 80) -> list[float]:
    return [x + 20, y + 20, x + 35, y + 30]  # inside the part box at x, y


def _run(parts: PartVerdicts, frames: list[list], *, flush: bool = True) -> list:
    """Feed frames (each a list of (box, conf, class)); all part events, in order."""
    judge = parts.judge
    out = []
    for i, boxes in enumerate(frames):
        result, verdict = judge(_dets(boxes))
        image = np.full((2, 2, 3), i, np.uint8)  # the frame index, to tell snapshots apart
        out += parts.update(i, f"t{i:03d}", result, verdict, image, frame_hw=HW)
    return out + (parts.flush() if flush else [])


def _verdicts(**kwargs) -> PartVerdicts:
    judge = Judge(None, LABELS, conf=0.25)
    return PartVerdicts(judge, source="top", labels=LABELS, task="detect", **kwargs)


def _crossing(defect_frames=(), n=10, y=80, step=32, conf=0.9, defect_conf=0.8):
    """A part crossing the 320 px view in ``n`` frames; a scratch on it in ``defect_frames``."""
    frames = []
    for f in range(n):
        x = f * step - 20
        boxes = [(_part(x, y), conf, 0)]
        if f in defect_frames:
            boxes.append((_defect(x, y), defect_conf, 1))
        frames.append(boxes)
    return frames


def test_a_defective_part_crossing_the_view_gives_exactly_one_ng_event():
    parts = _verdicts()
    events = _run(parts, [*_crossing(defect_frames={3, 4, 5, 6}), [], []], flush=False)
    assert len(events) == 1
    event, snapshot = events[0]
    assert event["kind"] == "part" and event["verdict"] == "NG" and event["source"] == "top"
    assert event["defects"] == ["scratch"] and event["ended_by"] == "left_view"
    assert (event["first_frame"], event["last_frame"], event["frames"]) == (0, 9, 10)
    assert event["ng_frames"] == 4 and event["ts"] == "t010"
    scratch = next(c for c in event["classes"] if c["label"] == "scratch")
    assert scratch == {"class_id": 1, "label": "scratch", "frames": 4, "max_confidence": 0.8}
    assert snapshot is not None and event["best_frame"] == int(snapshot[0, 0, 0]) == 3
    assert parts.counts == {"scratch": 1} and parts.totals == {"parts": 1, "ok": 0, "ng": 1}
    assert parts.flush() == []
    json.dumps(event)
    assert snapshot_stem(event).endswith("_p000001")


def test_the_snapshot_is_the_frame_of_the_strongest_defect():
    frames = _crossing(defect_frames={2, 5, 7})
    frames[5][1] = (frames[5][1][0], 0.95, 1)
    [(event, snapshot)] = _run(_verdicts(), frames)
    assert event["best_frame"] == 5 and snapshot[0, 0, 0] == 5


def test_an_ok_part_gives_one_ok_event_with_its_best_frame():
    frames = _crossing()
    frames[6][0] = (frames[6][0][0], 0.97, 0)
    [(event, snapshot)] = _run(_verdicts(), frames)
    assert event["verdict"] == "OK" and event["defects"] == [] and event["frames"] == 10
    assert event["classes"] == [
        {"class_id": 0, "label": "ok", "frames": 10, "max_confidence": 0.97}
    ]
    assert snapshot[0, 0, 0] == 6


def test_two_parts_at_once_give_two_events():
    a = _crossing(defect_frames={4, 5}, y=10)
    b = _crossing(y=150, step=30)
    parts = _verdicts()
    events = _run(parts, [x + y for x, y in zip(a, b, strict=True)])
    assert sorted((e["part"], e["verdict"]) for e, _ in events) == [(1, "NG"), (2, "OK")]
    assert parts.totals == {"parts": 2, "ok": 1, "ng": 1}


def test_one_noisy_frame_does_not_reject_a_part_under_min_frames_2():
    [(event, _)] = _run(_verdicts(min_frames=2), _crossing(defect_frames={4}))
    assert event["verdict"] == "OK" and event["ng_frames"] == 1
    assert [c["label"] for c in event["classes"]] == ["ok", "scratch"]  # seen, not confirmed
    [(event, _)] = _run(_verdicts(min_frames=2), _crossing(defect_frames={4, 7}))
    assert event["verdict"] == "NG"
    [(event, _)] = _run(_verdicts(min_frames=1), _crossing(defect_frames={4}))
    assert event["verdict"] == "NG"


def test_a_part_lost_for_a_frame_keeps_its_id():
    frames = _crossing(defect_frames={2})
    frames[5] = []  # the detector missed it
    parts = _verdicts(max_missed=2)
    events = _run(parts, frames)
    assert [(e["part"], e["frames"]) for e, _ in events] == [(1, 9)]


def test_a_part_is_judged_after_k_frames_once():
    parts = _verdicts(max_frames=4)
    per_frame = []
    for i, boxes in enumerate([*_crossing(defect_frames={1}), [], []]):
        result, verdict = parts.judge(_dets(boxes))
        per_frame.append(parts.update(i, f"t{i}", result, verdict, None, frame_hw=HW))
    assert [i for i, ev in enumerate(per_frame) if ev] == [3]
    event, snapshot = per_frame[3][0]
    assert event["ended_by"] == "frames" and event["frames"] == 4 and event["verdict"] == "NG"
    assert snapshot is None  # no image was given
    assert parts.flush() == [] and parts.totals["parts"] == 1


def test_a_detector_of_defects_only_tracks_each_defect():
    labels = ("scratch", "spot", "crack")
    judge = Judge(None, labels, conf=0.25)
    parts = PartVerdicts(judge, source="s", labels=labels, task="detect")
    for i in range(10):
        box = Detections(np.array([_defect(i * 12)]), np.array([0.7]), np.array([2]), ("crack",))
        assert parts.update(i, "t", *judge(box), None) == []
        assert parts.frame_info() == {"parts": [1]}
    [(event, _)] = parts.flush()
    assert event["verdict"] == "NG" and event["defects"] == ["crack"]
    assert event["ended_by"] == "end_of_run" and parts.counts == {"crack": 1}


def test_frame_info_gives_the_part_of_every_box():
    parts = _verdicts()
    frames = _crossing(defect_frames={1})
    frames[1].append(([300, 200, 310, 210], 0.1, 1))  # weak, outside any part: not tracked
    for i, boxes in enumerate(frames[:2]):
        parts.update(i, "t", *parts.judge(_dets(boxes)), None, frame_hw=HW)
    assert parts.frame_info() == {"parts": [1, 1, None]}


def test_a_part_whose_class_flips_is_one_part():
    frames = _crossing()
    for f in (3, 4):
        frames[f][0] = (frames[f][0][0], 0.6, 1)  # the part box itself called "scratch"
    [(event, _)] = _run(_verdicts(), frames)
    assert event["verdict"] == "NG" and event["defects"] == ["scratch"]


def _cls(labels: tuple[str, ...], top: int, conf: float = 0.9) -> Classification:
    other = (top + 1) % len(labels)
    return Classification(
        np.array([top, other]), np.array([conf, 1 - conf]), (labels[top], labels[other])
    )


@pytest.mark.parametrize(("gap", "expected"), [(0, ["NG", "OK", "OK"]), (1, ["NG", "OK"])])
def test_a_classifier_part_is_a_run_of_frames_that_are_not_empty(gap, expected):
    labels = ("empty", "ok", "scratch")
    judge = Judge(frozenset({2}), labels, conf=0.5)
    parts = PartVerdicts(judge, source="c", labels=labels, task="classify", max_missed=gap)
    tops = [0, 1, 2, 2, 1, 0, 0, 1, 1, 0, 1, 1]
    events = []
    for i, top in enumerate(tops):
        result, verdict = judge(_cls(labels, top))
        events += parts.update(i, f"t{i}", result, verdict, np.zeros((1, 1, 3), np.uint8))
    events += parts.flush()
    assert [e["verdict"] for e, _ in events] == expected
    first = events[0][0]
    assert (first["first_frame"], first["last_frame"], first["ng_frames"]) == (1, 4, 2)
    assert first["defects"] == ["scratch"] and first["ended_by"] == "empty"


def test_a_classifier_without_an_empty_class_is_refused():
    labels = ("ok", "scratch")
    with pytest.raises(BadInputError, match=r"empty class.*ok, scratch.*--empty-class"):
        PartVerdicts(Judge(None, labels), source="c", labels=labels, task="classify")
    # Named explicitly, it works.
    PartVerdicts(
        Judge(None, labels), source="c", labels=labels, task="classify", empty=frozenset({0})
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "segment"}, "detect or classify"),
        ({"min_frames": 0}, "--min-frames must be at least 1"),
        ({"min_frames": 3, "max_frames": 2}, "could never reach --min-frames"),
    ],
)
def test_bad_settings(kwargs, message):
    args = {"source": "s", "labels": LABELS, "task": "detect", **kwargs}
    with pytest.raises(BadInputError, match=message):
        PartVerdicts(Judge(None, LABELS), **args)
