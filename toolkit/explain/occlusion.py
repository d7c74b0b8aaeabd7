"""Occlusion: slide a gray patch over the input and watch the score drop.

Forward passes only, through the :class:`~toolkit.backends.base.Session` protocol, so it runs
on every backend (ONNX Runtime, an int8 file, a TensorRT engine) with no PyTorch installed.
The occluded copies go to the model in batches (padded for a static-batch model).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.explain.targets import Target, score
from toolkit.tasks.batching import padded_chunks

DEFAULT_BATCH = 32


def batched_scores(
    session: Any, task: Any, xs: np.ndarray, target: Target, batch: int = DEFAULT_BATCH
) -> np.ndarray:
    """``target``'s score for each input of ``xs`` ``[N, C, H, W]``, ``batch`` per call."""
    fixed = session.static_batch
    step = fixed or max(1, batch)
    out = []
    for chunk, n in padded_chunks(xs, step, fixed):
        outputs = session.infer({session.input_name: chunk})
        out.append(score(task, outputs, target)[:n])
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def patch_grid(hw: tuple[int, int], patch: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of the patches; the last row and column touch the edge."""
    h, w = hw
    ys = list(range(0, max(1, h - patch + 1), stride))
    xs = list(range(0, max(1, w - patch + 1), stride))
    if ys[-1] + patch < h:
        ys.append(h - patch)
    if xs[-1] + patch < w:
        xs.append(w - patch)
    return [(y, x) for y in ys for x in xs]


def default_patch(hw: tuple[int, int]) -> int:
    """An eighth of the short side (at least 4 px): defects are small next to the part."""
    return max(4, min(hw) // 8)


def occlusion_map(
    session: Any,
    task: Any,
    x: np.ndarray,
    target: Target,
    *,
    patch: int | None = None,
    stride: int | None = None,
    batch: int = DEFAULT_BATCH,
) -> np.ndarray:
    """The score drop when each region is covered: float32 ``[H, W]`` over the input.

    Args:
        session: any open session. task: its scoring task (:func:`~toolkit.explain.targets.
            scoring_task`). x: one preprocessed input ``[1, C, H, W]``.
        patch, stride: patch side and step in input pixels (default: 1/8 of the short side,
            half that). The patch is the image's mean value per channel (gray, not black).
    """
    if x.ndim != 4 or x.shape[0] != 1:
        raise BadInputError(f"occlusion takes one input [1, C, H, W], got {list(x.shape)}")
    hw = (int(x.shape[2]), int(x.shape[3]))
    patch = patch or default_patch(hw)
    stride = stride or max(1, patch // 2)
    if patch < 1 or stride < 1 or patch > min(hw):
        raise BadInputError(f"--patch {patch} / --stride {stride} do not fit a {hw} input")
    fill = x.mean(axis=(2, 3), keepdims=True)[0]
    corners = patch_grid(hw, patch, stride)
    base = float(batched_scores(session, task, x, target, batch)[0])
    heat = np.zeros(hw, np.float32)
    seen = np.zeros(hw, np.float32)
    for start in range(0, len(corners), batch):
        part = corners[start : start + batch]
        xs = np.repeat(x, len(part), axis=0)
        for k, (y0, x0) in enumerate(part):
            xs[k, :, y0 : y0 + patch, x0 : x0 + patch] = fill
        drops = base - batched_scores(session, task, xs, target, batch)
        for (y0, x0), d in zip(part, drops, strict=True):
            heat[y0 : y0 + patch, x0 : x0 + patch] += d
            seen[y0 : y0 + patch, x0 : x0 + patch] += 1
    return heat / np.maximum(seen, 1)
