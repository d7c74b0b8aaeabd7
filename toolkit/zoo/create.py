"""Build a zoo model with its spec, and load the weights shipped inside the package."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError, ModelLoadError
from toolkit.model.spec import ModelSpec, SpecOverrides
from toolkit.zoo.registry import ZooEntry

log = logging.getLogger(__name__)


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    pretrained: bool = True,
) -> tuple[Any, ModelSpec]:
    """Build zoo model ``name`` (``zoo:`` prefix optional) and its default spec.

    Args:
        name: A zoo name, e.g. ``"resnet18"`` or ``"zoo:defect-cls"``.
        num_classes: Output classes (default: the entry's). A different count drops the
            entry's labels unless it still matches them.
        in_chans: Input channels (default: the entry's); 1 makes the spec grayscale.
        pretrained: Load the entry's shipped weights when the package has them (the layers
            whose shapes still fit, when num_classes or in_chans differ).

    Returns:
        ``(module, spec)``: the ``nn.Module`` in eval mode, and a spec with input shape
        ``(None, C, H, W)``, the entry's preprocessing, ``source="zoo:<name>"`` and
        ``random_weights`` (False only when the shipped weights were loaded).

    Raises:
        BadInputError: unknown name (the message lists the known ones) or bad sizes.
    """
    from toolkit.zoo.catalog import build_registry as get_registry

    entry = get_registry().get(name)
    nc = entry.num_classes if num_classes is None else int(num_classes)
    ic = entry.spec.input.channels if in_chans is None else int(in_chans)
    if nc < 1:
        raise BadInputError(f"num_classes must be at least 1, got {nc}")
    if ic < 1:
        raise BadInputError(f"in_chans must be at least 1, got {ic}")
    spec = entry_spec(entry, num_classes=nc, in_chans=ic)
    model = entry.factory(num_classes=nc, in_chans=ic)
    shipped = False
    if pretrained and entry.weights is not None:
        path = shipped_weights_path(entry)
        if path is not None:
            labels = load_shipped_weights(model, path)
            spec = spec.with_changes(extra={**spec.extra, "weights": f"package:{entry.weights}"})
            if labels is not None and len(labels) == nc:
                spec = spec.with_changes(labels=labels)
            shipped = True
    # Recorded so that export, predict and benchmark can say the outputs mean nothing yet.
    spec = spec.with_changes(random_weights=not shipped)
    return model.eval(), spec


def entry_spec(entry: ZooEntry, *, num_classes: int, in_chans: int) -> ModelSpec:
    """The entry's spec for a given class and channel count, with ``source="zoo:<name>"``."""
    spec = entry.spec
    labels = spec.labels if len(spec.labels) == num_classes else ()
    spec = spec.with_changes(source=f"zoo:{entry.name}", labels=labels)
    if in_chans == spec.input.channels:
        return spec
    pre = spec.preprocess
    # One channel from RGB statistics: their average is the closest single value.
    mean = pre.mean if len(pre.mean) in (1, in_chans) else (sum(pre.mean) / len(pre.mean),)
    std = pre.std if len(pre.std) in (1, in_chans) else (sum(pre.std) / len(pre.std),)
    spec = spec.with_changes(preprocess=replace(pre, mean=mean, std=std))
    color = "gray" if in_chans == 1 else ("rgb" if spec.input.color == "gray" else None)
    return SpecOverrides(channels=in_chans, color=color).apply(spec)


def shipped_weights_path(entry: ZooEntry) -> Path | None:
    """Where the entry's shipped weights live (``toolkit/assets/<file>``), if they exist."""
    if entry.weights is None:
        return None
    # Package data sits next to the code (setuptools package-data "toolkit/assets/*").
    path = Path(__file__).resolve().parent.parent / "assets" / entry.weights
    return path if path.is_file() else None


def load_shipped_weights(model: Any, path: str | Path) -> tuple[str, ...] | None:
    """Load a state dict (or a ``{"state_dict", "labels"}`` checkpoint) into ``model``.

    Tensors whose shape no longer fits (a new head, other input channels) are skipped, so a
    resized model still starts from the shipped features. Returns the checkpoint's labels.
    """
    import pickle

    import torch

    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as e:
        raise ModelLoadError(f"cannot load shipped weights {path}: {e}") from e
    labels = None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        if isinstance(data.get("labels"), (list, tuple)):
            labels = tuple(str(x) for x in data["labels"])
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ModelLoadError(f"shipped weights {path} hold no state dict")
    own = model.state_dict()
    fitting = {k: v for k, v in data.items() if k in own and own[k].shape == v.shape}
    if data and not fitting:
        raise ModelLoadError(f"shipped weights {path} do not match the architecture")
    left = len(own) - len(fitting)
    if left:
        log.info("shipped weights %s: %d tensors do not fit, left at init", path, left)
    model.load_state_dict(fitting, strict=False)
    return labels
