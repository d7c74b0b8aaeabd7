"""`edgetk val MODEL DATA`: classifier accuracy on an ImageFolder (top-1, top-5, per class), or
detector mAP50 / mAP50-95 / precision / recall on a YOLO-format set (``data.yaml``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from toolkit.cli import options as opt
from toolkit.cli import tile_options as tile_opt
from toolkit.cli.common import cli_command, console, print_json
from toolkit.cli.notes import note_emulated, note_skipped
from toolkit.cli.progress import ProgressBars
from toolkit.cli.station_options import SquareOpt
from toolkit.model.spec import SpecOverrides

DataArg = Annotated[
    str, typer.Argument(help="An ImageFolder (root/<class>/<images>) or a YOLO data.yaml.")
]
SplitOpt = Annotated[str, typer.Option("--split", help="Detection: the data.yaml split to score.")]
ConfOpt = Annotated[float, typer.Option("--conf", help="Detection: minimum confidence kept.")]


@cli_command
@opt.spec_options()
def command(
    model: opt.RunModelArg,
    data: DataArg,
    backend: opt.BackendOpt = "auto",
    batch: opt.ImageBatchOpt = 16,
    split: SplitOpt = "val",
    conf: ConfOpt = 0.001,
    iou: opt.DetIouOpt = 0.6,
    square: SquareOpt = False,
    tiles: tile_opt.TilesOpt = None,
    tile: tile_opt.TileOpt = None,
    overlap: tile_opt.OverlapOpt = 0.2,
    strict: opt.StrictOpt = False,
    json_out: opt.JsonOpt = False,
    threads: opt.ThreadsOpt = None,
    weights: opt.WeightsOpt = None,
    model_source: opt.ModelSourceOpt = None,
    spec: SpecOverrides = opt.GROUP,
    verbose: opt.VerboseOpt = False,
) -> None:
    """Measure top-1 / top-5 accuracy on an image folder, or mAP on a YOLO detection set."""
    from toolkit.evaluate.val import validate

    grid = tile_opt.tile_grid(tiles, tile, overlap)
    with ProgressBars() as bars:
        val = validate(
            model, data, backend=backend, overrides=spec, threads=threads, weights=weights,
            model_source=model_source, batch=batch, split=split, conf=conf, iou=iou,
            strict=strict, progress=bars.stage("validating"), square=square, tiles=grid,
        )  # fmt: skip
    note_skipped(val.result.get("skipped", []))
    note_emulated(val.emulated)
    if json_out:
        print_json({"model": model, **val.to_dict()})
    elif val.task == "detect":
        _print_detection_report(val.result)
    else:
        _print_report(val.result)


def _print_detection_report(result: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    for col in ("class", "instances", "P", "R", "mAP50", "mAP50-95"):
        table.add_column(col, justify="left" if col == "class" else "right")

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    def add(label: str, row: dict[str, Any], ap50: str, ap50_95: str) -> None:
        cells = (row["precision"], row["recall"], row[ap50], row[ap50_95])
        table.add_row(label, str(row["instances"]), *map(f, cells))

    add("all", result, "map50", "map50_95")
    for row in result["per_class"]:
        add(row["label"], row, "ap50", "ap50_95")
    console.print(table)
    console.print(
        f"mAP50 {result['map50']:.3f}  mAP50-95 {result['map50_95']:.3f}  "
        f"{result['images']} images ({result['seconds']:.2f} s, "
        f"{result['images_per_second'] or 0:.1f} images/s)"
    )


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
