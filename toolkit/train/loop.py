"""The training loop of :func:`toolkit.train.train_classifier`: epochs, validation, checkpoint.

Batches are augmented uint8 images turned into tensors by the shared
:func:`~toolkit.tasks.preprocess.preprocess`; the best epoch (val top-1, then val loss) is
saved atomically in the checkpoint format that ``--weights`` accepts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toolkit.fileio import atomic_path
from toolkit.model.spec import ModelSpec
from toolkit.train.augment import AugmentConfig, augment
from toolkit.train.data import Split, TrainData

if TYPE_CHECKING:
    import torch
    from rich.console import Console


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and normalization weights (1-D tensors), the usual recipe."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _lr_lambda(total: int, warmup: int) -> Any:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return f


def _norm_momentum(norms: list[Any], momenta: list[float | None], step: int) -> None:
    """BatchNorm running statistics as a plain average over the first steps, then the EMA.

    The running variance starts at 1 and the EMA (momentum 0.1) keeps 0.9**n of it after n
    steps: after a short run that leftover dwarfs the true variance of quiet channels
    (1e-6), and the model in eval mode outputs one class whatever the image. Averaging with
    weight 1/(n+1) first drops the initial value at step 0 (as torch's momentum=None would).
    """
    for m, base in zip(norms, momenta, strict=True):
        if base is not None:
            m.momentum = max(base, 1.0 / (step + 1))


def _batches(
    split: Split,
    spec: ModelSpec,
    order: np.ndarray,
    batch: int,
    rng_seed: list[int] | None,
    aug: AugmentConfig | None,
    workers: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Preprocessed (inputs, targets) batches in ``order``; augmented when ``aug`` is set.

    Each batch draws from its own generator (``rng_seed + [index]``), so the result does not
    depend on ``workers``; with workers, batches are prepared that many steps ahead.
    """
    from toolkit.tasks.preprocess import preprocess

    chunks = [order[i : i + batch] for i in range(0, len(order), batch)]

    def make(k: int) -> tuple[np.ndarray, np.ndarray]:
        idx = chunks[k]
        frames = [split.images[i] for i in idx]
        if aug is not None and rng_seed is not None:
            rng = np.random.default_rng([*rng_seed, k])
            frames = [augment(f, rng, aug) for f in frames]
        x, _ = preprocess(frames, spec)
        return x, split.targets[idx]

    if workers == 0:
        for k in range(len(chunks)):
            yield make(k)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending = [pool.submit(make, k) for k in range(min(len(chunks), workers + 1))]
        for k in range(len(chunks)):
            nxt = k + len(pending)
            result = pending.pop(0).result()
            if nxt < len(chunks):
                pending.append(pool.submit(make, nxt))
            yield result


def _evaluate(
    model: Any, split: Split, spec: ModelSpec, batch: int, dev: torch.device, criterion: Any
) -> tuple[float, float]:
    import torch

    model.eval()
    loss_sum, hits = 0.0, 0
    order = np.arange(len(split))
    with torch.inference_mode():
        for x, y in _batches(split, spec, order, batch, None, None, 0):
            logits = model(torch.from_numpy(x).to(dev, memory_format=torch.channels_last))
            t = torch.from_numpy(y).to(dev)
            loss_sum += float(criterion(logits, t)) * len(y)
            hits += int((logits.argmax(1) == t).sum())
    return loss_sum / len(split), hits / len(split)


def fit(
    model: Any,
    spec: ModelSpec,
    ds: TrainData,
    out: Path,
    *,
    arch_ref: str,
    epochs: int,
    batch: int,
    lr: float,
    weight_decay: float,
    label_smoothing: float,
    augmentation: AugmentConfig,
    workers: int,
    seed: int,
    device: torch.device,
    progress: bool,
    console: Console | None,
) -> dict[str, Any]:
    """Train ``model`` in place; save its best epoch to ``out``.

    Returns:
        The best epoch's ``{"epoch", "val_top1", "val_loss"}`` and ``"history"`` (one dict
        per epoch: train loss/accuracy, val loss/top-1, learning rate, seconds).
    """
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    n = len(ds.train)
    # Drop a last batch of one: BatchNorm cannot normalize a single sample after pooling.
    usable = n - 1 if n > batch and n % batch == 1 else n
    steps = math.ceil(usable / batch)
    opt = torch.optim.AdamW(_param_groups(model, weight_decay), lr=lr)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    total = epochs * steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total, max(1, total // 20)))
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    plain = torch.nn.CrossEntropyLoss()
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": 0, "val_top1": -1.0, "val_loss": math.inf}
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[stats]}"),
        console=console or Console(stderr=True),
        disable=not progress,
    )
    h, w = spec.input.hw
    step = 0
    with bar:
        for epoch in range(1, epochs + 1):
            t_epoch = time.perf_counter()
            task = bar.add_task(f"epoch {epoch}/{epochs}", total=steps, stats="")
            model.train()
            order = np.random.default_rng([seed, epoch]).permutation(n)[:usable]
            loss_sum, hits, seen = 0.0, 0, 0
            batches = _batches(ds.train, spec, order, batch, [seed, epoch], augmentation, workers)
            for x, y in batches:
                _norm_momentum(norms, momenta, step)
                step += 1
                xt = torch.from_numpy(x).to(device, memory_format=torch.channels_last)
                yt = torch.from_numpy(y).to(device)
                logits = model(xt)
                loss = criterion(logits, yt)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += float(loss.detach()) * len(y)
                hits += int((logits.argmax(1) == yt).sum())
                seen += len(y)
                stats = f"loss {loss_sum / seen:.3f} acc {hits / seen:.3f}"
                bar.update(task, advance=1, stats=stats)
            val_loss, val_top1 = _evaluate(model, ds.val, spec, 2 * batch, device, plain)
            improved = (val_top1, -val_loss) > (best["val_top1"], -best["val_loss"])
            if improved:
                best.update(epoch=epoch, val_top1=val_top1, val_loss=val_loss)
                _save(model, out, ds.labels, arch_ref, (h, w), spec.input.channels, epoch, val_top1)
            mark = " [green]best[/green]" if improved else ""
            bar.update(task, stats=f"{stats} | val top1 {val_top1:.3f}{mark}")
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": round(loss_sum / max(1, seen), 5),
                    "train_acc": round(hits / max(1, seen), 5),
                    "val_loss": round(val_loss, 5),
                    "val_top1": round(val_top1, 5),
                    "lr": float(opt.param_groups[0]["lr"]),
                    "seconds": round(time.perf_counter() - t_epoch, 3),
                }
            )
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()
    best["history"] = history
    return best


def _save(
    model: Any,
    out: Path,
    labels: tuple[str, ...],
    arch: str,
    hw: tuple[int, int],
    in_chans: int,
    epoch: int,
    val_top1: float,
) -> None:
    import torch

    ckpt = {
        # contiguous(): plain NCHW tensors, whatever layout training used.
        "state_dict": {
            k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()
        },
        "labels": list(labels),
        "arch": arch,
        "imgsz": [int(hw[0]), int(hw[1])],
        "in_chans": int(in_chans),
        "epoch": int(epoch),
        "val_top1": float(val_top1),
    }
    with atomic_path(out) as tmp:
        torch.save(ckpt, tmp)
