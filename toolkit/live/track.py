"""A light multi-object tracker: boxes in, a track id per box out (ByteTrack-style IoU).

The rules, per frame (:meth:`Tracker.update`):

1. **Predict.** Each live track moves its last box by its velocity (pixels per frame index,
   smoothed over its matches) times the frames since it was last seen, so a part crossing
   the view fast still overlaps its prediction.
2. **Match high boxes first.** Boxes at or above ``high`` are assigned to the predicted
   tracks by :func:`scipy.optimize.linear_sum_assignment` on ``1 - IoU``; a pair counts only
   at IoU >= ``match_iou``.
   A track seen only once has no velocity yet: it then takes the nearest high box left
   whose centre lies within ``jump`` times its own size (the larger side) of its centre.
3. **Then low boxes.** Tracks still unmatched are assigned to boxes in ``[low, high)``, at
   the stricter IoU >= ``low_iou``: a weak box keeps a track alive (a part half-occluded or
   blurred) but never starts one (ByteTrack, Zhang et al. 2022).
4. **Birth.** Each unmatched high box starts a new track; ids count up from 1 per tracker.
5. **End.** An unmatched track ends when its predicted box has left the view (its centre
   is outside ``view``, the frame or the ROI) or after more than ``max_missed`` processed
   frames without a match. Frames the reader dropped do not count as missed: the prediction
   uses frame indices, the miss count uses updates.

Matching is **class-agnostic** by default: a part's class may change from frame to frame
(``ok`` in one, ``scratch`` in the next, or two defect classes a detector confuses), and it is
still the same part; ``class_aware=True`` matches only boxes of the track's last class.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from toolkit.errors import BadInputError
from toolkit.tasks.boxes import box_iou

# How much a new velocity measurement counts against the running one.
_VELOCITY_GAIN = 0.5


@dataclass(frozen=True)
class TrackerConfig:
    """The tracker's thresholds (see the module docstring for how each is used).

    Attributes:
        high: boxes at or above it match first and may start tracks.
        low: boxes below it are ignored; those in ``[low, high)`` only keep tracks alive.
        match_iou: the least IoU of a high box with a track's predicted box.
        low_iou: the least IoU of a low box with a track's predicted box.
        jump: how far a track seen once may find its next box, in its own sizes.
        max_missed: processed frames a track survives unseen before it ends.
        class_aware: match only boxes of the track's last class.
    """

    high: float = 0.5
    low: float = 0.1
    match_iou: float = 0.2
    low_iou: float = 0.4
    jump: float = 1.5
    max_missed: int = 3
    class_aware: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.high <= 1.0:
            raise BadInputError(
                f"tracker thresholds need 0 <= low <= high <= 1, got low={self.low} "
                f"high={self.high}"
            )
        if not (0.0 < self.match_iou <= 1.0 and 0.0 < self.low_iou <= 1.0):
            raise BadInputError("tracker IoU thresholds must be in (0, 1]")
        if self.max_missed < 0:
            raise BadInputError(f"max_missed must be at least 0, got {self.max_missed}")


@dataclass
class Track:
    """One tracked object. ``box`` is where it was last seen (xyxy, the frame's pixels)."""

    id: int
    box: np.ndarray
    class_id: int
    confidence: float
    first_frame: int
    last_frame: int
    hits: int = 1
    missed: int = 0  # processed frames since the last match
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    ended_by: str | None = None  # "left_view" | "lost" | "end_of_run", once it has ended

    def predict(self, frame_index: int) -> np.ndarray:
        """The box expected at ``frame_index`` (constant velocity)."""
        return self.box + self.velocity * float(frame_index - self.last_frame)

    def _seen(self, box: np.ndarray, conf: float, cls: int, frame_index: int) -> None:
        dt = max(1, frame_index - self.last_frame)
        measured = (box - self.box) / dt
        self.velocity = (
            measured
            if self.hits == 1
            else (1 - _VELOCITY_GAIN) * self.velocity + _VELOCITY_GAIN * measured
        ).astype(np.float32)
        self.box, self.confidence, self.class_id = box.astype(np.float32), conf, cls
        self.last_frame, self.hits, self.missed = frame_index, self.hits + 1, 0


@dataclass(frozen=True)
class TrackUpdate:
    """What one frame did: ``ids[i]`` is box ``i``'s track id (-1: an unmatched low box, not
    tracked); ``ended``: the tracks that ended at this frame; ``born``: the new ids."""

    ids: np.ndarray
    ended: list[Track]
    born: list[int]


class Tracker:
    """Track ids across frames for one source (see the module docstring for the rules).

    Example:
        >>> t = Tracker()
        >>> t.update(np.array([[0, 0, 10, 10]]), np.array([0.9]), np.array([0]), 0).ids
        array([1])
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        # scipy.optimize takes most of a second to import: here, not on the first frame.
        import scipy.optimize  # noqa: F401

        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []  # the live ones
        self._next_id = 1

    def update(
        self,
        xyxy: np.ndarray,
        confidence: np.ndarray,
        class_id: np.ndarray,
        frame_index: int,
        view: tuple[int, int, int, int] | None = None,
    ) -> TrackUpdate:
        """Associate this frame's boxes with the tracks.

        Args:
            xyxy, confidence, class_id: the frame's boxes (parallel arrays).
            frame_index: the frame's index (increasing; gaps are frames not processed).
            view: ``x, y, w, h`` of the region boxes are looked for in (the frame, or the
                ROI); a track predicted outside it ends at once. None: ends only by misses.
        """
        cfg = self.config
        xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
        confidence = np.asarray(confidence, np.float32).reshape(-1)
        class_id = np.asarray(class_id, np.int64).reshape(-1)
        ids = np.full(len(xyxy), -1, np.int64)
        predicted = [t.predict(frame_index) for t in self.tracks]
        high = np.flatnonzero(confidence >= cfg.high)
        low = np.flatnonzero((confidence >= cfg.low) & (confidence < cfg.high))
        free = list(range(len(self.tracks)))
        for stage, dets in enumerate((high, high, low)):
            if stage == 1:  # tracks seen once, by distance, to the high boxes left
                pairs = self._jump(free, dets[ids[dets] < 0], xyxy, class_id)
            else:
                min_iou = cfg.match_iou if stage == 0 else cfg.low_iou
                pairs = self._assign(free, dets, predicted, xyxy, class_id, min_iou)
            for ti, di in pairs:
                self.tracks[ti]._seen(
                    xyxy[di], float(confidence[di]), int(class_id[di]), frame_index
                )
                ids[di] = self.tracks[ti].id
            matched = {ti for ti, _ in pairs}
            free = [ti for ti in free if ti not in matched]
        ended = self._age(free, predicted, view)
        born = []
        for di in high:
            if ids[di] < 0:
                track = Track(
                    self._next_id, xyxy[di].copy(), int(class_id[di]),
                    float(confidence[di]), frame_index, frame_index,
                )  # fmt: skip
                self._next_id += 1
                self.tracks.append(track)
                ids[di] = track.id
                born.append(track.id)
        return TrackUpdate(ids, ended, born)

    def _assign(
        self,
        free: list[int],
        dets: np.ndarray,
        predicted: list[np.ndarray],
        xyxy: np.ndarray,
        class_id: np.ndarray,
        min_iou: float,
    ) -> list[tuple[int, int]]:
        """Optimal (track index, box index) pairs with IoU >= ``min_iou``."""
        if not free or not len(dets):
            return []
        from scipy.optimize import linear_sum_assignment

        iou = box_iou(np.stack([predicted[t] for t in free]), xyxy[dets])
        if self.config.class_aware:
            same = np.array([self.tracks[t].class_id for t in free])[:, None] == class_id[dets]
            iou = np.where(same, iou, 0.0)
        rows, cols = linear_sum_assignment(1.0 - iou)
        return [
            (free[r], int(dets[c])) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= min_iou
        ]

    def _jump(
        self, free: list[int], dets: np.ndarray, xyxy: np.ndarray, class_id: np.ndarray
    ) -> list[tuple[int, int]]:
        """Tracks seen once -> the nearest box within ``jump`` of their sizes (optimal)."""
        young = [t for t in free if self.tracks[t].hits == 1]
        if not young or not len(dets):
            return []
        from scipy.optimize import linear_sum_assignment

        boxes = np.stack([self.tracks[t].box for t in young])
        reach = self.config.jump * (boxes[:, 2:] - boxes[:, :2]).max(1)
        dist = np.linalg.norm(_centres(boxes)[:, None] - _centres(xyxy[dets])[None], axis=-1)
        ok = dist <= reach[:, None]
        if self.config.class_aware:
            ok &= np.array([self.tracks[t].class_id for t in young])[:, None] == class_id[dets]
        rows, cols = linear_sum_assignment(np.where(ok, dist, 1e9))
        return [(young[r], int(dets[c])) for r, c in zip(rows, cols, strict=True) if ok[r, c]]

    def _age(
        self, free: list[int], predicted: list[np.ndarray], view: tuple[int, int, int, int] | None
    ) -> list[Track]:
        """Count a miss for each unmatched track; end those that left the view or are lost."""
        ended = []
        for ti in free:
            track = self.tracks[ti]
            track.missed += 1
            if view is not None and not _centre_inside(predicted[ti], view):
                track.ended_by = "left_view"
            elif track.missed > self.config.max_missed:
                track.ended_by = "lost"
            else:
                continue
            ended.append(track)
        gone = {id(t) for t in ended}
        self.tracks = [t for t in self.tracks if id(t) not in gone]
        return ended

    def flush(self) -> list[Track]:
        """End every live track (the run is over); they come back with ``ended_by`` set."""
        ended, self.tracks = self.tracks, []
        for track in ended:
            track.ended_by = "end_of_run"
        return ended


def _centres(xyxy: np.ndarray) -> np.ndarray:
    return (xyxy[:, :2] + xyxy[:, 2:]) / 2


def _centre_inside(box: np.ndarray, view: tuple[int, int, int, int]) -> bool:
    x, y, w, h = view
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return bool(x <= cx < x + w and y <= cy < y + h)
