"""The training checkpoint: the best epoch's weights and what it takes to rebuild the model.

Safe for ``torch.load(weights_only=True)`` (tensors, lists, str, int, float)::

    {"state_dict": {...}, "labels": [...], "arch": "zoo:defect-cls", "imgsz": [h, w],
     "in_chans": 3, <the task's fields>}

Classification adds ``epoch`` and ``val_top1``; detection ``task: "detect"``, ``epoch``,
``val_map50`` and ``val_map50_95``. ``--weights`` everywhere accepts it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolkit.fileio import atomic_path
from toolkit.model.spec import ModelSpec


def save_checkpoint(
    model: Any, out: Path, spec: ModelSpec, arch: str, **fields: str | int | float
) -> None:
    """Write ``model``'s weights with ``spec``'s labels, size and channels, atomically."""
    import torch

    ckpt = {
        # contiguous(): plain NCHW tensors, whatever layout training used.
        "state_dict": {
            k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()
        },
        "labels": list(spec.labels),
        "arch": arch,
        "imgsz": [int(v) for v in spec.input.hw],
        "in_chans": int(spec.input.channels),
        **fields,
    }
    with atomic_path(out) as tmp:
        torch.save(ckpt, tmp)
