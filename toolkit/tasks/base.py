"""The Task protocol, the factory that picks a task for a model, and the batch runner.

A task owns what happens around the model: frames -> input tensors, outputs -> results. Every
command that runs a model on frames (predict, val, the live loop) goes through
:func:`run_task`, so static-batch models and input naming are handled in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from toolkit.errors import BadInputError
from toolkit.tasks.batching import pad_batch, padded_chunks
from toolkit.tasks.rect import input_hw

if TYPE_CHECKING:
    from toolkit.backends.base import Session
    from toolkit.model.spec import ModelSpec
    from toolkit.tasks.preprocess import FrameMeta

R_co = TypeVar("R_co", covariant=True)


class Task(Protocol[R_co]):
    """Pre- and post-processing around one model: preprocess, then session.infer, then postprocess."""

    spec: ModelSpec

    def preprocess(
        self, frames: list[np.ndarray]
    ) -> tuple[dict[str, np.ndarray], list[FrameMeta]]: ...

    def postprocess(self, outputs: dict[str, np.ndarray], metas: list[FrameMeta]) -> list[R_co]: ...


def make_task(spec: ModelSpec, **opts: Any) -> Task[Any]:
    """The task for ``spec.task``; ``opts`` go to its constructor (e.g. ``topk=5``).

    Options a task does not use are ignored, so callers can pass the union
    (``conf, iou, max_det, classes, agnostic, topk``).

    Raises:
        BadInputError: for a task this version cannot run.
    """
    if spec.task == "classify":
        from toolkit.tasks.classify import ClassifyTask

        return ClassifyTask(spec, **{k: v for k, v in opts.items() if k in ("topk", "classes")})
    if spec.task == "detect":
        from toolkit.tasks.detect import DetectTask

        keys = ("conf", "iou", "max_det", "classes", "agnostic")
        return DetectTask(spec, **{k: v for k, v in opts.items() if k in keys})
    raise BadInputError(f"unknown task '{spec.task}'")


def prepare_inputs(
    session: Session, task: Task[Any], frames: list[np.ndarray], *, square: bool = False
) -> tuple[dict[str, np.ndarray], list[FrameMeta]]:
    """Preprocess ``frames`` into the inputs ``session`` takes.

    A model with a static batch B that gets fewer frames is padded by repeating the last one
    (:func:`~toolkit.tasks.batching.pad_batch`; the caller drops the extra results). The spec's
    input name may differ from the session's (a renamed or torch model): a single-input model
    takes its tensor whatever it is called. A detector with a dynamic height and width gets
    rect inputs (:mod:`toolkit.tasks.rect`), one size per call, unless ``square``.
    """
    frames = pad_batch(frames, session.static_batch)
    hw = input_hw(session, [f.shape[:2] for f in frames], square=square)
    if hw is None:
        inputs, metas = task.preprocess(frames)
    else:
        inputs, metas = task.preprocess(frames, hw=hw)  # type: ignore[call-arg]
    if len(inputs) == 1 and len(session.inputs) == 1:
        inputs = {session.input_name: next(iter(inputs.values()))}
    return inputs, metas


def run_task(
    session: Session, task: Task[R_co], frames: list[np.ndarray], *, square: bool = False
) -> list[R_co]:
    """Run ``frames`` through ``task`` and ``session``, one result per frame.

    A model exported with a static batch size B gets exactly B frames per call: the frames are
    cut into chunks of B and the last chunk is padded
    (:func:`~toolkit.tasks.batching.padded_chunks`). ``square``: see :func:`prepare_inputs`.
    """
    if not frames:
        return []
    fixed = session.static_batch
    results: list[R_co] = []
    for chunk, n in padded_chunks(frames, fixed or len(frames), fixed):
        inputs, metas = prepare_inputs(session, task, chunk, square=square)
        outputs = session.infer(inputs)
        results.extend(task.postprocess(outputs, metas)[:n])
    return results
