"""`edgetk train ARCH DATA -o weights.pt`: train a classifier on an ImageFolder."""

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
            help="ImageFolder: root/train/<class>/ + root/val/<class>/, or root/<class>/."
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Checkpoint file (best epoch by val top-1).")
    ] = Path("weights.pt"),
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the training set.")] = 10,
    imgsz: Annotated[
        str | None, typer.Option("--imgsz", help="Input size N or H,W (default: the model's).")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", help="Images per step.")] = 32,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW, cosine).")] = 3e-3,
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
    """Train ARCH on an ImageFolder with augmentation; keep the best checkpoint.

    The checkpoint works with --weights everywhere, e.g.
    `edgetk export zoo:defect-cls --weights weights.pt -o model.onnx`.
    """
    from toolkit.spec import parse_imgsz
    from toolkit.train import train_classifier

    report = train_classifier(
        arch,
        data,
        output,
        epochs=epochs,
        imgsz=parse_imgsz(imgsz),
        batch=batch,
        lr=lr,
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
