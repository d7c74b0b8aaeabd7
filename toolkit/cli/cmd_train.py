"""`edgetk train ARCH DATA -o weights.pt`: train a classifier on an ImageFolder, or a
detector (``zoo:defect-det``) on a YOLO-format set (``data.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.common import ForceOpt, JsonOpt, VerboseOpt, cli_command, console, print_json


@cli_command
def command(
    arch: Annotated[
        str, typer.Argument(help="Architecture: zoo:NAME (or NAME), or a model reference.")
    ],
    data: Annotated[
        Path,
        typer.Argument(
            help="ImageFolder: root/train/<class>/ + root/val/<class>/, or root/<class>/; "
            "or a YOLO data.yaml (detection)."
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Checkpoint file (best epoch by val top-1 / mAP50)."),
    ] = Path("weights.pt"),
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the training set.")] = 10,
    imgsz: Annotated[
        str | None, typer.Option("--imgsz", help="Input size N or H,W (default: the model's).")
    ] = None,
    batch: Annotated[
        int | None, typer.Option("--batch", help="Images per step (default: 32; detect: 16).")
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr", help="Peak learning rate, AdamW, cosine (default: 3e-3; detect: 2e-3)."
        ),
    ] = None,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Held out per class when there is no val/.")
    ] = 0.2,
    workers: Annotated[
        int, typer.Option("--workers", help="Threads preparing batches ahead (0: in line).")
    ] = 0,
    threads: Annotated[
        int | None, typer.Option("--threads", help="PyTorch CPU threads (default: cores).")
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed for init, shuffling, augmentation.")
    ] = 0,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda[:N].")] = "cpu",
    force: ForceOpt = False,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Train ARCH on an ImageFolder or a YOLO set with augmentation; keep the best checkpoint.

    A YOLO data.yaml, or a detector architecture (zoo:defect-det), trains a detector (best
    epoch by val mAP50).

    The checkpoint works with --weights everywhere, e.g.
    `edgetk export zoo:defect-cls --weights weights.pt -o model.onnx`.
    """
    from toolkit.model.spec import parse_imgsz
    from toolkit.train import train_classifier

    if _is_detection(arch, data):
        _train_detector(
            arch,
            data,
            output,
            epochs,
            parse_imgsz(imgsz),
            batch,
            lr,
            threads,
            seed,
            device,
            force,
            json_out,
        )
        return

    report = train_classifier(
        arch,
        data,
        output,
        epochs=epochs,
        imgsz=parse_imgsz(imgsz),
        batch=32 if batch is None else batch,
        lr=3e-3 if lr is None else lr,
        val_fraction=val_fraction,
        workers=workers,
        threads=threads,
        seed=seed,
        device=device,
        force=force,
        progress=True,
        console=console,
    )
    if json_out:
        print_json(report.to_dict())
        return
    console.print(
        f"best val top-1 [bold]{report.best_val_top1:.3f}[/bold] at epoch {report.best_epoch}"
        f"/{report.epochs} ({report.n_train} train, {report.n_val} val images, "
        f"{len(report.labels)} classes, {report.seconds:.1f} s) -> {report.output}"
    )


def _is_detection(arch: str, data: Path) -> bool:
    """A YOLO set (``data.yaml``) or a zoo architecture whose task is ``detect``."""
    from toolkit.data.yolo import is_yolo_set
    from toolkit.zoo import get_registry

    if is_yolo_set(data):
        return True
    registry = get_registry()
    return arch in registry and registry.get(arch).spec.task == "detect"


def _train_detector(
    arch: str,
    data: Path,
    output: Path,
    epochs: int,
    imgsz: int | tuple[int, int] | None,
    batch: int | None,
    lr: float | None,
    threads: int | None,
    seed: int,
    device: str,
    force: bool,
    json_out: bool,
) -> None:
    from toolkit.train.detect import train_detector

    report = train_detector(
        arch,
        data,
        output,
        epochs=epochs,
        imgsz=imgsz,
        batch=16 if batch is None else batch,
        lr=2e-3 if lr is None else lr,
        threads=threads,
        seed=seed,
        device=device,
        force=force,
        progress=True,
        console=console,
    )
    if json_out:
        print_json(report.to_dict())
        return
    console.print(
        f"best val mAP50 [bold]{report.best_val_map50:.3f}[/bold] "
        f"(mAP50-95 {report.best_val_map50_95:.3f}) at epoch {report.best_epoch}/{report.epochs} "
        f"({report.n_train} train, {report.n_val} val images, {len(report.labels)} classes, "
        f"{report.seconds:.1f} s) -> {report.output}"
    )
