"""`edgetk val MODEL DATA`: classifier accuracy on an ImageFolder (top-1, top-5, per class), or
detector mAP50 / mAP50-95 / precision / recall on a YOLO-format set (``data.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from toolkit.cli.common import (
    BackendOpt,
    ChannelsOpt,
    ColorOpt,
    ImgszOpt,
    JsonOpt,
    LabelsOpt,
    MeanOpt,
    ModelSourceOpt,
    OutputFormatOpt,
    ResizeOpt,
    ScaleOpt,
    StdOpt,
    TaskOpt,
    ThreadsOpt,
    VerboseOpt,
    WeightsOpt,
    cli_command,
    console,
    make_overrides,
    print_json,
)
from toolkit.cli.notes import note_emulated
from toolkit.errors import BadInputError


@cli_command
def command(
    model: Annotated[
        str, typer.Argument(help="An .onnx file, or a PyTorch reference with --backend torch.")
    ],
    data: Annotated[
        str,
        typer.Argument(help="An ImageFolder (root/<class>/<images>) or a YOLO data.yaml."),
    ],
    backend: BackendOpt = "auto",
    batch: Annotated[int, typer.Option("--batch", help="Images per inference call.")] = 16,
    split: Annotated[
        str, typer.Option("--split", help="Detection: the data.yaml split to score.")
    ] = "val",
    conf: Annotated[
        float, typer.Option("--conf", help="Detection: minimum confidence kept.")
    ] = 0.001,
    iou: Annotated[float, typer.Option("--iou", help="Detection: NMS IoU threshold.")] = 0.6,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="An unreadable image is an error (exit 2), not skipped and counted."
        ),
    ] = False,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = None,
    weights: WeightsOpt = None,
    model_source: ModelSourceOpt = None,
    task: TaskOpt = None,
    labels: LabelsOpt = None,
    imgsz: ImgszOpt = None,
    channels: ChannelsOpt = None,
    color: ColorOpt = None,
    scale: ScaleOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    resize: ResizeOpt = None,
    output_format: OutputFormatOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Measure top-1 / top-5 accuracy on an image folder, or mAP on a YOLO detection set."""
    from toolkit.backends import open_session
    from toolkit.data.imagefolder import ImageFolder
    from toolkit.data.yolo import is_yolo_set
    from toolkit.evaluate.classify import validate_classifier
    from toolkit.tasks.base import make_task

    if batch < 1:
        raise BadInputError(f"--batch must be at least 1, got {batch}")
    overrides = make_overrides(
        task, labels, imgsz, channels, color, scale, mean, std, resize, output_format
    )
    root = Path(data)
    if is_yolo_set(root):
        _val_detection(
            model, root, backend, overrides, threads, weights, batch, split, conf, iou, json_out,
            model_source, strict,
        )  # fmt: skip
        return
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "not found"
        raise BadInputError(
            f"data set {what}: {data} (expected an ImageFolder: root/<class>/<images>)"
        )

    with open_session(
        model, backend, overrides=overrides, threads=threads, weights=weights,
        model_source=model_source,
    ) as session:  # fmt: skip
        if session.spec.task == "detect":
            raise BadInputError(
                f"{model} is a detection model: validate it on a YOLO-format set (data.yaml)"
            )
        make_task(session.spec)
        ds = ImageFolder(root, labels=session.spec.labels or None)
        with _Progress(len(ds)) as advance:
            result = validate_classifier(session, ds, batch=batch, progress=advance, strict=strict)
        backend_name, emulated = session.backend, session.emulated

    _note_skipped(result)
    note_emulated(emulated)
    if json_out:
        print_json({"model": model, "backend": backend_name, "emulated": emulated, **result})
        return
    _print_report(result)


def _val_detection(
    model: str,
    root: Path,
    backend: str,
    overrides: Any,
    threads: int | None,
    weights: str | None,
    batch: int,
    split: str,
    conf: float,
    iou: float,
    json_out: bool,
    model_source: str | None = None,
    strict: bool = False,
) -> None:
    from toolkit.backends import open_session
    from toolkit.data.yolo import data_yaml, load_yolo_set
    from toolkit.evaluate.detect import validate_detector

    root = data_yaml(root)
    ys = load_yolo_set(root)
    n = len(ys.images(split))
    with open_session(
        model, backend, overrides=overrides, threads=threads, weights=weights,
        model_source=model_source,
    ) as session:  # fmt: skip
        if session.spec.task != "detect":
            raise BadInputError(
                f"{model} is a {session.spec.task} model; a YOLO-format set needs a detector "
                "(pass --task detect if it is one)"
            )
        with _Progress(n) as advance:
            result = validate_detector(
                session, ys.yaml_path, split, batch=batch, conf=conf, iou=iou, progress=advance,
                strict=strict,
            )  # fmt: skip
        backend_name, emulated = session.backend, session.emulated
    _note_skipped(result)
    note_emulated(emulated)
    if json_out:
        print_json({"model": model, "backend": backend_name, "emulated": emulated, **result})
        return
    _print_detection_report(result)


def _note_skipped(result: dict[str, Any]) -> None:
    """``skipped 1: zz.png: cannot decode``: unreadable images are left out (--strict: exit 2)."""
    from rich.markup import escape

    from toolkit.data.images import SkippedImage, skipped_text

    skipped = [SkippedImage(s["source"], s["reason"]) for s in result.get("skipped", [])]
    if skipped:
        console.print(f"[yellow]warning:[/yellow] {escape(skipped_text(skipped))}", soft_wrap=True)


def _print_detection_report(result: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    for col in ("class", "instances", "P", "R", "mAP50", "mAP50-95"):
        table.add_column(col, justify="left" if col == "class" else "right")

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    table.add_row(
        "all",
        str(result["instances"]),
        f(result["precision"]),
        f(result["recall"]),
        f(result["map50"]),
        f(result["map50_95"]),
    )
    for row in result["per_class"]:
        table.add_row(
            row["label"],
            str(row["instances"]),
            f(row["precision"]),
            f(row["recall"]),
            f(row["ap50"]),
            f(row["ap50_95"]),
        )
    console.print(table)
    console.print(
        f"mAP50 {result['map50']:.3f}  mAP50-95 {result['map50_95']:.3f}  "
        f"{result['images']} images ({result['seconds']:.2f} s, "
        f"{result['images_per_second'] or 0:.1f} images/s)"
    )


class _Progress:
    """A rich progress bar on a terminal; a no-op otherwise (CI logs, --json pipes)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: Any = None

    def __enter__(self) -> Any:
        if not console.is_terminal:
            return None
        from rich.progress import Progress

        self.bar = Progress(console=console, transient=True)
        self.bar.start()
        job = self.bar.add_task("validating", total=self.total)
        return lambda done, total: self.bar.update(job, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _print_report(result: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    table.add_column("class")
    table.add_column("n", justify="right")
    table.add_column("top-1", justify="right")
    for label, row in result["per_class"].items():
        table.add_row(label, str(row["n"]), _pct(row["top1"]))
    console.print(table)
    top5 = result.get("top5")
    top5_text = _pct(top5) if top5 is not None else f"n/a ({len(result['classes'])} classes)"
    console.print(
        f"top-1 {_pct(result['top1'])}  top-5 {top5_text}  n={result['n']}  "
        f"({result['seconds']:.2f} s, {result['images_per_second'] or 0:.1f} images/s)"
    )
