"""Train a classifier on an ImageFolder: AdamW, warmup + cosine LR, best checkpoint kept.

Inputs are made by :func:`toolkit.tasks.preprocess.preprocess` with the model's spec, after
augmentation on the uint8 BGR image, so the network trains on exactly the pixels that
``edgetk predict``, ``val`` and the live loop will give it.

The checkpoint (``torch.load(weights_only=True)`` safe: tensors, lists, str, int, float)::

    {"state_dict": {...}, "labels": [...], "arch": "zoo:defect-cls", "imgsz": [h, w],
     "in_chans": 3, "epoch": 7, "val_top1": 0.97}

``edgetk export zoo:defect-cls --weights best.pt`` and ``--weights`` everywhere accept it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import BadInputError
from toolkit.fileio import check_output
from toolkit.model.spec import ModelSpec, SpecOverrides
from toolkit.train.augment import AugmentConfig
from toolkit.train.data import load_classification_data
from toolkit.train.loop import fit

if TYPE_CHECKING:
    import torch
    from rich.console import Console


@dataclass
class TrainReport:
    """What a training run did: the data, the best epoch and the per-epoch history."""

    arch: str
    output: str
    data: str
    layout: str
    labels: list[str]
    imgsz: list[int]
    epochs: int
    batch: int
    lr: float
    device: str
    n_train: int
    n_val: int
    best_epoch: int
    best_val_top1: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_classifier(
    arch: str,
    data: str | Path,
    output: str | Path,
    *,
    epochs: int = 10,
    imgsz: int | tuple[int, int] | None = None,
    batch: int = 32,
    lr: float = 3e-3,
    weight_decay: float = 0.05,
    label_smoothing: float = 0.05,
    val_fraction: float = 0.2,
    augmentation: AugmentConfig | None = None,
    workers: int = 0,
    threads: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    force: bool = False,
    progress: bool = True,
    console: Console | None = None,
) -> TrainReport:
    """Train ``arch`` on the ImageFolder ``data``; write the best checkpoint to ``output``.

    Args:
        arch: a zoo name (``zoo:defect-cls`` or ``defect-cls``, built untrained with one
            output per class) or any model reference ``toolkit.loading.load_model`` takes.
        data: ``root/train/<class>/`` + ``root/val/<class>/``, or one ImageFolder (split).
        output: the checkpoint file; kept at the epoch with the best val top-1 (ties: lower
            val loss), written atomically.
        epochs: passes over the training images.
        imgsz: input size (``n`` or ``(h, w)``); default: the model's.
        batch: images per step.
        lr: peak learning rate (AdamW; linear warmup, then cosine decay to 1% of it).
        weight_decay: AdamW weight decay (not applied to biases and norm layers).
        label_smoothing: cross-entropy label smoothing.
        val_fraction: share held out per class when there is no val folder.
        augmentation: flips, crops, rotation, color jitter (default :class:`AugmentConfig`).
        workers: threads preparing batches ahead of the training step (0: in line).
        threads: torch intra-op threads (default: torch's own choice, the physical cores).
        seed: seeds the model init, the shuffling, the augmentation and the split.
        device: ``cpu`` or ``cuda[:N]``.
        force: overwrite an existing ``output``.
        progress: show a progress bar per epoch.
        console: where the progress bar goes (default: stderr).

    Returns:
        A :class:`TrainReport`.

    Raises:
        OutputExistsError: ``output`` exists and ``force`` is false.
        BadInputError: bad data folder, options or model reference.

    Example:
        >>> r = train_classifier("zoo:defect-cls", "data/", "best.pt", epochs=5)
        >>> r.best_val_top1
        0.96
    """
    import torch

    _check_options(epochs=epochs, batch=batch, lr=lr, workers=workers, threads=threads)
    out = check_output(output, force)
    dev = _device(device)
    t0 = time.perf_counter()
    old_threads = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        # fork_rng: seeding for reproducibility without leaving the caller's torch RNG changed.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            arch_ref, preferred, build = _resolver(arch)
            probe_spec = _zoo_spec(arch_ref)
            channels = probe_spec.input.channels if probe_spec else 3
            hint = _size_hint(imgsz, probe_spec)
            ds = load_classification_data(
                data,
                channels=channels,
                preferred_labels=preferred,
                val_fraction=val_fraction,
                seed=seed,
                max_side=2 * max(hint) if hint else None,
            )
            model, spec = build(len(ds.labels))
            if imgsz is not None:
                size = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
                spec = SpecOverrides(imgsz=size).apply(spec)  # type: ignore[arg-type]
            spec = spec.with_changes(labels=ds.labels)
            # channels_last: about 20% faster training steps for these conv nets on CPU.
            model = model.to(dev, memory_format=torch.channels_last)
            _dry_run(model, spec, dev, arch_ref)
            best = fit(
                model,
                spec,
                ds,
                out,
                arch_ref=arch_ref,
                epochs=epochs,
                batch=batch,
                lr=lr,
                weight_decay=weight_decay,
                label_smoothing=label_smoothing,
                augmentation=augmentation or AugmentConfig(),
                workers=workers,
                seed=seed,
                device=dev,
                progress=progress,
                console=console,
            )
    finally:
        torch.set_num_threads(old_threads)
    h, w = spec.input.hw
    return TrainReport(
        arch=arch_ref,
        output=str(out),
        data=str(ds.root),
        layout=ds.layout,
        labels=list(ds.labels),
        imgsz=[h, w],
        epochs=epochs,
        batch=batch,
        lr=lr,
        device=str(dev),
        n_train=len(ds.train),
        n_val=len(ds.val),
        best_epoch=best["epoch"],
        best_val_top1=best["val_top1"],
        seconds=round(time.perf_counter() - t0, 2),
        history=best["history"],
    )


def _check_options(
    *, epochs: int, batch: int, lr: float, workers: int, threads: int | None
) -> None:
    if epochs < 1:
        raise BadInputError(f"--epochs must be at least 1, got {epochs}")
    if batch < 1:
        raise BadInputError(f"--batch must be at least 1, got {batch}")
    if not lr > 0:
        raise BadInputError(f"--lr must be positive, got {lr}")
    if workers < 0:
        raise BadInputError(f"--workers must be 0 or more, got {workers}")
    if threads is not None and threads < 1:
        raise BadInputError(f"--threads must be at least 1, got {threads}")


def _device(device: str) -> torch.device:
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise BadInputError(f"unknown device '{device}' (expected cpu or cuda[:N])") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BadInputError(f"device '{device}' requested but PyTorch sees no CUDA GPU")
    if dev.type not in ("cpu", "cuda"):
        raise BadInputError(f"unsupported device '{device}' (expected cpu or cuda[:N])")
    return dev


def _resolver(arch: str) -> tuple[str, tuple[str, ...] | None, Any]:
    """(normalized reference, the model's preferred labels, build(num_classes) -> (module, spec))."""
    from toolkit.zoo import create_model, get_registry

    registry = get_registry()
    name = arch.removeprefix("zoo:")
    if arch.startswith("zoo:") or name in registry:
        entry = registry.get(name)  # raises BadInputError naming the known models

        def build_zoo(n: int) -> tuple[Any, ModelSpec]:
            return create_model(entry.name, num_classes=n, pretrained=False)

        return f"zoo:{entry.name}", entry.spec.labels or None, build_zoo

    def build_ref(n: int) -> tuple[Any, ModelSpec]:
        from toolkit.loading import load_model

        loaded = load_model(arch, num_classes=n)
        return loaded.module, loaded.spec

    return arch, None, build_ref


def _zoo_spec(arch_ref: str) -> ModelSpec | None:
    if not arch_ref.startswith("zoo:"):
        return None
    from toolkit.zoo import get_registry

    return get_registry().get(arch_ref).spec


def _size_hint(imgsz: int | tuple[int, int] | None, spec: ModelSpec | None) -> tuple[int, ...]:
    if imgsz is not None:
        return (imgsz,) if isinstance(imgsz, int) else tuple(imgsz)
    if spec is not None and None not in spec.input.shape[2:]:
        return spec.input.hw
    return ()


def _dry_run(model: Any, spec: ModelSpec, dev: torch.device, arch: str) -> None:
    """Fail early, with a clear message, when the model cannot take the input or classes."""
    import torch

    h, w = spec.input.hw
    x = torch.zeros(2, spec.input.channels, h, w, device=dev)
    model.eval()
    try:
        with torch.inference_mode():
            y = model(x)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadInputError(f"{arch} cannot take a {h}x{w} input: {first}") from e
    if not isinstance(y, torch.Tensor) or y.ndim != 2 or y.shape[1] != len(spec.labels):
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise BadInputError(
            f"{arch} outputs {shape}; training needs logits of shape (N, {len(spec.labels)})"
        )
