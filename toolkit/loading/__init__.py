"""Load a PyTorch model from a reference string, with its ModelSpec and optional weights.

Example:
    >>> from toolkit.loading import load_model
    >>> loaded = load_model("my_models.py:build", weights="best.pt")
    >>> loaded.module(x), loaded.spec.labels
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError, ModelLoadError
from toolkit.loading.references import (
    Reference,
    build_hub_model,
    instantiate,
    load_exported_program,
    load_python_symbol,
    load_torchscript,
    parse_reference,
)
from toolkit.loading.weights import (
    Checkpoint,
    apply_state_dict,
    is_torchscript_archive,
    read_checkpoint,
)
from toolkit.model.spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    InputSpec,
    ModelSpec,
    PreprocessSpec,
    SpecOverrides,
)

__all__ = [
    "Checkpoint",
    "LoadedModel",
    "has_random_weights",
    "load_model",
    "parse_reference",
    "read_checkpoint",
]

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model ready to run.

    Attributes:
        module: the ``nn.Module``, in eval mode, on CPU.
        spec: its input, preprocessing and labels (the zoo entry's, else defaults), with the
            checkpoint's labels/size and the overrides applied; ``source`` is the reference.
        source: the reference string (the checkpoint's ``arch`` for a self-describing ``.pt``).
        weights: the checkpoint loaded, if any.
        spec_is_default: True when the spec holds defaults rather than the model's own
            settings (a file, module or program reference), so export may infer the task from
            the output shape.
    """

    module: Any
    spec: ModelSpec
    source: str
    weights: str | None = None
    spec_is_default: bool = False


def load_model(
    ref: str,
    *,
    weights: str | None = None,
    num_classes: int | None = None,
    overrides: SpecOverrides | None = None,
) -> LoadedModel:
    """Build the model ``ref`` names (SPEC "Model references") and load ``weights`` into it.

    Args:
        ref: ``zoo:NAME``, ``file.py:Name``, ``package.module:Name``, ``torchvision:NAME``,
            ``timm:NAME``, ``file.ts``/``file.pt`` (TorchScript), ``file.pt2`` (torch.export),
            or a ``.pt`` checkpoint that names its ``arch``.
        weights: a state dict or wrapping checkpoint, read with ``weights_only=True``. Its
            ``labels`` set the class count and the spec's labels.
        num_classes: output classes for factories that take ``num_classes``.
        overrides: command-line spec values; they win over the model's and checkpoint's.

    Raises:
        BadInputError: a missing file, an unknown reference form, a symbol that is no model.
        ModelLoadError: import errors, an unknown name, weights that do not fit (the message
            names the missing and unexpected keys).
    """
    overrides = overrides or SpecOverrides()
    if num_classes is not None and num_classes < 1:
        raise BadInputError(f"num_classes must be at least 1, got {num_classes}")
    parsed = parse_reference(ref)
    if parsed.kind == "pt" and not is_torchscript_archive(parsed.path):
        return _from_checkpoint_file(parsed.path, weights, num_classes, overrides)

    ckpt = read_checkpoint(weights) if weights else None
    if ckpt is not None and ckpt.arch and ckpt.arch != ref:
        log.warning("weights %s were saved for %s, loading them into %s", weights, ckpt.arch, ref)
    nc = num_classes if num_classes is not None else (ckpt.num_classes if ckpt else None)
    in_chans = overrides.channels or (ckpt.in_chans if ckpt else None)
    module, spec, is_default = _build(parsed, ref, nc, in_chans, pretrained=ckpt is None)

    extra = dict(spec.extra)
    if ckpt is not None:
        apply_state_dict(module, ckpt, ref)
        if ckpt.labels:
            spec = spec.with_changes(labels=ckpt.labels)
        if ckpt.imgsz:
            spec = SpecOverrides(imgsz=ckpt.imgsz).apply(spec)
        extra["weights"] = str(weights)
    random = _random_weights(parsed.kind, spec, has_checkpoint=ckpt is not None)
    spec = overrides.apply(spec.with_changes(source=ref, extra=extra, random_weights=random))
    _set_eval(module)
    return LoadedModel(module, spec, ref, weights=weights, spec_is_default=is_default)


def _build(
    ref: Reference, text: str, nc: int | None, in_chans: int | None, *, pretrained: bool
) -> tuple[Any, ModelSpec, bool]:
    """(module, starting spec, whether that spec is only defaults) for a parsed reference."""
    if ref.kind == "zoo":
        try:
            from toolkit.zoo import create_model
        except ImportError as e:
            raise ModelLoadError(f"the model zoo is not available: {e}") from e
        module, spec = create_model(
            ref.target, num_classes=nc, in_chans=in_chans, pretrained=pretrained
        )
        return module, spec, False
    channels = in_chans or 3
    if ref.kind in ("torchvision", "timm"):
        module = build_hub_model(ref, num_classes=nc, in_chans=in_chans)
        return module, _hub_spec(module, channels), False
    if ref.kind in ("pyfile", "module"):
        obj = load_python_symbol(ref)
        module = instantiate(obj, text, num_classes=nc, in_chans=in_chans)
        return module, default_spec(channels), True
    if ref.kind in ("torchscript", "pt"):
        return load_torchscript(ref.path), default_spec(channels), True
    module, shape = load_exported_program(ref.path)
    if shape is not None and in_chans is None:
        # The program was traced at this size; other sizes may not run.
        return module, default_spec(shape[1], (shape[2], shape[3])), True
    return module, default_spec(channels), True


def _random_weights(kind: str, spec: ModelSpec, *, has_checkpoint: bool) -> bool | None:
    """Whether the module holds a fresh random initialization (None: its own code decides)."""
    if has_checkpoint or kind in ("torchscript", "pt", "pt2"):
        return False  # the checkpoint, or the saved program, brought them
    if kind in ("torchvision", "timm"):
        return True  # built with weights=None / pretrained=False: edgetk downloads nothing
    if kind == "zoo":
        return spec.random_weights  # create_model knows whether it loaded shipped weights
    return None  # file.py / module: the user's code may load weights of its own


def has_random_weights(model: str | Path, weights: str | None = None) -> bool | None:
    """Whether ``model`` would run on random weights, told without building it.

    An ``.onnx`` file answers from its spec (None for files that do not record it); a zoo
    entry without shipped weights or a model-hub architecture is random unless ``weights``
    is given. None when not known, or when ``model`` is not valid (its command says why).
    """
    text = str(model)
    if text.lower().endswith(".onnx"):
        from toolkit.model.modelfile import read_spec

        try:
            return read_spec(text).random_weights
        except BadInputError:
            return None
    if weights is not None:
        return False
    try:
        ref = parse_reference(text)
        if ref.kind == "zoo":
            from toolkit.zoo import get_registry
            from toolkit.zoo.create import shipped_weights_path

            return shipped_weights_path(get_registry().get(ref.target)) is None
    except (BadInputError, ImportError):
        return None
    return _random_weights(ref.kind, default_spec(), has_checkpoint=False)


def default_spec(channels: int = 3, imgsz: tuple[int, int] = (224, 224)) -> ModelSpec:
    """The spec of a model that brings none: classify, stretch, pixels / 255, RGB (or gray)."""
    return ModelSpec(
        task="classify",
        input=InputSpec(shape=(None, channels, *imgsz), color="gray" if channels == 1 else "rgb"),
        preprocess=PreprocessSpec(
            resize="stretch", scale=1 / 255, mean=(0.0,) * channels, std=(1.0,) * channels
        ),
    )


def _hub_spec(module: Any, channels: int) -> ModelSpec:
    """torchvision and timm classifiers are ImageNet-trained: their stats and center crop."""
    spec = default_spec(channels)
    mean, std, size, crop = IMAGENET_MEAN, IMAGENET_STD, (224, 224), 0.875
    cfg = getattr(module, "pretrained_cfg", None)  # timm keeps its preprocessing here
    if isinstance(cfg, dict):
        mean, std = tuple(cfg.get("mean", mean)), tuple(cfg.get("std", std))
        size = tuple(cfg.get("input_size", (3, *size)))[1:]  # type: ignore[assignment]
        crop = float(cfg.get("crop_pct", crop))
    if channels != len(mean):
        mean, std = (sum(mean) / len(mean),), (sum(std) / len(std),)
    pre = replace(spec.preprocess, resize="center-crop", mean=mean, std=std, crop_pct=crop)
    inp = replace(spec.input, shape=(None, channels, int(size[0]), int(size[1])))
    return spec.with_changes(preprocess=pre, input=inp)


def _from_checkpoint_file(
    path: Path, weights: str | None, num_classes: int | None, overrides: SpecOverrides
) -> LoadedModel:
    """A ``.pt`` that is not a program: usable as MODEL only when it names its ``arch``."""
    hint = (
        f"pass the architecture as MODEL and this file as --weights, e.g. zoo:NAME --weights {path}"
    )
    if weights is not None:
        raise BadInputError(f"{path} holds weights, not a model program: {hint}")
    ckpt = read_checkpoint(path)
    if not ckpt.arch:
        raise ModelLoadError(f"{path} holds weights but names no architecture: {hint}")
    if Path(ckpt.arch).suffix.lower() in (".pt", ".pth"):
        raise ModelLoadError(f"{path}: its arch '{ckpt.arch}' is not an architecture: {hint}")
    return load_model(ckpt.arch, weights=str(path), num_classes=num_classes, overrides=overrides)


def _set_eval(module: Any) -> None:
    try:
        module.eval()
    except NotImplementedError:
        # torch.export modules refuse eval(): they are frozen in their export-time mode.
        log.debug("%s does not support eval(); using it as exported", type(module).__name__)
