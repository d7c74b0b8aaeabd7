"""One verdict per part (``--verdict per-part``): parts followed across frames, one event each.

**What a part is.**

- *Detector*: each box is a part or a defect. A box of a reject class whose centre lies in
  a box of a non-reject class of the same frame (a ``part`` or ``ok`` box) is evidence *on*
  that part (the tightest such box) and is not tracked by itself; every other box is tracked
  (:mod:`toolkit.live.track`, class-agnostic: the same part may show ``ok`` in one frame and
  ``scratch`` in the next). A detector that finds only defects therefore gives one part per
  defect track, and never an OK part: nothing seen is no part. Boxes outside the ROI were
  already left out by the :class:`~toolkit.live.verdict.Judge`, so the view is the ROI.
- *Classifier*: a part is a run of consecutive frames whose top class is not an *empty*
  class (``empty``: ids, default the labels named ``empty``, ``background``, ``none``,
  ``no_part``, ``nothing`` or ``belt``); the classifier sees the ROI when one is set, so the
  run is the part crossing the ROI. Up to ``max_missed`` empty frames inside a run are
  tolerated (default 0: the first empty frame ends the part).

**When a part is judged.** When it leaves the view (its track ends: ``ended_by``
``left_view`` or ``lost`` after ``max_missed`` unseen frames, ``empty`` for a classifier),
at the end of the run (:meth:`PartVerdicts.flush`, ``end_of_run``), or after ``max_frames``
frames of it (``frames``: judged once; the part is still followed so it is not counted
again, and its later frames are ignored).

**The verdict.** A frame of the part is NG evidence when it shows a reject class at or above
the judge's ``conf`` (a detector: the part's own box or a defect on it; a classifier: the top
class). The part is NG when it has at least ``min_frames`` such frames (the debounce: one
noisy frame does not reject a part), whatever the defect classes were; else OK.

**The snapshot.** The frame where the NG evidence was strongest (its highest reject-class
confidence); for an OK part, the frame it was seen best (the highest box or top-1 confidence).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.live.track import Tracker, TrackerConfig
from toolkit.live.verdict import Judge, Result
from toolkit.tasks.classify import Classification
from toolkit.tasks.detect import Detections

EMPTY_LABELS = frozenset({"empty", "background", "none", "no_part", "nothing", "belt"})

# A frame's image, or a function that draws it (called only when the frame becomes a part's
# best snapshot, after the frame's part ids are known: frame_info() is ready inside it).
ImageArg = np.ndarray | Callable[[], np.ndarray | None] | None
PartEvent = tuple[dict[str, Any], np.ndarray | None]


@dataclass
class _Part:
    """What has been seen of one part so far."""

    id: int
    first_frame: int
    first_ts: str
    last_frame: int = -1
    last_ts: str = ""
    frames: int = 0
    ng_frames: int = 0
    classes: dict[int, list[float]] = field(default_factory=dict)  # id -> [frames, max conf]
    best: tuple[bool, float] = (False, -1.0)  # (NG evidence, score) of the best frame
    best_frame: int = -1
    image: np.ndarray | None = None
    emitted: bool = False

    def see(
        self, frame: int, ts: str, evidence: dict[int, float], score: float, ng: float | None,
        image: ImageArg,
    ) -> None:  # fmt: skip
        """One frame of the part: ``evidence`` class -> confidence (those at or above conf),
        ``score`` how well the part was seen, ``ng`` its strongest reject confidence."""
        self.last_frame, self.last_ts, self.frames = frame, ts, self.frames + 1
        self.ng_frames += ng is not None
        for cls, conf in evidence.items():
            entry = self.classes.setdefault(cls, [0, 0.0])
            entry[0] += 1
            entry[1] = max(entry[1], conf)
        key = (True, ng) if ng is not None else (False, score)
        if key > self.best:
            self.best, self.best_frame = key, frame
            shown = image() if callable(image) else image
            self.image = None if shown is None else np.array(shown, copy=True)


class PartVerdicts:
    """Per-part verdicts for one source (the rules: the module docstring).

    Args:
        judge: the source's verdict rule (reject classes, conf, ROI).
        min_frames: NG frames a part needs to be NG (``--min-frames``).
        max_frames: judge a part after this many frames of it, if it has not left by then.
        source: the source's name (in every event).
        labels: the model's class names.
        task: ``"detect"`` or ``"classify"``.
        max_missed: unseen frames a part survives (detector default 3, classifier 0).
        tracker: the tracker's thresholds (default: boxes at or above the judge's conf start
            tracks, weaker ones down to 0.1 keep them).
        empty: a classifier's empty classes (ids; default: by name, see the module docstring).

    Example:
        >>> parts = PartVerdicts(judge, source="top", labels=labels, task="detect")
        >>> for event, snapshot in parts.update(i, ts, result, verdict, frame): ...
        >>> leftover = parts.flush()
    """

    def __init__(
        self,
        judge: Judge,
        *,
        min_frames: int = 1,
        max_frames: int | None = None,
        source: str,
        labels: tuple[str, ...],
        task: str,
        max_missed: int | None = None,
        tracker: TrackerConfig | None = None,
        empty: frozenset[int] | None = None,
    ) -> None:
        if task not in ("detect", "classify"):
            raise BadInputError(f"per-part verdicts need a detect or classify task, got '{task}'")
        if min_frames < 1:
            raise BadInputError(f"--min-frames must be at least 1, got {min_frames}")
        if max_frames is not None and max_frames < min_frames:
            raise BadInputError(
                f"parts judged after {max_frames} frames could never reach --min-frames "
                f"{min_frames}"
            )
        self.judge, self.min_frames, self.max_frames = judge, min_frames, max_frames
        self.source, self.labels, self.task = source, tuple(labels), task
        self.totals = {"parts": 0, "ok": 0, "ng": 0}
        self._counts: dict[str, int] = {}
        self._parts: dict[int, _Part] = {}
        self._info: dict[str, Any] = {}
        self._last_ts = ""
        if task == "detect":
            cfg = tracker or TrackerConfig(high=judge.conf, low=min(0.1, judge.conf))
            if max_missed is not None:
                cfg = replace(cfg, max_missed=max_missed)
            self._tracker: Tracker | None = Tracker(cfg)
        else:
            self._tracker = None
            self._empty = empty if empty is not None else _empty_classes(self.labels)
            self._gap_limit = 0 if max_missed is None else max_missed
            self._open: _Part | None = None
            self._gap = 0
            self._next_id = 1

    @property
    def counts(self) -> dict[str, int]:
        """Parts judged NG, per defect class they showed (a part with two counts in both)."""
        return dict(sorted(self._counts.items()))

    def frame_info(self) -> dict[str, Any]:
        """The last frame's part ids: ``{"parts": [id or None per box]}`` (a detector, in the
        result's box order; a defect on a part carries the part's id) or ``{"part": id or
        None}`` (a classifier)."""
        return dict(self._info)

    def update(
        self,
        frame_index: int,
        ts: str,
        result: Result,
        verdict: str,
        image: ImageArg,
        *,
        frame_hw: tuple[int, int] | None = None,
    ) -> list[PartEvent]:
        """One frame: ``result`` as the judge kept it, its frame ``verdict``, and its image (or
        a function drawing it). Returns the parts judged at this frame with their snapshots.

        ``frame_hw`` (the frame's height and width) lets a track end as soon as it is
        predicted out of the frame; with an ROI the ROI is the view and it is not needed.
        """
        self._last_ts = ts
        if self._tracker is None:
            if not isinstance(result, Classification):
                raise BadInputError("a classify task's per-part verdicts need Classification")
            return self._classify(frame_index, ts, result, verdict, image)
        if not isinstance(result, Detections):
            raise BadInputError("a detect task's per-part verdicts need Detections")
        return self._detect(frame_index, ts, result, image, frame_hw)

    def flush(self) -> list[PartEvent]:
        """Judge the parts still open at the end of the run (``ended_by: end_of_run``)."""
        out = []
        if self._tracker is not None:
            for track in self._tracker.flush():
                out += self._end(track.id, "end_of_run", self._last_ts)
        elif self._open is not None:
            out += self._end(self._open.id, "end_of_run", self._last_ts)
            self._open = None
        return out

    def _detect(
        self, frame: int, ts: str, dets: Detections, image: ImageArg,
        frame_hw: tuple[int, int] | None,
    ) -> list[PartEvent]:  # fmt: skip
        assert self._tracker is not None
        tracked, owner = self._attach(dets)
        view = self.judge.roi or (None if frame_hw is None else (0, 0, frame_hw[1], frame_hw[0]))
        up = self._tracker.update(
            dets.xyxy[tracked], dets.confidence[tracked], dets.class_id[tracked], frame, view
        )
        box_part = {int(i): int(t) for i, t in zip(tracked, up.ids, strict=True) if t >= 0}
        self._info = {"parts": [box_part.get(int(owner[i])) for i in range(len(dets))]}
        out: list[PartEvent] = []
        for track in up.ended:
            out += self._end(track.id, track.ended_by or "lost", ts)
        for i, pid in box_part.items():
            part = self._parts.setdefault(pid, _Part(pid, frame, ts))
            if part.emitted:
                continue
            members = np.flatnonzero(owner == i)
            evidence, ng = self._evidence(dets, members)
            part.see(frame, ts, evidence, float(dets.confidence[i]), ng, image)
            out += self._maybe_by_frames(part, ts)
        return out

    def _attach(self, dets: Detections) -> tuple[np.ndarray, np.ndarray]:
        """The boxes to track, and each box's owner (a defect on a part: the part's box).

        Only part boxes strong enough to start a track hold defects: they always get an id,
        so a defect is never lost with a weak part box that no track takes.
        """
        assert self._tracker is not None
        n = len(dets)
        owner = np.arange(n)
        reject = np.array([self.judge.is_reject(int(c)) for c in dets.class_id], bool)
        holders = np.flatnonzero(~reject & (dets.confidence >= self._tracker.config.high))
        if len(holders):
            cx = (dets.xyxy[:, 0] + dets.xyxy[:, 2]) / 2
            cy = (dets.xyxy[:, 1] + dets.xyxy[:, 3]) / 2
            hb = dets.xyxy[holders]
            area = (hb[:, 2] - hb[:, 0]) * (hb[:, 3] - hb[:, 1])
            for i in np.flatnonzero(reject):
                inside = (hb[:, 0] <= cx[i]) & (cx[i] <= hb[:, 2])
                inside &= (hb[:, 1] <= cy[i]) & (cy[i] <= hb[:, 3])
                if inside.any():
                    owner[i] = holders[np.flatnonzero(inside)[np.argmin(area[inside])]]
        return np.flatnonzero(owner == np.arange(n)), owner

    def _evidence(
        self, dets: Detections, members: np.ndarray
    ) -> tuple[dict[int, float], float | None]:
        """Class -> best confidence at or above conf, and the best reject confidence."""
        evidence: dict[int, float] = {}
        for j in members:
            cls, conf = int(dets.class_id[j]), float(dets.confidence[j])
            if conf >= self.judge.conf:
                evidence[cls] = max(evidence.get(cls, 0.0), conf)
        ng = [c for cls, c in evidence.items() if self.judge.is_reject(cls)]
        return evidence, max(ng) if ng else None

    def _classify(
        self, frame: int, ts: str, cls: Classification, verdict: str, image: ImageArg
    ) -> list[PartEvent]:
        top = int(cls.class_id[0]) if len(cls) else None
        out: list[PartEvent] = []
        if top is None or top in self._empty:
            if self._open is not None:
                self._gap += 1
                if self._gap > self._gap_limit:
                    out += self._end(self._open.id, "empty", ts)
                    self._open = None
            self._info = {"part": None if self._open is None else self._open.id}
            return out
        if self._open is None:
            self._open = self._parts.setdefault(self._next_id, _Part(self._next_id, frame, ts))
            self._next_id += 1
        part, self._gap = self._open, 0
        self._info = {"part": part.id}
        if not part.emitted:
            conf = float(cls.confidence[0])
            evidence = {top: conf} if conf >= self.judge.conf else {}
            part.see(frame, ts, evidence, conf, conf if verdict == "NG" else None, image)
            out += self._maybe_by_frames(part, ts)
        return out

    def _maybe_by_frames(self, part: _Part, ts: str) -> list[PartEvent]:
        if self.max_frames is None or part.frames < self.max_frames:
            return []
        return [self._event(part, "frames", ts)]

    def _end(self, pid: int, ended_by: str, ts: str) -> list[PartEvent]:
        part = self._parts.pop(pid, None)
        if part is None or part.emitted or part.frames == 0:
            return []
        return [self._event(part, ended_by, ts)]

    def _event(self, part: _Part, ended_by: str, ts: str) -> PartEvent:
        """The part's event (and its snapshot); counts it once."""
        part.emitted = True
        ng = part.ng_frames >= self.min_frames
        classes = [
            {"class_id": c, "label": self._label(c), "frames": int(n),
             "max_confidence": round(float(p), 6)}
            for c, (n, p) in sorted(part.classes.items(), key=lambda kv: (-kv[1][0], kv[0]))
        ]  # fmt: skip
        defects = sorted(d["label"] for d in classes if self.judge.is_reject(d["class_id"]))
        defects = defects if ng else []
        self.totals["parts"] += 1
        self.totals["ng" if ng else "ok"] += 1
        for label in defects:
            self._counts[label] = self._counts.get(label, 0) + 1
        event = {
            "kind": "part", "part": part.id, "source": self.source,
            "verdict": "NG" if ng else "OK", "ts": ts, "ended_by": ended_by,
            "first_frame": part.first_frame, "last_frame": part.last_frame,
            "first_ts": part.first_ts, "last_ts": part.last_ts, "frames": part.frames,
            "ng_frames": part.ng_frames, "min_frames": self.min_frames, "classes": classes,
            "defects": defects, "best_frame": part.best_frame,
        }  # fmt: skip
        image, part.image = part.image, None
        return event, image

    def _label(self, class_id: int) -> str:
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else str(class_id)


def _empty_classes(labels: tuple[str, ...]) -> frozenset[int]:
    """A classifier's empty classes by name; an error when it has none (no part would end)."""
    found = frozenset(i for i, name in enumerate(labels) if name.lower() in EMPTY_LABELS)
    if not found:
        names = ", ".join(labels) or "none known"
        raise BadInputError(
            "--verdict per-part with a classifier needs an empty class (the top class while no "
            f"part is in view; by name one of {', '.join(sorted(EMPTY_LABELS))}); the model's "
            f"classes are {names}: name it with --empty-class"
        )
    return found
