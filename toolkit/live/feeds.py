"""The sources of a run: what each one is (:class:`SourceSpec`), checked and opened.

One ``--source`` is a station of one camera; ``--source A --source B`` or a station file
give several, each with its own name and, from a station file, its own ROI, reject classes,
confidence and FPS cap (the others from the command line). Names must be unique: events,
statistics and the operator view are keyed by them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from toolkit.backends.base import Session
from toolkit.errors import BadInputError
from toolkit.live.loop import StationFeed
from toolkit.live.open import SourceSettings, check_fps
from toolkit.live.redact import redact_url
from toolkit.live.sources import Source
from toolkit.live.stop import StopFlag
from toolkit.live.verdict import Judge, parse_roi

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


@dataclass(frozen=True)
class SourceSpec:
    """One source of a station. None fields take the run's own setting.

    Attributes:
        source: the ``--source`` text; name: its name in events (default: the source's own,
            made unique); roi / reject: as ``--roi`` / ``--reject``; conf: the confidence at
            which a reject class makes a verdict NG; max_fps: a cap on the frames taken from
            it; capture: how it is opened (``--loop``, ``--fps``...).
    """

    source: str
    name: str | None = None
    roi: str | None = None
    reject: str | None = None
    conf: float | None = None
    max_fps: float | None = None
    capture: SourceSettings | None = None

    def check(self, capture: SourceSettings) -> None:
        """Settings that cannot work, before anything opens."""
        (self.capture or capture).check(self.source)
        if self.name is not None and not NAME_RE.match(self.name):
            raise BadInputError(
                f"source name '{self.name}' must be 1-40 letters, digits, '_', '.' or '-'"
            )
        if self.conf is not None and not 0.0 <= self.conf <= 1.0:
            raise BadInputError(f"conf of source {self.label} must be in [0, 1], got {self.conf}")
        check_fps(self.max_fps, f"max_fps of source {self.label}")
        parse_roi(self.roi)

    @property
    def label(self) -> str:
        return self.name or redact_url(self.source)


def as_specs(sources: str | Sequence[str | SourceSpec]) -> list[SourceSpec]:
    """``--source`` text(s) or specs -> specs (at least one)."""
    items = [sources] if isinstance(sources, str) else list(sources)
    if not items:
        raise BadInputError("no source: give --source (or a station file)")
    return [s if isinstance(s, SourceSpec) else SourceSpec(str(s)) for s in items]


def check_specs(specs: Sequence[SourceSpec], capture: SourceSettings) -> None:
    """Every source's settings, and names that are unique."""
    for spec in specs:
        spec.check(capture)
    names = [s.name for s in specs if s.name is not None]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BadInputError(f"source names must be unique: {', '.join(dup)} given twice")


def unique_names(wanted: Sequence[str | None], found: Sequence[str]) -> list[str]:
    """Each source's name: the one given, else its own (``-2``, ``-3``... when taken)."""
    taken = {n for n in wanted if n is not None}
    out: list[str] = []
    for want, own in zip(wanted, found, strict=True):
        if want is not None:
            out.append(want)
            continue
        name, k = own, 2
        while name in taken:
            name, k = f"{own}-{k}", k + 1
        taken.add(name)
        out.append(name)
    return out


@dataclass(frozen=True)
class FeedRules:
    """The run's own verdict settings, which a source may override."""

    reject: str | None
    classes: str | None
    conf: float
    roi: str | None
    verdict: str = "frame"  # or "per-part"
    min_frames: int = 1
    part_frames: int | None = None

    @classmethod
    def checked(
        cls, reject: str | None, classes: str | None, conf: float, roi: str | None,
        verdict: str, min_frames: int, part_frames: int | None,
    ) -> FeedRules:  # fmt: skip
        """The rules, ``--roi`` and the per-part settings checked (before anything opens)."""
        check_verdict(verdict, min_frames, part_frames)
        parse_roi(roi)
        return cls(reject, classes, conf, roi, verdict, min_frames, part_frames)


def open_feeds(
    session: Session,
    specs: Sequence[SourceSpec],
    rules: FeedRules,
    capture: SourceSettings,
    stop: StopFlag,
) -> tuple[list[StationFeed], frozenset[int] | None]:
    """Open every source (checked against the model and its first frame), with its rule.

    Returns the feeds and the kept class ids (``--classes``). On an error every source opened
    so far is closed.
    """
    feeds: list[tuple[SourceSpec, Any, Judge]] = []
    kept: frozenset[int] | None = None
    try:
        for spec in specs:
            roi = parse_roi(spec.roi if spec.roi is not None else rules.roi)
            reject = spec.reject if spec.reject is not None else rules.reject
            conf = spec.conf if spec.conf is not None else rules.conf
            judge, kept = make_judge(session, reject, rules.classes, conf, roi)
            src = open_checked_source(spec.source, judge, spec.capture or capture, stop)
            feeds.append((spec, src, judge))
    except BaseException:
        for _, src, _ in feeds:
            src.close()
        raise
    names = unique_names([s.name for s, _, _ in feeds], [src.name for _, src, _ in feeds])
    out = [
        StationFeed(name, src, judge, spec.max_fps, _parts(session, judge, rules, name))
        for name, (spec, src, judge) in zip(names, feeds, strict=True)
    ]
    return out, kept


def _parts(session: Session, judge: Judge, rules: FeedRules, name: str) -> Any:
    """A source's per-part verdicts (None for per-frame verdicts)."""
    if rules.verdict == "frame":
        return None
    from toolkit.live.parts import PartVerdicts

    return PartVerdicts(
        judge, min_frames=rules.min_frames, max_frames=rules.part_frames, source=name,
        labels=tuple(session.spec.labels or ()), task=session.spec.task,
    )  # fmt: skip


def make_judge(
    session: Session,
    reject: str | None,
    classes: str | None,
    conf: float,
    roi: tuple[int, int, int, int] | None,
) -> tuple[Judge, frozenset[int] | None]:
    """The verdict rule and the kept class ids, checked against the model.

    Raises:
        BadInputError: a class the model lacks (the message lists the model's classes), or
            settings under which no frame could ever be NG.
    """
    from toolkit.live.verdict import check_ng_possible
    from toolkit.tasks.classes import ModelClasses, parse_classes

    spec = session.spec
    model = ModelClasses.of(spec, session.outputs)
    reject_ids = parse_classes(reject, model, "--reject")
    kept = parse_classes(classes, model, "--classes")
    check_ng_possible(reject_ids, kept, model)
    labels = tuple(spec.labels or ())
    judge = Judge(reject_ids, labels, conf, roi, crop_input=spec.task == "classify")
    return judge, kept


def open_checked_source(
    source: str, judge: Judge, settings: SourceSettings, stop: StopFlag
) -> Source:
    """The opened source, its first frame read (not consumed) to check the ROI against it."""
    from toolkit.live.open import open_source
    from toolkit.live.verdict import check_roi

    src = open_source(
        source, loop=settings.loop, stop=stop, width=settings.width, height=settings.height,
        fps=settings.fps, reconnect_timeout=settings.reconnect_timeout,
    )  # fmt: skip
    try:
        if judge.roi is not None:
            first = src.peek()
            if first is not None:
                check_roi(judge.roi, first.shape[:2])
    except BaseException:
        src.close()
        raise
    return src


def check_verdict(verdict: str, min_frames: int, part_frames: int | None) -> None:
    if verdict not in ("frame", "per-part"):
        raise BadInputError(f"--verdict must be frame or per-part, got '{verdict}'")
    if min_frames < 1:
        raise BadInputError(f"--min-frames must be at least 1, got {min_frames}")
    if part_frames is not None and part_frames < 1:
        raise BadInputError(f"--part-frames must be at least 1, got {part_frames}")
