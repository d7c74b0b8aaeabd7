"""What ``edgetk zoo`` lists: each entry's input, parameter count and description."""

from __future__ import annotations

from typing import Any

from toolkit.zoo.registry import ZooEntry


def count_params(entry: ZooEntry, num_classes: int | None = None) -> int:
    """Parameters of ``entry`` at ``num_classes`` (default: the entry's).

    The model is built on the meta device, so no memory is allocated even for VGG.
    """
    import torch

    nc = entry.num_classes if num_classes is None else num_classes
    with torch.device("meta"):
        model = entry.factory(num_classes=nc, in_chans=entry.spec.input.channels)
    return sum(p.numel() for p in model.parameters())


def describe_models() -> list[dict[str, Any]]:
    """One record per zoo entry (the ``edgetk zoo --json`` rows), in catalog order."""
    from toolkit.zoo import get_registry

    rows = []
    for entry in get_registry():
        spec = entry.spec
        rows.append(
            {
                "name": entry.name,
                "input_shape": [int(d) for d in spec.input.shape[1:] if d is not None],
                "params": count_params(entry),
                "published_params": entry.published_params,
                "num_classes": entry.num_classes,
                "labels": list(spec.labels),
                "color": spec.input.color,
                "resize": spec.preprocess.resize,
                "mean": list(spec.preprocess.mean),
                "std": list(spec.preprocess.std),
                "weights": entry.weights,
                "tags": list(entry.tags),
                "description": entry.description,
            }
        )
    return rows
