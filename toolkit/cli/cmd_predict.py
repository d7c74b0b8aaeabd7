"""`edgetk predict MODEL SOURCE`: classify or detect on images, folders, globs or video files."""

from __future__ import annotations

import time
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
from toolkit.cli.notes import note_emulated, note_random_weights
from toolkit.errors import BadInputError, ToolkitError

# Annotated copies keep the source's format when OpenCV can write it, else become PNG.
_WRITABLE = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@cli_command
def command(
    model: Annotated[
        str, typer.Argument(help="An .onnx file, or a PyTorch reference with --backend torch.")
    ],
    source: Annotated[
        str, typer.Argument(help="An image, a folder (recursive), a glob or a video file.")
    ],
    backend: BackendOpt = "auto",
    topk: Annotated[int, typer.Option("--topk", help="Classes to report per image.")] = 5,
    conf: Annotated[float, typer.Option("--conf", help="Detection: minimum confidence.")] = 0.25,
    iou: Annotated[float, typer.Option("--iou", help="Detection: NMS IoU threshold.")] = 0.45,
    max_det: Annotated[
        int, typer.Option("--max-det", help="Detection: boxes kept per image.")
    ] = 300,
    classes: Annotated[
        str | None,
        typer.Option(
            "--classes", help="Detection: keep only these classes (ids or names, comma list)."
        ),
    ] = None,
    agnostic: Annotated[
        bool, typer.Option("--agnostic", help="Detection: NMS across classes.")
    ] = False,
    batch: Annotated[int, typer.Option("--batch", help="Images per inference call.")] = 8,
    save: Annotated[
        Path | None, typer.Option("--save", help="Write annotated images to this folder.")
    ] = None,
    video_stride: Annotated[
        int, typer.Option("--video-stride", help="Use every N-th video frame.")
    ] = 1,
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
    """Run a classifier or a detector on images or a video and print the results.

    Classifiers give the top-k classes of each image; detectors (YOLOv8/11, YOLOv5/7, NMS in
    the graph, zoo:defect-det) give boxes in the original image's pixels.
    """
    from toolkit.backends import open_session
    from toolkit.data.images import iter_images
    from toolkit.fileio import check_output_dir
    from toolkit.tasks.base import make_task

    if batch < 1:
        raise BadInputError(f"--batch must be at least 1, got {batch}")
    overrides = make_overrides(
        task, labels, imgsz, channels, color, scale, mean, std, resize, output_format
    )
    # The source is resolved before the model is loaded: a typo fails fast.
    frames = iter_images(source, video_stride=video_stride, strict=strict)
    if save is not None:
        check_output_dir(save, option="--save")  # before the model loads, not at the first image

    results: list[dict[str, Any]] = []
    with open_session(
        model, backend, overrides=overrides, threads=threads, weights=weights,
        model_source=model_source,
    ) as session:  # fmt: skip
        clf = make_task(
            session.spec,
            topk=topk,
            conf=conf,
            iou=iou,
            max_det=max_det,
            classes=_class_ids(classes, session),
            agnostic=agnostic,
        )
        t0 = time.perf_counter()
        names: list[str] = []
        chunk: list[Any] = []
        for name, frame in frames:
            names.append(name)
            chunk.append(frame)
            if len(chunk) == batch:
                results += _run(session, clf, names, chunk, save, source)
                names, chunk = [], []
        if chunk:
            results += _run(session, clf, names, chunk, save, source)
        seconds = time.perf_counter() - t0
        backend_name, emulated = session.backend, session.emulated
        random_weights, recorded_source = bool(session.spec.random_weights), session.spec.source

    if json_out:
        out: dict[str, Any] = {
            "model": model,
            "backend": backend_name,
            "emulated": emulated,
            "results": results,
            "count": len(results),
            "skipped": [s.to_dict() for s in frames.skipped],
        }
        if save is not None:
            out["saved"] = str(save)
        print_json(out)
    else:
        _print_table(results, topk)
        # Wall time: reading and decoding the images is included, as a user of predict sees it.
        per = 1000 * seconds / max(1, len(results))
        console.print(
            f"{len(results)} image(s) in {seconds:.2f} s "
            f"({per:.1f} ms/image, backend {backend_name})"
            + (f"; annotated images in {save}" if save is not None else "")
        )
    if frames.skipped:
        _note_skipped(frames.skipped)
    note_emulated(emulated)
    if random_weights:
        note_random_weights(model, recorded_source)


def _note_skipped(skipped: list[Any]) -> None:
    """The warning line (on the console: stderr with --json); --strict makes it an error."""
    from rich.markup import escape

    from toolkit.data.images import skipped_text

    console.print(f"[yellow]warning:[/yellow] {escape(skipped_text(skipped))}", soft_wrap=True)


def _class_ids(text: str | None, session: Any) -> list[int] | None:
    """``--classes`` as ids checked against the model (the loop's rule); empty means all."""
    from toolkit.tasks.classes import ModelClasses, parse_classes

    ids = parse_classes(text or None, ModelClasses.of(session.spec, session.outputs), "--classes")
    return sorted(ids) if ids else None


def _run(
    session: Any,
    clf: Any,
    names: list[str],
    frames: list[Any],
    save: Path | None,
    source: str,
) -> list[dict[str, Any]]:
    from toolkit.tasks.base import run_task

    out = []
    for name, frame, res in zip(names, frames, run_task(session, clf, frames), strict=True):
        if save is not None:
            _save(save / save_name(name, source), frame, res)
        out.append({"source": name, **res.to_dict()})
    return out


def save_name(name: str, source: str) -> Path:
    """Where an annotated frame goes inside the --save folder.

    Files under a folder source keep their relative path (two ``img.jpg`` in different
    sub-folders do not collide); a video frame becomes ``clip_000012.jpg``.
    """
    frame_no: int | None = None
    if "#frame=" in name:
        name, _, idx = name.rpartition("#frame=")
        frame_no = int(idx)
    path, src = Path(name), Path(source)
    try:
        rel = path.relative_to(src) if src.is_dir() else Path(path.name)
    except ValueError:
        rel = Path(path.name)
    if frame_no is not None:
        return rel.with_name(f"{rel.stem}_{frame_no:06d}.jpg")
    suffix = rel.suffix.lower()
    return rel if suffix in _WRITABLE else rel.with_suffix(".png")


def _save(path: Path, frame: Any, result: Any) -> None:
    import cv2

    from toolkit.fileio import atomic_write_bytes
    from toolkit.tasks.annotate import draw_classification, draw_detections
    from toolkit.tasks.detect import Detections

    if isinstance(result, Detections):
        img = draw_detections(frame, result)
    else:
        img = draw_classification(frame, result)
    ok, buf = cv2.imencode(path.suffix, img)
    if not ok:
        raise ToolkitError(f"could not encode the annotated image {path}")
    atomic_write_bytes(path, buf.tobytes())


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
