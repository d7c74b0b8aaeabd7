"""Detection as a :class:`~toolkit.train.loop.TrainTask`: data, loss and metric.

Images are letterboxed once at load (:func:`load_split`), then flipped, turned by 90 degrees
and brightness-jittered per step with their boxes moved along, and made into tensors by the
shared :func:`~toolkit.tasks.preprocess.preprocess`. The loss is
:func:`~toolkit.train.det_loss.detection_loss`; the best epoch has the best val mAP50.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from toolkit.errors import BadInputError
from toolkit.model.spec import ModelSpec
from toolkit.train.checkpoint import save_checkpoint
from toolkit.train.loop import Epoch, shuffled, steps_per_epoch

if TYPE_CHECKING:
    import torch

    from toolkit.train.det_loss import Targets


@dataclass
class DetSplit:
    """One split in memory, in the network's pixels."""

    images: list[np.ndarray]  # letterboxed uint8, the network's size
    cls: list[np.ndarray]  # int64 [n]
    boxes: list[np.ndarray]  # float32 [n, 4] xyxy in network pixels


def load_split(ys: Any, split: str, spec: ModelSpec) -> DetSplit:
    """Read and letterbox split ``split`` of the YOLO set ``ys``; drop unknown classes."""
    from toolkit.tasks.preprocess import as_bgr, letterbox

    out = DetSplit([], [], [])
    for path, cls, xyxy in ys.samples(split):
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise BadInputError(f"cannot read image {path}")
        img = as_bgr(img, spec.input.channels)
        h0, w0 = img.shape[:2]
        lb, meta = letterbox(img, spec.input.hw, spec.preprocess.pad_value)
        b = xyxy * np.array([w0, h0, w0, h0], np.float32)
        b = b * np.array([*meta.gain, *meta.gain], np.float32) + np.array(
            [*meta.offset, *meta.offset], np.float32
        )
        keep = (cls >= 0) & (cls < len(spec.labels)) if spec.labels else cls >= 0
        out.images.append(lb)
        out.cls.append(cls[keep])
        out.boxes.append(b[keep].astype(np.float32))
    return out


def evaluate_detector(
    model: Any, split: DetSplit, spec: ModelSpec, batch: int = 32
) -> dict[str, object]:
    """mAP of a PyTorch detector (``[N, 4+C, A]`` output) on preloaded letterboxed images."""
    import torch

    from toolkit.evaluate.metrics import DetectionMetrics
    from toolkit.tasks.decode import DecodeOptions, decode
    from toolkit.tasks.preprocess import preprocess

    metrics = DetectionMetrics(tuple(spec.labels))
    opts = DecodeOptions(conf=0.001, iou=0.6, max_det=300)
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(split.images), batch):
            x, _ = preprocess(split.images[s : s + batch], spec)
            out = model(torch.from_numpy(x).to(device)).float().cpu().numpy()
            for k, (xyxy, conf, cls) in enumerate(decode(out, "yolov8", opts)):
                metrics.update(xyxy, conf, cls, split.boxes[s + k], split.cls[s + k])
    return metrics.compute()


class DetectTask:
    """Train on ``train`` with augmentation, validate mAP on ``val``."""

    def __init__(
        self,
        spec: ModelSpec,
        splits: tuple[DetSplit, DetSplit],
        out: Path,
        arch: str,
        *,
        batch: int,
        seed: int,
        device: torch.device,
    ) -> None:
        self.spec, (self.train, self.val), self.out, self.arch = spec, splits, out, arch
        self.batch, self.seed, self.device = batch, seed, device
        self.steps = steps_per_epoch(len(self.train.images), batch)

    def batches(self, epoch: int) -> Iterator[tuple[np.ndarray, Targets]]:
        from toolkit.tasks.preprocess import preprocess

        order, rng = shuffled(len(self.train.images), self.batch, self.seed, epoch)
        for k in range(self.steps):
            idx = order[k * self.batch : (k + 1) * self.batch]
            pairs = [_augment(self.train.images[i], self.train.boxes[i], rng) for i in idx]
            x, _ = preprocess([p[0] for p in pairs], self.spec)
            yield x, _collate([p[1] for p in pairs], [self.train.cls[i] for i in idx])

    def loss(self, model: Any, batch: tuple[np.ndarray, Targets]) -> tuple[Any, dict[str, float]]:
        import torch

        from toolkit.train.det_loss import detection_loss

        x, gt = batch
        xt = torch.from_numpy(x).to(self.device, memory_format=torch.channels_last)
        return detection_loss(model.raw(xt), gt.to(self.device))

    def validate(self, model: Any) -> dict[str, float]:
        m = evaluate_detector(model, self.val, self.spec)
        return {"map50": float(m["map50"]), "map50_95": float(m["map50_95"])}  # type: ignore[arg-type]

    def score(self, val: dict[str, float]) -> tuple[float, ...]:
        return (val["map50"],)

    def save(self, model: Any, epoch: int, val: dict[str, float]) -> None:
        save_checkpoint(
            model,
            self.out,
            self.spec,
            self.arch,
            task="detect",
            epoch=int(epoch),
            val_map50=float(val["map50"]),
            val_map50_95=float(val["map50_95"]),
        )

    def history(self, epoch: Epoch) -> dict[str, float]:
        return {
            "box_loss": round(epoch.sums["box"] / epoch.steps, 5),
            "cls_loss": round(epoch.sums["cls"] / epoch.steps, 5),
            "val_map50": round(epoch.val["map50"], 5),
            "val_map50_95": round(epoch.val["map50_95"], 5),
        }

    def status(self, epoch: Epoch) -> str:
        box, cls = epoch.sums["box"] / epoch.steps, epoch.sums["cls"] / epoch.steps
        val = epoch.val
        return f"box {box:.3f} cls {cls:.3f} val mAP50 {val['map50']:.4f} mAP50-95 {val['map50_95']:.4f}"


def _augment(
    img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Flips, 90-degree turns (square inputs) and brightness/contrast, boxes moved along."""
    h, w = img.shape[:2]
    b = boxes.copy()
    if rng.random() < 0.5:
        img = img[:, ::-1]
        b[:, [0, 2]] = w - b[:, [2, 0]]
    if rng.random() < 0.5:
        img = img[::-1]
        b[:, [1, 3]] = h - b[:, [3, 1]]
    if h == w and rng.random() < 0.5:  # transpose: x <-> y
        img = img.transpose(1, 0, 2) if img.ndim == 3 else img.T
        b = b[:, [1, 0, 3, 2]]
    gain, bias = rng.uniform(0.75, 1.25), rng.uniform(-20, 20)
    img = np.clip(img.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img), b


def _collate(boxes: list[np.ndarray], cls: list[np.ndarray]) -> Targets:
    """Pad the images' boxes to the batch's largest count."""
    import torch

    from toolkit.train.det_loss import Targets

    m = max((len(c) for c in cls), default=0)
    gb = torch.zeros(len(cls), m, 4)
    gc = torch.zeros(len(cls), m, dtype=torch.long)
    gm = torch.zeros(len(cls), m, dtype=torch.bool)
    for i, (b, c) in enumerate(zip(boxes, cls, strict=True)):
        gb[i, : len(c)] = torch.from_numpy(b)
        gc[i, : len(c)] = torch.from_numpy(c)
        gm[i, : len(c)] = True
    return Targets(cls=gc, box=gb, mask=gm)
