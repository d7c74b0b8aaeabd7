"""`edgetk run` as a library call: open the model, the source and the sinks, run the loop.

Example:
    >>> summary = run_live("det.onnx", "synthetic", max_frames=300, events="ev.jsonl")
    >>> summary["frames"], summary["ng"]

Trust: every output is checked before the model loads (:func:`check_outputs`) and opened only
after every check passed; class references and the ROI are checked against the model and the
first frame, and settings under which no frame could be NG are refused. A run that lost its
source or a sink returns its summary all the same; :func:`run_outcome` says what that means
(the exit code of ``edgetk run``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.backends.base import Session
from toolkit.errors import BadInputError
from toolkit.live.feeds import FeedRules, SourceSpec
from toolkit.live.loop import LoopOptions, Progress, run_station
from toolkit.live.open import SourceSettings
from toolkit.live.sinks import Sink
from toolkit.live.stop import StopFlag
from toolkit.live.verdict import Result
from toolkit.model.spec import ModelSpec, SpecOverrides
from toolkit.tasks.base import Task

# The video writer's rate when the source has none (image folders, some streams).
DEFAULT_FPS = 30.0


@dataclass(frozen=True)
class Outputs:
    """Where results go (None: not written)."""

    save: Path | None = None
    events: Path | None = None  # "-": standard output
    events_filter: str = "all"
    snapshots: Path | None = None
    show: bool | None = None  # None: a window only where a display exists
    force: bool = False
    explain: str | None = None  # a heatmap method for NG snapshots (toolkit.live.heatmaps)
    explain_budget: float = 0.25


def make_loop_task(
    spec: ModelSpec,
    *,
    conf: float,
    iou: float,
    max_det: int,
    classes: frozenset[int] | None,
    agnostic: bool,
    topk: int,
) -> Task[Result]:
    """The task for ``spec`` with the loop's options (each task takes the ones it uses)."""
    from toolkit.tasks.base import make_task

    cls = sorted(classes) if classes is not None else None
    if spec.task == "classify":
        return make_task(spec, topk=topk, classes=cls)
    return make_task(spec, conf=conf, iou=iou, max_det=max_det, classes=cls, agnostic=agnostic)


def check_outputs(outputs: Outputs) -> bool:
    """Check every output before anything runs or is created; returns whether to show a window.

    Raises:
        OutputExistsError: an output file exists and ``force`` is not given.
        BadInputError: a bad --events-filter or --save suffix, an output that cannot be
            written (read-only folder, a file where a folder must be), --show without a display.
    """
    from toolkit.fileio import check_output, check_output_dir
    from toolkit.live.display import display_available
    from toolkit.live.heatmaps import check_explain
    from toolkit.live.sinks import check_video_suffix, is_stdout

    if outputs.events_filter not in ("all", "ng"):
        raise BadInputError(f"--events-filter must be all or ng, got '{outputs.events_filter}'")
    if outputs.events is not None and not is_stdout(outputs.events):
        check_output(outputs.events, outputs.force, option="--events")
    if outputs.save is not None:
        check_video_suffix(Path(outputs.save))
        check_output(outputs.save, outputs.force, option="--save")
    if outputs.snapshots is not None:
        check_output_dir(outputs.snapshots, option="--snapshots")
    check_explain(outputs.explain, outputs.explain_budget, outputs.snapshots)
    if outputs.show is None:
        return display_available()
    if outputs.show and not display_available():
        raise BadInputError(
            "--show: no window here: no DISPLAY, or an OpenCV without a GUI "
            "(opencv-python-headless; for a window replace it with opencv-python)"
        )
    return outputs.show


def open_sinks(
    outputs: Outputs,
    fps: float | dict[str, float | None] | None,
    *,
    realtime: bool = False,
) -> list[Sink]:
    """The sinks ``outputs`` asks for, opened only after :func:`check_outputs` passed.

    ``fps``: the video's rate, or per source name for a station (one video per source,
    :mod:`toolkit.live.videos`). ``realtime``: the video follows the capture clock (a live
    source; see ``VideoSink``).
    """
    from toolkit.live.display import DisplaySink
    from toolkit.live.sinks import EventsSink, VideoSink
    from toolkit.live.snapshots import SnapshotSink
    from toolkit.live.videos import SourceVideos

    show = check_outputs(outputs)
    sinks: list[Sink] = []
    try:
        if outputs.events is not None:
            sinks.append(
                EventsSink(
                    outputs.events, only_ng=outputs.events_filter == "ng", force=outputs.force
                )
            )
        if outputs.snapshots is not None:
            sinks.append(SnapshotSink(outputs.snapshots, station=isinstance(fps, dict)))
        if outputs.save is not None and isinstance(fps, dict):
            rates = {name: rate or DEFAULT_FPS for name, rate in fps.items()}
            sinks.append(SourceVideos(outputs.save, rates, force=outputs.force, realtime=realtime))
        elif outputs.save is not None:
            sinks.append(
                VideoSink(outputs.save, fps or DEFAULT_FPS, force=outputs.force, realtime=realtime)
            )
        if show:
            sinks.append(DisplaySink(station=isinstance(fps, dict)))
    except BaseException:
        for s in sinks:
            s.close()
        raise
    return sinks


def run_outcome(summary: dict[str, Any]) -> tuple[int, str | None]:
    """The exit code a run's summary means, and the error line (None for exit 0).

    A failed sink or a lost source is a failure (1: restart policies act on it); Ctrl-C is
    130 as in every command; SIGTERM, a limit or the end of a file is a success.
    """
    failed = summary.get("failed_sink")
    if failed:
        return 1, f"{failed['sink']} sink failed: {failed['error']}"
    sources = summary.get("sources") or {}
    lost = [n for n, v in sources.items() if v.get("gave_up")]
    if summary.get("stopped_by") == "source_lost" or lost:
        # A station runs on without a camera it lost for good, and fails at its end.
        name = lost[0] if lost else summary["source"]
        gaps = sources[name]["gaps"] if name in sources else summary.get("gaps")
        gap = gaps[-1] if gaps else {}
        since = f" for {gap['seconds']:.1f} s" if gap else ""
        return 1, f"source lost: no frame from {name}{since}, gave up reconnecting"
    if summary.get("signal") == "SIGINT":
        return 130, "interrupted"
    return 0, None


def _video_summary(sinks: list[Sink]) -> dict[str, Any] | None:
    from toolkit.live.sinks import VideoSink
    from toolkit.live.videos import SourceVideos

    videos = next((s for s in sinks if isinstance(s, SourceVideos)), None)
    if videos is not None:
        return {"per_source": videos.summary()}
    video = next((s for s in sinks if isinstance(s, VideoSink)), None)
    if video is None:
        return None
    return {
        "frames": video.frames,
        "processed_frames": video.count,
        "no_signal_frames": video.no_signal_frames,
        "fps": video.fps,
        "realtime": video.realtime,
    }


def run_live(
    model: str | Path,
    source: str | Sequence[str | SourceSpec],
    *,
    backend: str = "auto",
    overrides: SpecOverrides | None = None,
    threads: int | None = None,
    weights: str | None = None,
    model_source: str | None = None,
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
    classes: str | None = None,
    agnostic: bool = False,
    topk: int = 5,
    reject: str | None = None,
    roi: str | None = None,
    loop: bool = False,
    fps: float | None = None,
    width: int | None = None,
    height: int | None = None,
    reconnect_timeout: float | None = None,
    verdict: str = "frame",
    min_frames: int = 1,
    part_frames: int | None = None,
    options: LoopOptions | None = None,
    outputs: Outputs | None = None,
    stop: StopFlag | None = None,
    session: Session | None = None,
    progress: Progress | None = None,
    sinks: Sequence[Sink] = (),
) -> dict[str, Any]:
    """Run ``model`` on ``source`` (one or several) until they end, a limit or ``stop``.

    ``source``: ``--source`` text(s) or :class:`SourceSpec` s (own name, ROI, reject, conf,
    FPS cap). ``part_frames``: a part is judged after that many frames in view. ``session``:
    an open session; ``sinks``: more open sinks, closed by the loop. Others: ``edgetk run``'s.

    Returns the loop's summary (:func:`~toolkit.live.loop.run_station`) plus ``model``,
    ``backend``, ``outputs``, ``video``; a lost source or failed sink is in it, not raised
    (:func:`run_outcome`). Bad settings raise BadInputError before the model loads.
    """
    from toolkit.backends import open_session
    from toolkit.live.feeds import FeedRules, as_specs, check_specs

    rules = _Rules.checked(conf, iou, max_det, classes, agnostic, topk)
    feed_rules = FeedRules.checked(reject, classes, conf, roi, verdict, min_frames, part_frames)
    capture = SourceSettings(loop, fps, width, height, reconnect_timeout)
    check_specs(specs := as_specs(source), capture)
    check_outputs(outputs := outputs or Outputs())
    opened = contextlib.nullcontext(session) if session is not None else open_session(
        model, backend, overrides=overrides, threads=threads, weights=weights,
        model_source=model_source,
    )  # fmt: skip
    ref = {"model": str(model), "backend": backend, "weights": weights,
           "model_source": model_source, "overrides": overrides}  # fmt: skip
    with opened as sess:
        args = (sess, specs, rules, feed_rules, capture, options, outputs, stop or StopFlag())
        summary, opened_sinks = _run_with(*args, progress, sinks, ref)
    return _with_outputs(summary, model, sess.backend, opened_sinks, outputs)


@dataclass(frozen=True)
class _Rules:
    """What the task keeps (``--conf``, ``--iou``, ``--max-det``...)."""

    conf: float
    iou: float
    max_det: int
    classes: str | None
    agnostic: bool
    topk: int

    @classmethod
    def checked(
        cls, conf: float, iou: float, max_det: int, classes: str | None, agnostic: bool,
        topk: int,
    ) -> _Rules:  # fmt: skip
        """The rules, ``--conf`` checked (before anything opens)."""
        if not 0.0 <= conf <= 1.0:
            raise BadInputError(f"--conf must be in [0, 1], got {conf}")
        return cls(conf, iou, max_det, classes, agnostic, topk)


def _run_with(
    session: Session,
    specs: list[SourceSpec],
    rules: _Rules,
    feed_rules: FeedRules,
    capture: SourceSettings,
    options: LoopOptions | None,
    outputs: Outputs,
    stop: StopFlag,
    progress: Progress | None,
    extra: Sequence[Sink],
    ref: dict[str, Any],
) -> tuple[dict[str, Any], list[Sink]]:
    """Check classes and ROIs against the model, open sources and sinks, run the loop."""
    from toolkit.live.feeds import open_feeds
    from toolkit.live.loop import check_options

    try:
        check_options(session, options or LoopOptions())
        feeds, class_ids = open_feeds(session, specs, feed_rules, capture, stop)
    except BaseException:
        for s in extra:
            s.close()
        raise
    # A source may ask for a lower confidence than the run: the task keeps what any needs.
    task_conf = min([rules.conf, *(s.conf for s in specs if s.conf is not None)])
    task = make_loop_task(
        session.spec, conf=task_conf, iou=rules.iou, max_det=rules.max_det, classes=class_ids,
        agnostic=rules.agnostic, topk=rules.topk,
    )  # fmt: skip
    sinks = list(extra)
    try:
        live = any(f.source.live for f in feeds)
        rates = {f.name: f.source.fps or capture.fps for f in feeds}
        fps = rates if len(feeds) > 1 else next(iter(rates.values()))
        sinks = open_sinks(outputs, fps, realtime=live) + sinks
        heatmaps = _heatmaps(outputs, ref, len(feeds) > 1) if outputs.explain else None
    except BaseException:  # nothing opened is left open; the error goes on
        for f in feeds:
            f.source.close()
        for s in sinks:
            s.close()
        raise
    summary = run_station(
        session, task, feeds, sinks=sinks, options=options, stop=stop, progress=progress,
        heatmaps=heatmaps,
    )  # fmt: skip
    return summary, sinks


def _heatmaps(outputs: Outputs, ref: dict[str, Any], station: bool) -> Any:
    """The NG snapshots' heatmaps (``--explain``) on the model ``ref`` names."""
    from toolkit.live.heatmaps import SnapshotHeatmaps

    assert outputs.explain is not None and outputs.snapshots is not None
    return SnapshotHeatmaps.open(
        ref["model"], outputs.explain, outputs.explain_budget, Path(outputs.snapshots),
        station=station, backend=ref["backend"], weights=ref["weights"],
        model_source=ref["model_source"], overrides=ref["overrides"],
    )  # fmt: skip


def _with_outputs(
    summary: dict[str, Any], model: str | Path, backend: str, sinks: list[Sink], outputs: Outputs
) -> dict[str, Any]:
    """The loop's summary plus the saved video, the model, the backend and the files written."""
    summary["video"] = _video_summary(sinks)
    written = {
        "save": outputs.save,
        "events": outputs.events,
        "snapshots": outputs.snapshots,
    }
    summary["model"] = Path(model).name if str(model).endswith(".onnx") else str(model)
    summary["backend"] = backend
    # A video that could not be finalized was removed: it is not among the outputs.
    summary["outputs"] = {
        k: str(v) for k, v in written.items() if v is not None and (k != "save" or Path(v).exists())
    }
    return summary
