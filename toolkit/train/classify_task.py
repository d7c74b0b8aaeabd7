"""Classification as a :class:`~toolkit.train.loop.TrainTask`: data, loss and metric.

Batches are augmented uint8 images turned into tensors by the shared
:func:`~toolkit.tasks.preprocess.preprocess`; the loss is cross-entropy (label smoothing in
training, plain in validation); the best epoch has the best val top-1, then val loss.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toolkit.model.spec import ModelSpec
from toolkit.train.augment import AugmentConfig, augment
from toolkit.train.checkpoint import save_checkpoint
from toolkit.train.data import Split, TrainData
from toolkit.train.loop import Epoch, shuffled, steps_per_epoch

if TYPE_CHECKING:
    import torch


class ClassifyTask:
    """Train on ``data.train`` with augmentation, validate top-1 on ``data.val``."""

    def __init__(
        self,
        spec: ModelSpec,
        data: TrainData,
        out: Path,
        arch: str,
        *,
        batch: int,
        label_smoothing: float,
        augmentation: AugmentConfig,
        workers: int,
        seed: int,
        device: torch.device,
    ) -> None:
        import torch

        self.spec, self.data, self.out, self.arch = spec, data, out, arch
        self.batch, self.augmentation, self.workers = batch, augmentation, workers
        self.seed, self.device = seed, device
        self.steps = steps_per_epoch(len(data.train), batch)
        self.criterion = torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.plain = torch.nn.CrossEntropyLoss()

    def batches(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order, _ = shuffled(len(self.data.train), self.batch, self.seed, epoch)
        seed = [self.seed, epoch]
        train = self.data.train
        return _batches(train, self.spec, order, self.batch, seed, self.augmentation, self.workers)

    def loss(
        self, model: Any, batch: tuple[np.ndarray, np.ndarray]
    ) -> tuple[Any, dict[str, float]]:
        x, y = batch
        logits, t = self._forward(model, x, y)
        loss = self.criterion(logits, t)
        hits = int((logits.argmax(1) == t).sum())
        return loss, {"loss": float(loss.detach()) * len(y), "hits": hits, "seen": len(y)}

    def validate(self, model: Any) -> dict[str, float]:
        import torch

        model.eval()
        split = self.data.val
        loss_sum, hits = 0.0, 0
        order = np.arange(len(split))
        with torch.inference_mode():
            for x, y in _batches(split, self.spec, order, 2 * self.batch, None, None, 0):
                logits, t = self._forward(model, x, y)
                loss_sum += float(self.plain(logits, t)) * len(y)
                hits += int((logits.argmax(1) == t).sum())
        return {"val_loss": loss_sum / len(split), "val_top1": hits / len(split)}

    def score(self, val: dict[str, float]) -> tuple[float, ...]:
        return val["val_top1"], -val["val_loss"]

    def save(self, model: Any, epoch: int, val: dict[str, float]) -> None:
        fields = {"epoch": int(epoch), "val_top1": float(val["val_top1"])}
        save_checkpoint(model, self.out, self.spec, self.arch, **fields)

    def history(self, epoch: Epoch) -> dict[str, float]:
        seen = max(1.0, epoch.sums["seen"])
        return {
            "train_loss": round(epoch.sums["loss"] / seen, 5),
            "train_acc": round(epoch.sums["hits"] / seen, 5),
            "val_loss": round(epoch.val["val_loss"], 5),
            "val_top1": round(epoch.val["val_top1"], 5),
            "lr": epoch.lr,
        }

    def status(self, epoch: Epoch) -> str:
        seen = max(1.0, epoch.sums["seen"])
        loss, acc = epoch.sums["loss"] / seen, epoch.sums["hits"] / seen
        return f"loss {loss:.3f} acc {acc:.3f} val top1 {epoch.val['val_top1']:.3f}"

    def _forward(self, model: Any, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        import torch

        xt = torch.from_numpy(x).to(self.device, memory_format=torch.channels_last)
        return model(xt), torch.from_numpy(y).to(self.device)


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
