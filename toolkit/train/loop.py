"""The one training loop: epochs of AdamW steps, warm-up + cosine LR, optional EMA, best kept.

Classification and detection differ only in what a :class:`TrainTask` brings: its batches,
its loss, its validation metric and its checkpoint. :func:`fit` does the rest: the optimizer
(no weight decay on 1-D tensors), the schedule (``LinearLR`` warm-up, then
``CosineAnnealingLR`` down to ``floor`` times the peak, chained by ``SequentialLR``), the
optional EMA of the weights (``AveragedModel``), validation after every epoch, the best
epoch's checkpoint, the per-epoch history and timing, and the progress callback.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch

#: ``progress(done_epochs, total_epochs, text)``, called after each epoch.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Recipe:
    """How to optimize: AdamW at peak ``lr``, a linear warm-up, then cosine decay.

    Attributes:
        epochs: passes over the training set.
        lr: peak learning rate.
        weight_decay: AdamW weight decay (not on biases and normalization weights).
        warmup: warm-up steps, the rate rising linearly to ``lr``.
        floor: the final rate, as a fraction of ``lr``.
        clip_grad: largest gradient norm (None: no clipping).
        ema_decay: evaluate and save an EMA of the weights with this decay, ramped up over
            the first ``ema_ramp`` steps (None: the raw weights).
        ema_ramp: steps over which the EMA decay rises to ``ema_decay``.
        bn_average: BatchNorm running statistics start as a plain average (see
            :func:`_norm_momentum`).
    """

    epochs: int
    lr: float
    weight_decay: float
    warmup: int
    floor: float
    clip_grad: float | None = None
    ema_decay: float | None = None
    ema_ramp: float = 100.0
    bn_average: bool = False


@dataclass(frozen=True)
class Epoch:
    """One finished epoch, for the task to describe: summed step stats, val metrics, LR."""

    number: int
    sums: dict[str, float]
    steps: int
    val: dict[str, float]
    lr: float


class TrainTask(Protocol):
    """What a kind of training brings to :func:`fit`: data, loss, metric and checkpoint."""

    steps: int  # optimizer steps per epoch

    def batches(self, epoch: int) -> Iterable[Any]:
        """The training batches of epoch ``epoch`` (1-based), ``steps`` of them."""
        ...

    def loss(self, model: Any, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss to minimize and the numbers to sum over the epoch."""
        ...

    def validate(self, model: Any) -> dict[str, float]:
        """The validation metrics of ``model``."""
        ...

    def score(self, val: dict[str, float]) -> tuple[float, ...]:
        """What the best epoch maximizes (compared as a tuple)."""
        ...

    def save(self, model: Any, epoch: int, val: dict[str, float]) -> None:
        """Write the checkpoint of a new best epoch."""
        ...

    def history(self, epoch: Epoch) -> dict[str, float]:
        """The epoch's history fields (``epoch`` and ``seconds`` are added around them)."""
        ...

    def status(self, epoch: Epoch) -> str:
        """A short line for the progress callback, e.g. ``loss 0.123 acc 0.910``."""
        ...


@dataclass(frozen=True)
class FitResult:
    """The best epoch (1-based), its val metrics and one history row per epoch."""

    best_epoch: int
    best: dict[str, float]
    history: list[dict[str, float]]


def fit(model: Any, task: TrainTask, recipe: Recipe, progress: Progress | None = None) -> FitResult:
    """Train ``model`` in place on ``task``; the task saves each new best epoch."""
    import torch

    opt = torch.optim.AdamW(_param_groups(model, recipe.weight_decay), lr=recipe.lr)
    sched = _scheduler(opt, recipe, recipe.epochs * task.steps)
    ema = _ema(model, recipe)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    history: list[dict[str, float]] = []
    best_epoch, best = 0, {}
    best_score: tuple[float, ...] | None = None
    step = 0
    for number in range(1, recipe.epochs + 1):
        t_epoch = time.perf_counter()
        model.train()
        sums: dict[str, float] = {}
        for batch in task.batches(number):
            if recipe.bn_average:
                _norm_momentum(norms, momenta, step)
            step += 1
            loss, stats = task.loss(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.clip_grad is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_grad)
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            for key, value in stats.items():
                sums[key] = sums.get(key, 0.0) + value
        trained = model if ema is None else ema.module
        val = task.validate(trained)
        score = task.score(val)
        improved = best_score is None or score > best_score  # the first epoch always saves
        if improved:
            best_epoch, best, best_score = number, val, score
            task.save(trained, number, val)
        epoch = Epoch(number, sums, task.steps, val, float(opt.param_groups[0]["lr"]))
        seconds = round(time.perf_counter() - t_epoch, 3)
        history.append({"epoch": number, **task.history(epoch), "seconds": seconds})
        if progress is not None:
            progress(number, recipe.epochs, task.status(epoch) + (" best" if improved else ""))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()
    return FitResult(best_epoch, best, history)


def steps_per_epoch(n: int, batch: int) -> int:
    """Optimizer steps for ``n`` images (a last batch of one is dropped, see :func:`shuffled`)."""
    return math.ceil(_usable(n, batch) / batch)


def shuffled(n: int, batch: int, seed: int, epoch: int) -> tuple[Any, Any]:
    """Epoch ``epoch``'s image order and the generator that drew it (for augmentation).

    A last batch of one is dropped: BatchNorm cannot normalize a single sample after pooling.
    """
    import numpy as np

    rng = np.random.default_rng([seed, epoch])
    return rng.permutation(n)[: _usable(n, batch)], rng


def _usable(n: int, batch: int) -> int:
    return n - 1 if n > batch and n % batch == 1 else n


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


def _scheduler(opt: Any, recipe: Recipe, total: int) -> Any:
    """Per step: ``(step + 1) / warmup`` of the peak, then cosine from the peak to the floor."""
    from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

    w = recipe.warmup
    warmup = LinearLR(opt, start_factor=1 / w, end_factor=1.0, total_iters=max(1, w - 1))
    cosine = CosineAnnealingLR(opt, T_max=max(1, total - w), eta_min=recipe.floor * recipe.lr)
    return SequentialLR(opt, [warmup, cosine], milestones=[w])


def _ema(model: Any, recipe: Recipe) -> Any:
    """``AveragedModel`` of weights and buffers; its decay ramps up as in YOLOv5/v8.

    The average starts as the model itself (one update before any step), so after ``k``
    steps the ``k``-th update uses decay ``ema_decay * (1 - exp(-k / ema_ramp))``; integer
    buffers (BatchNorm's batch count) are copied.
    """
    if recipe.ema_decay is None:
        return None
    import torch
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    decay, ramp = recipe.ema_decay, recipe.ema_ramp

    def update(averaged: list[Any], current: list[Any], n: torch.Tensor) -> None:
        if not averaged[0].dtype.is_floating_point:
            torch._foreach_copy_(averaged, current)
            return
        get_ema_multi_avg_fn(decay * (1 - math.exp(-int(n) / ramp)))(averaged, current, n)

    ema = AveragedModel(model, multi_avg_fn=update, use_buffers=True)
    ema.update_parameters(model)
    return ema


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
