"""`edgetk run` as a library call: open the model, the source and the sinks, run the loop.

Example:
    >>> summary = run_live("det.onnx", "synthetic", max_frames=300, events="ev.jsonl")
    >>> summary["frames"], summary["ng"]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError
from toolkit.pipeline import LoopOptions, StopFlag, run_loop
from toolkit.spec import ModelSpec, SpecOverrides

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

    if spec.task == "classify":
        return make_task(spec, topk=topk)
    cls = sorted(classes) if classes is not None else None
    return make_task(spec, conf=conf, iou=iou, max_det=max_det, classes=cls, agnostic=agnostic)


def open_sinks(outputs: Outputs, fps: float | None) -> list[Any]:
    """The sinks ``outputs`` asks for (files are checked before anything runs)."""
    from toolkit.video.sinks import (
        DisplaySink,
        EventsSink,
        SnapshotSink,
        VideoSink,
        display_available,
    )

    if outputs.events_filter not in ("all", "ng"):
        raise BadInputError(f"--events-filter must be all or ng, got '{outputs.events_filter}'")
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
            sinks.append(VideoSink(outputs.save, fps or DEFAULT_FPS, force=outputs.force))
        show = outputs.show
        if show is None:
            show = display_available()
        elif show and not display_available():
            raise BadInputError(
                "--show: no window here: no DISPLAY, or an OpenCV without a GUI "
                "(opencv-python-headless; for a window replace it with opencv-python)"
            )
        if show:
            sinks.append(DisplaySink())
    except BaseException:
        for s in sinks:
            s.close()
        raise
    return sinks


def run_live(
    model: str | Path,
    source: str,
    *,
    backend: str = "auto",
    overrides: SpecOverrides | None = None,
    threads: int | None = None,
    weights: str | None = None,
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
        source: the ``--source`` text (:func:`toolkit.video.sources.open_source`).
        session: an already open session to use instead of opening ``model`` (tests wrap one).
        progress: called every few seconds with the running counts (see ``run_loop``).
        Others: the ``edgetk run`` options of the same names.

    Returns:
        The loop's summary (:func:`toolkit.pipeline.run_loop`) plus ``model``, ``backend`` and
        ``outputs`` (the files written).
    """
    from toolkit.backends import open_session
    from toolkit.video.sources import open_source
    from toolkit.video.verdict import Judge, parse_classes, parse_roi

    if not 0.0 <= conf <= 1.0:
        raise BadInputError(f"--conf must be in [0, 1], got {conf}")
    roi_box = parse_roi(roi)
    outputs = outputs or Outputs()
    stop = stop or StopFlag()
    own = session is None
    if own:
        session = open_session(
            model, backend, overrides=overrides, threads=threads, weights=weights
        )
    try:
        spec = session.spec
        labels = tuple(spec.labels or ())
        judge = Judge(
            parse_classes(reject, labels, "--reject"), labels, conf, roi_box,
            crop_input=spec.task == "classify",
        )  # fmt: skip
        class_ids = parse_classes(classes, labels, "--classes")
        task = make_loop_task(
            spec, conf=conf, iou=iou, max_det=max_det, classes=class_ids, agnostic=agnostic,
            topk=topk,
        )  # fmt: skip
        src = open_source(
            source, loop=loop, stop=stop, width=width, height=height, fps=fps,
            reconnect_timeout=reconnect_timeout,
        )  # fmt: skip
        try:
            sinks = open_sinks(outputs, src.fps or fps)
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
    written = {
        "save": outputs.save,
        "events": outputs.events,
        "snapshots": outputs.snapshots,
    }
    summary["model"] = Path(model).name if str(model).endswith(".onnx") else str(model)
    summary["backend"] = backend_name
    summary["outputs"] = {k: str(v) for k, v in written.items() if v is not None}
    return summary
