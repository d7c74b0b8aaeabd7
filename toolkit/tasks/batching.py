"""Feeding a static-batch model: samples cut into chunks, the short last chunk padded.

A model exported with a static batch size B takes exactly B samples per call. Every caller
that feeds one (:func:`toolkit.tasks.base.run_task`, the ONNX Runtime output collection of
:mod:`toolkit.evaluate.agreement`, the int8 calibration reader) cuts its samples with
:func:`padded_chunks` and pads with :func:`pad_batch`, which repeats the last sample; the caller
drops the results of the padding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import numpy as np

Batch = TypeVar("Batch", np.ndarray, list[Any])


def pad_batch(chunk: Batch, size: int | None) -> Batch:
    """``chunk`` grown to ``size`` samples by repeating its last one.

    A chunk that has ``size`` samples or more (or a ``size`` of None: a dynamic batch) is
    returned as it is. ``chunk`` is a list of frames or an array with the samples on axis 0.
    """
    missing = 0 if size is None else size - len(chunk)
    if missing <= 0:
        return chunk
    if isinstance(chunk, np.ndarray):
        return np.concatenate([chunk, np.repeat(chunk[-1:], missing, 0)])
    return chunk + [chunk[-1]] * missing


def padded_chunks(items: Batch, step: int, fixed: int | None = None) -> Iterator[tuple[Batch, int]]:
    """``(chunk, real samples in it)`` for each ``step`` items, in order.

    With ``fixed`` (a static batch) each chunk is padded to ``fixed`` samples
    (:func:`pad_batch`); the real count says how many results to keep.
    """
    for start in range(0, len(items), step):
        chunk = items[start : start + step]
        yield pad_batch(chunk, fixed), len(chunk)
