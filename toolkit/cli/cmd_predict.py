"""`edgetk predict MODEL SOURCE`: classify or detect on images, folders, globs or video files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from toolkit.cli import options as opt
from toolkit.cli import tile_options as tile_opt
from toolkit.cli.common import cli_command, console, print_json
from toolkit.cli.notes import note_emulated, note_random_weights, note_skipped
from toolkit.cli.station_options import SquareOpt
from toolkit.model.spec import SpecOverrides

SourceArg = Annotated[
    str, typer.Argument(help="An image, a folder (recursive), a glob or a video file.")
]
TopkOpt = Annotated[int, typer.Option("--topk", help="Classes to report per image.")]
ConfOpt = Annotated[float, typer.Option("--conf", help="Detection: minimum confidence.")]
MaxDetOpt = Annotated[int, typer.Option("--max-det", help="Detection: boxes kept per image.")]
ClassesOpt = Annotated[
    str | None,
    typer.Option(
        "--classes", help="Detection: keep only these classes (ids or names, comma list)."
    ),
]
AgnosticOpt = Annotated[bool, typer.Option("--agnostic", help="Detection: NMS across classes.")]
SaveOpt = Annotated[
    Path | None, typer.Option("--save", help="Write annotated images to this folder.")
]
VideoStrideOpt = Annotated[int, typer.Option("--video-stride", help="Use every N-th video frame.")]


@cli_command
@opt.spec_options()
def command(
    model: opt.RunModelArg,
    source: SourceArg,
    backend: opt.BackendOpt = "auto",
    topk: TopkOpt = 5,
    conf: ConfOpt = 0.25,
    iou: opt.DetIouOpt = 0.45,
    max_det: MaxDetOpt = 300,
    classes: ClassesOpt = None,
    agnostic: AgnosticOpt = False,
    batch: opt.ImageBatchOpt = 8,
    save: SaveOpt = None,
    video_stride: VideoStrideOpt = 1,
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
    """Run a classifier or a detector on images or a video and print the results.

    Classifiers give the top-k classes of each image; detectors (YOLOv8/11, YOLOv5/7, NMS in
    the graph, zoo:defect-det) give boxes in the original image's pixels.
    """
    from toolkit.tasks.predict import predict

    grid = tile_opt.tile_grid(tiles, tile, overlap)
    report = predict(
        model, source, backend=backend, overrides=spec, threads=threads, weights=weights,
        model_source=model_source, topk=topk, conf=conf, iou=iou, max_det=max_det,
        classes=classes, agnostic=agnostic, batch=batch, save=save, video_stride=video_stride,
        strict=strict, square=square, tiles=grid,
    )  # fmt: skip
    if json_out:
        print_json({"model": model, **report.to_dict()})
    else:
        _print_table([r.to_dict() for r in report.images], topk)
        # Wall time: reading and decoding the images is included, as a user of predict sees it.
        n, seconds = len(report.images), report.seconds
        console.print(
            f"{n} image(s) in {seconds:.2f} s ({1000 * seconds / max(1, n):.1f} ms/image, "
            f"backend {report.backend})"
            + (f"; annotated images in {save}" if save is not None else "")
        )
    note_skipped(report.skipped)
    note_emulated(report.emulated)
    if report.spec.random_weights:
        note_random_weights(model, report.spec.source)


def _print_table(results: list[dict[str, Any]], topk: int) -> None:
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    table.add_column("source", overflow="fold")
    if any("detections" in r for r in results):
        table.add_column("n", justify="right")
        table.add_column("detections", overflow="fold")
        for r in results:
            dets = r["detections"]
            text = ", ".join(
                f"{d['label']} {d['confidence']:.2f} [{', '.join(f'{v:.0f}' for v in d['xyxy'])}]"
                for d in dets[:10]
            ) + (f", ... ({len(dets) - 10} more)" if len(dets) > 10 else "")
            table.add_row(r["source"], str(len(dets)), text)
        console.print(table)
        return
    k = max((len(r["top"]) for r in results), default=topk)
    table.add_column(f"top-{k}")
    for r in results:
        top = ", ".join(f"{t['label']} {t['confidence']:.3f}" for t in r["top"])
        table.add_row(r["source"], top)
    console.print(table)
