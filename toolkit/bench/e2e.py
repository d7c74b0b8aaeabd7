"""``edgetk benchmark --e2e SOURCE``: the whole live pipeline, timed per stage.

The frames go through the live loop itself (:func:`toolkit.live.run.run_live`, what
``edgetk run`` calls), not a copy of it: decode (``capture``), ``preprocess``, ``infer``,
``postprocess`` (decode/NMS and the verdict) and ``end_to_end``, with no sinks (no events,
snapshots, video or window). The source is read as fast as it can be processed: a file or a
folder is never paced, and ``synthetic`` runs unpaced unless its ``paced`` option says
otherwise. The numbers are the loop's own summary, under the names ``edgetk run --json``
reports.

Example:
    >>> row = e2e_benchmark("det.onnx", "belt.mp4", batch=1, max_frames=300)
    >>> row["fps"], row["stages"]["infer"]["p50"], row["frame_age_ms"]["p99"]
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from toolkit.backends.base import Session
from toolkit.errors import BadInputError
from toolkit.live.loop import LoopOptions
from toolkit.model.spec import SpecOverrides


def e2e_benchmark(
    model: str,
    source: str,
    *,
    backend: str = "ort-cpu",
    batch: int = 1,
    threads: int | None = None,
    overrides: SpecOverrides | None = None,
    weights: str | None = None,
    model_source: str | None = None,
    max_frames: int = 300,
    session: Session | None = None,
) -> dict[str, Any]:
    """Run ``model`` on ``source`` through the live loop with its sinks off; time each stage.

    Args:
        model: an ONNX file or a PyTorch reference (as ``edgetk run`` takes it).
        source: a video file, an image folder or ``synthetic`` (``--source`` forms).
        batch: frames per inference call, batched as the live loop batches them (a
            static-batch model uses its own size: the row's ``batch`` says which ran).
        max_frames: stop after this many frames (``synthetic`` never ends by itself).
        session: an already open session to run (not closed here); otherwise ``model`` is
            opened with the live loop's session settings and closed at the end.
        Others: the ``edgetk run`` / ``edgetk benchmark`` options of the same names.

    Returns:
        ``{"model", "backend", "precision", "batch", "source", "frames", "seconds", "fps",
        "frame_age_ms": {"p50", "p99"}, "stages", "dropped", "warmup"}``: ``stages`` maps
        each stage the loop times (``capture``, ``preprocess``, ``infer``, ``postprocess``,
        ``sinks``, ``end_to_end``) to its latency object in ms (``mean``, ``p50``, ``p90``,
        ``p99``, ``max``); ``warmup`` is the inference calls made before the first frame.

    Raises:
        BadInputError: ``max_frames`` below 1, or what ``edgetk run`` refuses.
    """
    from toolkit.backends import open_session

    if max_frames < 1:
        raise BadInputError(f"--max-frames must be at least 1, got {max_frames}")
    opened = contextlib.nullcontext(session) if session is not None else open_session(
        model, backend, overrides=overrides, threads=threads, weights=weights,
        model_source=model_source,
    )  # fmt: skip
    options = LoopOptions(max_frames=max_frames, batch=batch)
    with opened as sess:
        summary = _run_unsinked(sess, model, unpaced(source), options)
        precision = sess.precision
    return _row(summary, str(model), precision, options)


def unpaced(source: str) -> str:
    """``source`` read as fast as it is processed: ``synthetic`` gets ``paced=0`` unless its
    options set ``paced``; every other source is returned as it is (files are never paced)."""
    text = str(source).strip()
    if text != "synthetic" and not text.startswith("synthetic:"):
        return source
    _, _, rest = text.partition(":")
    if any(item.strip().startswith("paced=") for item in rest.split(",")):
        return text
    return f"synthetic:{rest.rstrip(',') + ',' if rest.strip() else ''}paced=0"


def _run_unsinked(
    session: Session, model: str | Path, source: str, options: LoopOptions
) -> dict[str, Any]:
    """``edgetk run``'s own call on ``session``, with every output off (no window either)."""
    from toolkit.live.run import Outputs, run_live

    return run_live(model, source, session=session, options=options, outputs=Outputs(show=False))


def _row(
    summary: dict[str, Any], model: str, precision: str, options: LoopOptions
) -> dict[str, Any]:
    """The e2e row from the loop's summary (its numbers, its stage names)."""
    return {
        "model": model,
        "backend": summary["backend"],
        "precision": precision,
        "batch": summary["batch"],
        "source": summary["source"],
        "frames": summary["frames"],
        "seconds": summary["seconds"],
        "fps": summary["fps"],
        "frame_age_ms": summary["frame_age_ms"],
        "stages": summary["latency_ms"],
        "dropped": summary["dropped"],
        "warmup": options.warmup,
    }
