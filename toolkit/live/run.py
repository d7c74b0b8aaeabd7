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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError
from toolkit.live.loop import LoopOptions, StopFlag, run_loop
from toolkit.model.spec import ModelSpec, SpecOverrides

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


def make_loop_task(
    spec: ModelSpec,
    *,
    conf: float,
    iou: float,
    max_det: int,
    classes: frozenset[int] | None,
    agnostic: bool,
    topk: int,
) -> Any:
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
    from toolkit.live.sinks import check_video_suffix, display_available, is_stdout

    if outputs.events_filter not in ("all", "ng"):
        raise BadInputError(f"--events-filter must be all or ng, got '{outputs.events_filter}'")
    if outputs.events is not None and not is_stdout(outputs.events):
        check_output(outputs.events, outputs.force, option="--events")
    if outputs.save is not None:
        check_video_suffix(Path(outputs.save))
        check_output(outputs.save, outputs.force, option="--save")
    if outputs.snapshots is not None:
        check_output_dir(outputs.snapshots, option="--snapshots")
    if outputs.show is None:
        return display_available()
    if outputs.show and not display_available():
        raise BadInputError(
            "--show: no window here: no DISPLAY, or an OpenCV without a GUI "
            "(opencv-python-headless; for a window replace it with opencv-python)"
        )
    return outputs.show


def open_sinks(outputs: Outputs, fps: float | None, *, realtime: bool = False) -> list[Any]:
    """The sinks ``outputs`` asks for, opened only after :func:`check_outputs` passed.

    ``realtime``: the video follows the capture clock (a live source; see ``VideoSink``).
    """
    from toolkit.live.sinks import DisplaySink, EventsSink, SnapshotSink, VideoSink

    show = check_outputs(outputs)
    sinks: list[Any] = []
    try:
        if outputs.events is not None:
            sinks.append(
                EventsSink(
                    outputs.events, only_ng=outputs.events_filter == "ng", force=outputs.force
                )
            )
        if outputs.snapshots is not None:
            sinks.append(SnapshotSink(outputs.snapshots))
        if outputs.save is not None:
            sinks.append(
                VideoSink(outputs.save, fps or DEFAULT_FPS, force=outputs.force, realtime=realtime)
            )
        if show:
            sinks.append(DisplaySink())
    except BaseException:
        for s in sinks:
            s.close()
        raise
    return sinks


def make_judge(
    session: Any,
    reject: str | None,
    classes: str | None,
    conf: float,
    roi: tuple[int, int, int, int] | None,
) -> tuple[Any, frozenset[int] | None]:
    """The verdict rule and the kept class ids, checked against the model.

    Raises:
        BadInputError: a class the model lacks (the message lists the model's classes), or
            settings under which no frame could ever be NG.
    """
    from toolkit.live.verdict import Judge, check_ng_possible
    from toolkit.tasks.classes import ModelClasses, parse_classes

    spec = session.spec
    model = ModelClasses.of(spec, getattr(session, "outputs", ()))
    reject_ids = parse_classes(reject, model, "--reject")
    kept = parse_classes(classes, model, "--classes")
    check_ng_possible(reject_ids, kept, model)
    labels = tuple(spec.labels or ())
    judge = Judge(reject_ids, labels, conf, roi, crop_input=spec.task == "classify")
    return judge, kept


def open_checked_source(source: str, judge: Any, **kwargs: Any) -> Any:
    """The opened source, its first frame read (not consumed) to check the ROI against it."""
    from toolkit.live.open import open_source
    from toolkit.live.verdict import check_roi

    src = open_source(source, **kwargs)
    try:
        if judge.roi is not None:
            first = src.peek()
            if first is not None:
                check_roi(judge.roi, first.shape[:2])
    except BaseException:
        src.close()
        raise
    return src


def run_outcome(summary: dict[str, Any]) -> tuple[int, str | None]:
    """The exit code a run's summary means, and the error line (None for exit 0).

    A failed sink or a lost source is a failure (1: restart policies act on it); Ctrl-C is
    130 as in every command; SIGTERM, a limit or the end of a file is a success.
    """
    failed = summary.get("failed_sink")
    if failed:
        return 1, f"{failed['sink']} sink failed: {failed['error']}"
    if summary.get("stopped_by") == "source_lost":
        gap = summary["gaps"][-1] if summary.get("gaps") else {}
        since = f" for {gap['seconds']:.1f} s" if gap else ""
        return 1, f"source lost: no frame from {summary['source']}{since}, gave up reconnecting"
    if summary.get("signal") == "SIGINT":
        return 130, "interrupted"
    return 0, None


def _video_summary(sinks: list[Any]) -> dict[str, Any] | None:
    video = next((s for s in sinks if getattr(s, "name", "") == "video"), None)
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
    source: str,
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
    options: LoopOptions | None = None,
    outputs: Outputs | None = None,
    stop: StopFlag | None = None,
    session: Any = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``model`` on ``source`` until it ends, a limit is hit or ``stop`` is set.

    Args:
        model: an ONNX file or PyTorch reference (see ``open_session``).
        source: the ``--source`` text (:func:`toolkit.live.open.open_source`).
        session: an already open session to use instead of opening ``model`` (tests wrap one).
        progress: called every few seconds with the running counts (see ``run_loop``).
        Others: the ``edgetk run`` options of the same names.

    Returns:
        The loop's summary (:func:`toolkit.live.loop.run_loop`) plus ``model``, ``backend``,
        ``outputs`` (the files written) and ``video`` (frames in the saved video, NO SIGNAL
        frames among them, its rate). A lost source or a failed sink is in the summary
        (``stopped_by``, ``failed_sink``), not raised: see :func:`run_outcome`.

    Raises:
        BadInputError: bad settings, found before the run (outputs before the model loads).
    """
    from toolkit.backends import open_session
    from toolkit.live.open import check_source_settings
    from toolkit.live.verdict import parse_roi

    if not 0.0 <= conf <= 1.0:
        raise BadInputError(f"--conf must be in [0, 1], got {conf}")
    roi_box = parse_roi(roi)
    check_source_settings(source, fps, width, height, reconnect_timeout)
    outputs = outputs or Outputs()
    check_outputs(outputs)
    stop = stop or StopFlag()
    own = session is None
    if own:
        session = open_session(
            model, backend, overrides=overrides, threads=threads, weights=weights,
            model_source=model_source,
        )  # fmt: skip
    try:
        judge, class_ids = make_judge(session, reject, classes, conf, roi_box)
        task = make_loop_task(
            session.spec, conf=conf, iou=iou, max_det=max_det, classes=class_ids,
            agnostic=agnostic, topk=topk,
        )  # fmt: skip
        src = open_checked_source(
            source, judge, loop=loop, stop=stop, width=width, height=height, fps=fps,
            reconnect_timeout=reconnect_timeout,
        )  # fmt: skip
        try:
            sinks = open_sinks(outputs, src.fps or fps, realtime=bool(src.live))
        except BaseException:
            src.close()
            raise
        summary = run_loop(
            session, task, src, judge=judge, sinks=sinks, options=options, stop=stop,
            progress=progress,
        )  # fmt: skip
        backend_name = session.backend
    finally:
        if own:
            session.close()
    summary["video"] = _video_summary(sinks)
    written = {
        "save": outputs.save,
        "events": outputs.events,
        "snapshots": outputs.snapshots,
    }
    summary["model"] = Path(model).name if str(model).endswith(".onnx") else str(model)
    summary["backend"] = backend_name
    # A video that could not be finalized was removed: it is not among the outputs.
    summary["outputs"] = {
        k: str(v) for k, v in written.items() if v is not None and (k != "save" or Path(v).exists())
    }
    return summary
