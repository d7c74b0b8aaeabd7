"""Train a detector (``zoo:defect-det``) on a YOLO-format set; keep the best by val mAP50.

Inputs come from :func:`toolkit.tasks.preprocess.preprocess` with the model's spec (letterbox
included), after flips / 90-degree turns / brightness jitter on the letterboxed uint8 image,
so the network trains on exactly the pixels ``edgetk predict``, ``val`` and the live loop
give it. The loss is in :mod:`toolkit.train.det_loss`; an exponential moving average (EMA) of
the weights is what gets evaluated and saved (steadier than the raw weights).

The checkpoint (``torch.load(weights_only=True)`` safe)::

    {"state_dict": {...}, "labels": [...], "arch": "zoo:defect-det", "imgsz": [h, w],
     "in_chans": 3, "task": "detect", "epoch": 30, "val_map50": 0.9, "val_map50_95": 0.6}
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from toolkit.errors import BadInputError
from toolkit.fileio import atomic_path, check_output

if TYPE_CHECKING:
    import torch
    from rich.console import Console

    from toolkit.model.spec import ModelSpec

log = logging.getLogger(__name__)


@dataclass
class DetectTrainReport:
    """What a detection training run did."""

    arch: str
    output: str
    data: str
    labels: list[str]
    imgsz: list[int]
    epochs: int
    batch: int
    lr: float
    device: str
    n_train: int
    n_val: int
    best_epoch: int
    best_val_map50: float
    best_val_map50_95: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Split:
    images: list[np.ndarray]  # letterboxed uint8, the network's size
    cls: list[np.ndarray]  # int64 [n]
    boxes: list[np.ndarray]  # float32 [n, 4] xyxy in network pixels


def _load_split(ys: Any, split: str, spec: ModelSpec) -> _Split:
    from toolkit.tasks.preprocess import as_bgr, letterbox

    hw = spec.input.hw
    out = _Split([], [], [])
    for path, cls, xyxy in ys.samples(split):
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise BadInputError(f"cannot read image {path}")
        img = as_bgr(img, spec.input.channels)
        h0, w0 = img.shape[:2]
        lb, meta = letterbox(img, hw, spec.preprocess.pad_value)
        b = xyxy * np.array([w0, h0, w0, h0], np.float32)
        b = b * np.array([*meta.gain, *meta.gain], np.float32) + np.array(
            [*meta.offset, *meta.offset], np.float32
        )
        keep = (cls >= 0) & (cls < len(spec.labels)) if spec.labels else cls >= 0
        out.images.append(lb)
        out.cls.append(cls[keep])
        out.boxes.append(b[keep].astype(np.float32))
    return out


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


def _collate(boxes: list[np.ndarray], cls: list[np.ndarray]) -> tuple[Any, Any, Any]:
    import torch

    m = max((len(c) for c in cls), default=0)
    gb = torch.zeros(len(cls), m, 4)
    gc = torch.zeros(len(cls), m, dtype=torch.long)
    gm = torch.zeros(len(cls), m, dtype=torch.bool)
    for i, (b, c) in enumerate(zip(boxes, cls, strict=True)):
        gb[i, : len(c)] = torch.from_numpy(b)
        gc[i, : len(c)] = torch.from_numpy(c)
        gm[i, : len(c)] = True
    return gb, gc, gm


def evaluate_detector(
    model: Any, split: _Split, spec: ModelSpec, batch: int = 32
) -> dict[str, object]:
    """mAP of a PyTorch detector (``[N, 4+C, A]`` output) on preloaded letterboxed images."""
    import torch

    from toolkit.evaluate.metrics import DetectionMetrics
    from toolkit.tasks.decode import DecodeOptions, decode
    from toolkit.tasks.preprocess import preprocess

    metrics = DetectionMetrics(tuple(spec.labels))
    opts = DecodeOptions(conf=0.001, iou=0.6, max_det=300)
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(split.images), batch):
            x, _ = preprocess(split.images[s : s + batch], spec)
            out = model(torch.from_numpy(x)).float().numpy()
            for k, (xyxy, conf, cls) in enumerate(decode(out, "yolov8", opts)):
                metrics.update(xyxy, conf, cls, split.boxes[s + k], split.cls[s + k])
    return metrics.compute()


def train_detector(
    arch: str,
    data: str | Path,
    output: str | Path,
    *,
    epochs: int = 30,
    imgsz: int | tuple[int, int] | None = None,
    batch: int = 16,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    threads: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    force: bool = False,
    progress: bool = True,
    console: Console | None = None,
) -> DetectTrainReport:
    """Train detector ``arch`` on the YOLO set ``data`` (``data.yaml``); save the best epoch.

    Args:
        arch: a zoo detector (``zoo:defect-det``), built untrained with the set's classes.
        data: ``data.yaml`` or its folder (train and val splits).
        output: the checkpoint file, kept at the epoch with the best val mAP50.
        epochs, batch, lr, weight_decay: AdamW with warmup and cosine decay.
        imgsz: input size (default: the model's).
        threads: torch CPU threads. seed: init, shuffling, augmentation.

    Example:
        >>> r = train_detector("zoo:defect-det", "det/data.yaml", "det.pt", epochs=30)
        >>> r.best_val_map50
        0.93
    """
    import torch

    from toolkit.data.yolo import load_yolo_set
    from toolkit.model.spec import SpecOverrides
    from toolkit.zoo import create_model, get_registry

    if epochs < 1 or batch < 2 or not lr > 0:
        raise BadInputError("--epochs must be >= 1, --batch >= 2 and --lr > 0")
    out = check_output(output, force)
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise BadInputError(f"unknown device '{device}' (expected cpu or cuda[:N])") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BadInputError(f"device '{device}' requested but PyTorch sees no CUDA GPU")
    entry = get_registry().get(arch)
    if entry.spec.task != "detect":
        raise BadInputError(
            f"{arch} is a {entry.spec.task} model; detection training needs a detector"
        )
    ys = load_yolo_set(data)
    t0 = time.perf_counter()
    old_threads = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model, spec = create_model(entry.name, num_classes=len(ys.names), pretrained=False)
            if imgsz is not None:
                size = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
                spec = SpecOverrides(imgsz=size).apply(spec)  # type: ignore[arg-type]
            spec = spec.with_changes(labels=ys.names)
            train = _load_split(ys, "train", spec)
            val = _load_split(ys, "val", spec)
            if not train.images or not val.images:
                raise BadInputError(f"{ys.yaml_path}: the train and val splits need images")
            # channels_last: noticeably faster conv training steps on CPU.
            model = model.to(dev, memory_format=torch.channels_last)
            best = _fit(
                model,
                spec,
                train,
                val,
                out,
                f"zoo:{entry.name}",
                epochs=epochs,
                batch=batch,
                lr=lr,
                weight_decay=weight_decay,
                seed=seed,
                device=dev,
                progress=progress,
                console=console,
            )
    finally:
        torch.set_num_threads(old_threads)
    return DetectTrainReport(
        arch=f"zoo:{entry.name}",
        output=str(out),
        data=str(ys.yaml_path),
        labels=list(ys.names),
        imgsz=list(spec.input.hw),
        epochs=epochs,
        batch=batch,
        lr=lr,
        device=str(dev),
        n_train=len(train.images),
        n_val=len(val.images),
        best_epoch=best["epoch"],
        best_val_map50=best["map50"],
        best_val_map50_95=best["map50_95"],
        seconds=round(time.perf_counter() - t0, 2),
        history=best["history"],
    )


def _fit(
    model: Any,
    spec: ModelSpec,
    train: _Split,
    val: _Split,
    out: Path,
    arch: str,
    *,
    epochs: int,
    batch: int,
    lr: float,
    weight_decay: float,
    seed: int,
    device: torch.device,
    progress: bool,
    console: Console | None,
) -> dict[str, Any]:
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from toolkit.tasks.preprocess import preprocess
    from toolkit.train.det_loss import detection_loss

    n = len(train.images)
    usable = n - 1 if n > batch and n % batch == 1 else n  # no BatchNorm step on one image
    steps = math.ceil(usable / batch)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
    )
    total, warmup = epochs * steps, max(1, min(3 * steps, epochs * steps // 10))

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    updates = 0
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": 0, "map50": -1.0, "map50_95": 0.0}
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[stats]}"),
        console=console or Console(stderr=True),
        disable=not progress,
    )
    with bar:
        for epoch in range(1, epochs + 1):
            t_epoch = time.perf_counter()
            task = bar.add_task(f"epoch {epoch}/{epochs}", total=steps, stats="")
            model.train()
            rng = np.random.default_rng([seed, epoch])
            order = rng.permutation(n)[:usable]
            sums = {"box": 0.0, "cls": 0.0}
            for k in range(steps):
                idx = order[k * batch : (k + 1) * batch]
                pairs = [_augment(train.images[i], train.boxes[i], rng) for i in idx]
                x, _ = preprocess([p[0] for p in pairs], spec)
                gb, gc, gm = _collate([p[1] for p in pairs], [train.cls[i] for i in idx])
                xt = torch.from_numpy(x).to(device, memory_format=torch.channels_last)
                dist, logits, anchors = model.raw(xt)
                loss, parts = detection_loss(
                    dist, logits, anchors, gc.to(device), gb.to(device), gm.to(device)
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
                opt.step()
                sched.step()
                updates += 1
                d = 0.999 * (1 - math.exp(-updates / 100))
                with torch.no_grad():
                    for e, p in zip(
                        ema.state_dict().values(), model.state_dict().values(), strict=True
                    ):
                        if e.dtype.is_floating_point:
                            e.mul_(d).add_(p.detach(), alpha=1 - d)
                        else:
                            e.copy_(p)
                for key in sums:
                    sums[key] += parts[key]
                stats = f"box {sums['box'] / (k + 1):.3f} cls {sums['cls'] / (k + 1):.3f}"
                bar.update(task, advance=1, stats=stats)
            m = evaluate_detector(ema, val, spec)
            map50, map5095 = float(m["map50"]), float(m["map50_95"])  # type: ignore[arg-type]
            improved = map50 > best["map50"]
            if improved:
                best.update(epoch=epoch, map50=map50, map50_95=map5095)
                _save(ema, out, spec, arch, epoch, map50, map5095)
            mark = " [green]best[/green]" if improved else ""
            bar.update(task, stats=f"{stats}  val mAP50 {map50:.3f} mAP50-95 {map5095:.3f}{mark}")
            log.info(
                "epoch %d/%d %s val mAP50 %.4f mAP50-95 %.4f", epoch, epochs, stats, map50, map5095
            )
            history.append(
                {
                    "epoch": epoch,
                    "box_loss": round(sums["box"] / steps, 5),
                    "cls_loss": round(sums["cls"] / steps, 5),
                    "val_map50": round(map50, 5),
                    "val_map50_95": round(map5095, 5),
                    "seconds": round(time.perf_counter() - t_epoch, 2),
                }
            )
    best["history"] = history
    return best


def _save(
    model: Any, out: Path, spec: ModelSpec, arch: str, epoch: int, map50: float, map5095: float
) -> None:
    import torch

    ckpt = {
        "state_dict": {
            k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()
        },
        "labels": list(spec.labels),
        "arch": arch,
        "imgsz": [int(v) for v in spec.input.hw],
        "in_chans": int(spec.input.channels),
        "task": "detect",
        "epoch": int(epoch),
        "val_map50": float(map50),
        "val_map50_95": float(map5095),
    }
    with atomic_path(out) as tmp:
        torch.save(ckpt, tmp)
