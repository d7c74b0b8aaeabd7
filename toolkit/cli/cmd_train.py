"""`edgetk train ARCH DATA -o weights.pt`: train a classifier on an ImageFolder, or a
detector (``zoo:defect-det``) on a YOLO-format set (``data.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from toolkit.cli import options as opt
from toolkit.cli.common import cli_command, console, print_json
from toolkit.cli.progress import ProgressBars

ArchArg = Annotated[
    str, typer.Argument(help="Architecture: zoo:NAME (or NAME), or a model reference.")
]
DataArg = Annotated[
    Path,
    typer.Argument(
        help="ImageFolder: root/train/<class>/ + root/val/<class>/, or root/<class>/; "
        "or a YOLO data.yaml (detection)."
    ),
]
OutputOpt = Annotated[
    Path,
    typer.Option("--output", "-o", help="Checkpoint file (best epoch by val top-1 / mAP50)."),
]
EpochsOpt = Annotated[int, typer.Option("--epochs", help="Passes over the training set.")]
ImgszOpt = Annotated[
    str | None, typer.Option("--imgsz", help="Input size N or H,W (default: the model's).")
]
BatchOpt = Annotated[
    int | None, typer.Option("--batch", help="Images per step (default: 32; detect: 16).")
]
LrOpt = Annotated[
    float | None,
    typer.Option("--lr", help="Peak learning rate, AdamW, cosine (default: 3e-3; detect: 2e-3)."),
]
ValFractionOpt = Annotated[
    float, typer.Option("--val-fraction", help="Held out per class when there is no val/.")
]
WorkersOpt = Annotated[
    int, typer.Option("--workers", help="Threads preparing batches ahead (0: in line).")
]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", help="PyTorch CPU threads (default: cores).")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for init, shuffling, augmentation.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu or cuda[:N].")]


@cli_command
def command(
    arch: ArchArg,
    data: DataArg,
    output: OutputOpt = Path("weights.pt"),
    epochs: EpochsOpt = 10,
    imgsz: ImgszOpt = None,
    batch: BatchOpt = None,
    lr: LrOpt = None,
    val_fraction: ValFractionOpt = 0.2,
    workers: WorkersOpt = 0,
    threads: ThreadsOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    force: opt.ForceOpt = False,
    json_out: opt.JsonOpt = False,
    verbose: opt.VerboseOpt = False,
) -> None:
    """Train ARCH on an ImageFolder or a YOLO set with augmentation; keep the best checkpoint.

    A YOLO data.yaml, or a detector architecture (zoo:defect-det), trains a detector (best
    epoch by val mAP50).

    The checkpoint works with --weights everywhere, e.g.
    `edgetk export zoo:defect-cls --weights weights.pt -o model.onnx`.
    """
    from toolkit.model.spec import parse_imgsz
    from toolkit.train import train_classifier
    from toolkit.train.detect import train_detector

    detect = _is_detection(arch, data)
    common: dict[str, Any] = {"epochs": epochs, "imgsz": parse_imgsz(imgsz), "threads": threads,
                              "seed": seed, "device": device, "force": force}  # fmt: skip
    if detect:
        options = {"batch": 16 if batch is None else batch, "lr": 2e-3 if lr is None else lr}
    else:
        options = {"batch": 32 if batch is None else batch, "lr": 3e-3 if lr is None else lr,
                   "val_fraction": val_fraction, "workers": workers}  # fmt: skip
    train = train_detector if detect else train_classifier
    with ProgressBars(transient=False) as bars:
        report = train(arch, data, output, **common, **options, progress=bars.epochs())
    if json_out:
        print_json(report.to_dict())
    else:
        console.print(_detector_line(report) if detect else _classifier_line(report))


def _is_detection(arch: str, data: Path) -> bool:
    """A YOLO set (``data.yaml``) or a zoo architecture whose task is ``detect``."""
    from toolkit.data.yolo import is_yolo_set
    from toolkit.zoo import get_registry

    if is_yolo_set(data):
        return True
    registry = get_registry()
    return arch in registry and registry.get(arch).spec.task == "detect"


def _classifier_line(report: Any) -> str:
    return (
        f"best val top-1 [bold]{report.best_val_top1:.3f}[/bold] at epoch {report.best_epoch}"
        f"/{report.epochs} ({report.n_train} train, {report.n_val} val images, "
        f"{len(report.labels)} classes, {report.seconds:.1f} s) -> {report.output}"
    )


def _detector_line(report: Any) -> str:
    return (
        f"best val mAP50 [bold]{report.best_val_map50:.3f}[/bold] "
        f"(mAP50-95 {report.best_val_map50_95:.3f}) at epoch {report.best_epoch}/{report.epochs} "
        f"({report.n_train} train, {report.n_val} val images, {len(report.labels)} classes, "
        f"{report.seconds:.1f} s) -> {report.output}"
    )
