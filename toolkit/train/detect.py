"""Train a detector (``zoo:defect-det``) on a YOLO-format set; keep the best by val mAP50.

Inputs come from :func:`toolkit.tasks.preprocess.preprocess` with the model's spec (letterbox
included), after flips / 90-degree turns / brightness jitter on the letterboxed uint8 image,
so the network trains on exactly the pixels ``edgetk predict``, ``val`` and the live loop
give it. The loop is :func:`toolkit.train.loop.fit` with
:class:`~toolkit.train.detect_task.DetectTask`; the loss is in :mod:`toolkit.train.det_loss`.
An exponential moving average (EMA) of the weights is what gets evaluated and saved (steadier
than the raw weights).

The checkpoint (``torch.load(weights_only=True)`` safe, see :mod:`toolkit.train.checkpoint`)::

    {"state_dict": {...}, "labels": [...], "arch": "zoo:defect-det", "imgsz": [h, w],
     "in_chans": 3, "task": "detect", "epoch": 30, "val_map50": 0.9, "val_map50_95": 0.6}
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import BadInputError
from toolkit.fileio import check_output
from toolkit.train.detect_task import DetectTask, DetSplit, load_split
from toolkit.train.loop import Progress, Recipe, fit
from toolkit.train.session import RunReport, report_fields, resolve_device, seeded, with_imgsz

if TYPE_CHECKING:
    import torch

    from toolkit.model.spec import ModelSpec

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class DetectTrainReport(RunReport):
    """What a detection training run did."""

    FIELDS = (
        "arch", "output", "data", "labels", "imgsz", "epochs", "batch", "lr", "device",
        "n_train", "n_val", "best_epoch", "best_val_map50", "best_val_map50_95", "seconds",
        "history",
    )  # fmt: skip

    best_val_map50: float
    best_val_map50_95: float


def train_detector(
    arch: str,
    data: str | Path,
    output: str | Path,
    *,
    imgsz: int | tuple[int, int] | None = None,
    epochs: int = 30,
    batch: int = 16,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    device: str = "cpu",
    threads: int | None = None,
    seed: int = 0,
    force: bool = False,
    progress: Progress | None = None,
) -> DetectTrainReport:
    """Train detector ``arch`` on the YOLO set ``data`` (``data.yaml``); save the best epoch.

    Args:
        arch: a zoo detector (``zoo:defect-det``), built untrained with the set's classes.
        data: ``data.yaml`` or its folder (train and val splits).
        output: the checkpoint file, kept at the epoch with the best val mAP50.
        epochs, batch, lr, weight_decay: AdamW with warmup and cosine decay.
        imgsz: input size (default: the model's).
        device: ``cpu`` or ``cuda[:N]``. threads: torch CPU threads. seed: init, shuffling,
            augmentation. force: overwrite an existing ``output``.
        progress: called as ``progress(done_epochs, epochs, text)`` after each epoch
            (``box 0.512 cls 1.234 val mAP50 0.9000 mAP50-95 0.6000``, then `` best`` on a
            new best epoch); the same line is logged at INFO. Nothing is printed.

    Example:
        >>> r = train_detector("zoo:defect-det", "det/data.yaml", "det.pt", epochs=30)
        >>> r.best_val_map50
        0.93
    """
    from toolkit.data.yolo import load_yolo_set

    if epochs < 1 or batch < 2 or not lr > 0:
        raise BadInputError("--epochs must be >= 1, --batch >= 2 and --lr > 0")
    out = check_output(output, force)
    dev = resolve_device(device)
    arch_ref = _detector(arch)
    ys = load_yolo_set(data)
    t0 = time.perf_counter()
    with seeded(seed, threads):
        model, spec, splits = _prepare(arch_ref, ys, imgsz, dev)
        task = DetectTask(spec, splits, out, arch_ref, batch=batch, seed=seed, device=dev)
        warmup = max(1, min(3 * task.steps, epochs * task.steps // 10))
        recipe = Recipe(
            epochs, lr, weight_decay, warmup, floor=0.02, clip_grad=10.0, ema_decay=0.999
        )
        result = fit(model, task, recipe, _logged(progress))
    sizes = (len(splits[0].images), len(splits[1].images))
    hyper = (epochs, batch, lr)
    fields = report_fields(arch_ref, out, ys.yaml_path, spec, hyper, dev, sizes, result, t0)
    best = {"best_val_map50": result.best["map50"], "best_val_map50_95": result.best["map50_95"]}
    return DetectTrainReport(**fields, **best)


def _detector(arch: str) -> str:
    """The zoo reference of detector ``arch``; a clear error for an unknown or other model."""
    from toolkit.zoo import get_registry

    entry = get_registry().get(arch)
    if entry.spec.task != "detect":
        raise BadInputError(
            f"{arch} is a {entry.spec.task} model; detection training needs a detector"
        )
    return f"zoo:{entry.name}"


def _prepare(
    arch_ref: str, ys: Any, imgsz: int | tuple[int, int] | None, dev: torch.device
) -> tuple[Any, ModelSpec, tuple[DetSplit, DetSplit]]:
    """The untrained detector on ``dev`` (the set's classes), its spec, the loaded splits."""
    import torch

    from toolkit.zoo import create_model

    name = arch_ref.removeprefix("zoo:")
    model, spec = create_model(name, num_classes=len(ys.names), pretrained=False)
    spec = with_imgsz(spec, imgsz).with_changes(labels=ys.names)
    splits = load_split(ys, "train", spec), load_split(ys, "val", spec)
    if not splits[0].images or not splits[1].images:
        raise BadInputError(f"{ys.yaml_path}: the train and val splits need images")
    # channels_last: noticeably faster conv training steps on CPU.
    return model.to(dev, memory_format=torch.channels_last), spec, splits


def _logged(progress: Progress | None) -> Progress:
    """``progress``, with each epoch's line logged at INFO as well."""

    def report(done: int, total: int, text: str) -> None:
        log.info("epoch %d/%d %s", done, total, text)
        if progress is not None:
            progress(done, total, text)

    return report
