"""The tracker: ids kept across frames, low boxes, misses, leaving the view."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import BadInputError
from toolkit.live.track import Tracker, TrackerConfig

VIEW = (0, 0, 320, 240)


def _box(x: float, y: float = 100, w: float = 40, h: float = 40) -> list[float]:
    return [x, y, x + w, y + h]


def _step(t: Tracker, frame: int, boxes: list, conf: list, cls: list | None = None, view=VIEW):
    cls = cls if cls is not None else [0] * len(boxes)
    return t.update(np.array(boxes).reshape(-1, 4), np.array(conf), np.array(cls), frame, view)


def test_a_moving_box_keeps_its_id_and_ends_when_it_leaves_the_view():
    t = Tracker()
    ids = [int(_step(t, f, [_box(30 * f)], [0.9]).ids[0]) for f in range(10)]
    assert ids == [1] * 10
    up = _step(t, 10, [], [])  # predicted at x=300..340: the centre is out of the view
    assert [(tr.id, tr.ended_by, tr.hits) for tr in up.ended] == [(1, "left_view", 10)]
    assert not t.tracks


def test_fast_motion_is_followed_by_the_velocity_prediction():
    # 35 px a frame with 40 px boxes: consecutive boxes overlap by IoU ~0.07, below match_iou;
    # the prediction from the velocity overlaps fully.
    t = Tracker()
    ids = [int(_step(t, f, [_box(35 * f)], [0.9]).ids[0]) for f in range(8)]
    assert ids == [1] * 8


def test_two_boxes_get_two_ids_and_keep_them():
    t = Tracker()
    for f in range(6):
        up = _step(t, f, [_box(200 - 20 * f, 20), _box(20 * f, 150)], [0.8, 0.7])
        assert up.ids.tolist() == [1, 2]


def test_a_missed_frame_within_max_missed_keeps_the_id():
    t = Tracker(TrackerConfig(max_missed=2))
    for f in range(4):
        _step(t, f, [_box(10 * f)], [0.9])
    assert not _step(t, 4, [], []).ended  # lost for a frame: kept
    assert _step(t, 5, [_box(50)], [0.9]).ids.tolist() == [1]


def test_a_track_ends_after_max_missed():
    t = Tracker(TrackerConfig(max_missed=1))
    _step(t, 0, [_box(100)], [0.9])
    assert not _step(t, 1, [], []).ended
    assert [tr.ended_by for tr in _step(t, 2, [], []).ended] == ["lost"]
    assert _step(t, 3, [_box(100)], [0.9]).ids.tolist() == [2]  # a new part, a new id


def test_low_boxes_keep_tracks_alive_but_start_none():
    t = Tracker(TrackerConfig(high=0.5, low=0.1, max_missed=0))
    _step(t, 0, [_box(100)], [0.9])
    up = _step(t, 1, [_box(102), _box(250, 10)], [0.3, 0.3])  # the first matches, low
    assert up.ids.tolist() == [1, -1] and not up.born and not up.ended
    assert _step(t, 2, [_box(104)], [0.05]).ended[0].id == 1  # below low: ignored


def test_matching_is_class_agnostic_unless_asked():
    t = Tracker()
    _step(t, 0, [_box(100)], [0.9], [0])
    assert _step(t, 1, [_box(105)], [0.9], [2]).ids.tolist() == [1]
    aware = Tracker(TrackerConfig(class_aware=True))
    _step(aware, 0, [_box(100)], [0.9], [0])
    assert _step(aware, 1, [_box(105)], [0.9], [2]).ids.tolist() == [2]


def test_frames_the_reader_dropped_are_predicted_over():
    t = Tracker(TrackerConfig(max_missed=0))
    for f in range(3):
        _step(t, f, [_box(20 * f)], [0.9])
    # Frames 3 and 4 were never processed (dropped): the box moved on 3 steps.
    assert _step(t, 5, [_box(100)], [0.9]).ids.tolist() == [1]


def test_flush_ends_every_track():
    t = Tracker()
    _step(t, 0, [_box(10), _box(200)], [0.9, 0.9])
    assert sorted((tr.id, tr.ended_by) for tr in t.flush()) == [
        (1, "end_of_run"),
        (2, "end_of_run"),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"low": 0.6, "high": 0.5}, "low <= high"),
        ({"match_iou": 0.0}, "IoU thresholds"),
        ({"max_missed": -1}, "max_missed"),
    ],
)
def test_bad_config(kwargs, message):
    with pytest.raises(BadInputError, match=message):
        TrackerConfig(**kwargs)
