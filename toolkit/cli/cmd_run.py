"""`edgetk run MODEL --source SRC`: the live loop on a camera, stream, file or the belt."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from toolkit.cli import options as opt
from toolkit.cli.common import cli_command, console, print_json
from toolkit.cli.line_options import line_options
from toolkit.cli.station_options import station_options

if TYPE_CHECKING:
    from toolkit.line.options import LineOutputs
    from toolkit.live.run import Outputs
    from toolkit.model.spec import SpecOverrides

SOURCE_HELP = (
    "0 (camera index), /dev/video0, a video file, an image folder or glob, rtsp:// or http:// "
    "stream, csi://0 (Jetson CSI), gst:PIPELINE, or synthetic (a conveyor belt)."
)

ModelArg = Annotated[
    str,
    typer.Argument(help="An .onnx file, a PyTorch reference, or a station file (.yaml)."),
]
SourceOpt = Annotated[
    list[str] | None,
    typer.Option("--source", "-s", help=SOURCE_HELP + " Repeat for a station of several."),
]
ConfOpt = Annotated[float, typer.Option("--conf", help="Confidence threshold.")]
IouOpt = Annotated[float, typer.Option("--iou", help="NMS IoU threshold (detection).")]
ClassesOpt = Annotated[
    str | None, typer.Option("--classes", help="Keep only these classes (names or ids).")
]
MaxDetOpt = Annotated[int, typer.Option("--max-det", help="Detections per frame.")]
AgnosticOpt = Annotated[bool, typer.Option("--agnostic", help="Class-agnostic NMS (detection).")]
TopkOpt = Annotated[int, typer.Option("--topk", help="Classes reported (classification).")]
RejectOpt = Annotated[
    str | None,
    typer.Option("--reject", help="Classes meaning NG (default: all but ok/good/normal)."),
]
RoiOpt = Annotated[str | None, typer.Option("--roi", help="Region of interest x,y,w,h in pixels.")]
MaxFramesOpt = Annotated[
    int | None, typer.Option("--max-frames", help="Stop after N processed frames.")
]
DurationOpt = Annotated[float | None, typer.Option("--duration", help="Stop after S seconds.")]
LoopOpt = Annotated[bool, typer.Option("--loop", help="Start a file source again at its end.")]
BatchOpt = Annotated[
    int | None,
    typer.Option("--batch", help="Frames per inference call (default: one per source)."),
]
FpsOpt = Annotated[
    float | None, typer.Option("--fps", help="Frame rate to ask of a camera or the belt.")
]
WidthOpt = Annotated[int | None, typer.Option("--width", help="Camera frame width.")]
HeightOpt = Annotated[int | None, typer.Option("--height", help="Camera frame height.")]
ReconnectOpt = Annotated[
    float | None,
    typer.Option(
        "--reconnect-timeout",
        help="Give up on a lost stream S seconds after its last frame (exit 1).",
    ),
]
ShowOpt = Annotated[
    bool | None,
    typer.Option("--show/--headless", help="Window on/off (default: where a display exists)."),
]
SaveOpt = Annotated[Path | None, typer.Option("--save", help="Annotated video (.mp4/.avi).")]
EventsOpt = Annotated[
    Path | None,
    typer.Option("--events", help="JSON lines, one per processed frame ('-': stdout)."),
]
EventsFilterOpt = Annotated[str, typer.Option("--events-filter", help="all | ng (only NG frames).")]
SnapshotsOpt = Annotated[
    Path | None, typer.Option("--snapshots", help="Folder for annotated NG frames + events.")
]


ExplainOpt = Annotated[
    str | None,
    typer.Option(
        "--explain",
        help="A heatmap beside each NG snapshot, off the hot path: gradcam, gradcam++, "
        "layercam, saliency or occlusion.",
    ),
]
ExplainBudgetOpt = Annotated[
    float,
    typer.Option(
        "--explain-budget", help="Share of one core the heatmaps may use (frames over it are "
        "skipped and counted).",
    ),
]  # fmt: skip


def capture_options(
    fps: FpsOpt = None,
    width: WidthOpt = None,
    height: HeightOpt = None,
    reconnect_timeout: ReconnectOpt = None,
) -> dict[str, Any]:
    """What the capture is asked for (run_live's and check_source_settings' keywords)."""
    return {"fps": fps, "width": width, "height": height, "reconnect_timeout": reconnect_timeout}


def output_options(
    show: ShowOpt = None,
    save: SaveOpt = None,
    events: EventsOpt = None,
    events_filter: EventsFilterOpt = "all",
    snapshots: SnapshotsOpt = None,
    explain: ExplainOpt = None,
    explain_budget: ExplainBudgetOpt = 0.25,
    force: opt.ForceOpt = False,
) -> Outputs:
    from toolkit.live.run import Outputs

    return Outputs(save, events, events_filter, snapshots, show, force, explain, explain_budget)


@cli_command
@opt.spec_options(
    capture=capture_options, outputs=output_options, station=station_options, line=line_options
)
def command(
    model: ModelArg,
    source: SourceOpt = None,
    backend: opt.BackendOpt = "auto",
    conf: ConfOpt = 0.25,
    iou: IouOpt = 0.45,
    classes: ClassesOpt = None,
    max_det: MaxDetOpt = 300,
    agnostic: AgnosticOpt = False,
    topk: TopkOpt = 5,
    reject: RejectOpt = None,
    roi: RoiOpt = None,
    max_frames: MaxFramesOpt = None,
    duration: DurationOpt = None,
    loop: LoopOpt = False,
    batch: BatchOpt = None,
    capture: dict[str, Any] = opt.GROUP,
    outputs: Outputs = opt.GROUP,
    station: dict[str, Any] = opt.GROUP,
    line: LineOutputs = opt.GROUP,
    json_out: opt.JsonOpt = False,
    threads: opt.ThreadsOpt = None,
    weights: opt.WeightsOpt = None,
    model_source: opt.ModelSourceOpt = None,
    spec: SpecOverrides = opt.GROUP,
    verbose: opt.VerboseOpt = False,
) -> None:
    """Run a model live on one camera or a station of several: verdicts, events, snapshots
    and video, with per-stage latency per source.

    Several --source, or a station file (`edgetk run station.yaml`: named sources with their
    own ROI, reject classes, confidence and FPS cap) share one model: their frames are batched
    into one inference call. Stops at the end of the files, at --max-frames or --duration, or
    on Ctrl-C / SIGTERM (the summary is printed, the video finalized and the events file
    complete either way). Exit 0 on those (130 on Ctrl-C); exit 1 when a live source is lost
    for good (--reconnect-timeout) or an output fails (disk full, a closed pipe), so that a
    restart policy acts; exit 2 for settings that cannot work, before the model loads.
    """
    _check_settings(outputs, json_out, max_frames=max_frames, batch=batch, topk=topk,
                    duration=duration)  # fmt: skip
    args = dict(
        backend=backend, overrides=spec, threads=threads, weights=weights,
        model_source=model_source, conf=conf, iou=iou, max_det=max_det, classes=classes,
        agnostic=agnostic, topk=topk, reject=reject, roi=roi, loop=loop, **capture, **station,
        max_frames=max_frames, duration=duration, batch=batch, outputs=outputs,
    )  # fmt: skip
    # A station file's settings take the place of the options it sets.
    args = run_args(model, source, args)
    finish(_run(args, _line(line, args.pop("line", None)), model, json_out), json_out)


def _run(args: dict[str, Any], line: LineOutputs, model: str, json_out: bool) -> dict[str, Any]:
    """Check the outputs, open the line's sinks, run until the end or a signal."""
    from toolkit.line.options import check_line_outputs, open_line_sinks
    from toolkit.live.run import check_outputs, run_live
    from toolkit.live.stop import StopFlag, stop_on_signals

    check_outputs(args["outputs"])
    check_line_outputs(line)
    name = Path(model).stem if model.lower().endswith((".yaml", ".yml")) else "edgetk"
    sinks = open_line_sinks(line, station=name) if line.any else []
    stop = StopFlag()
    try:
        with stop_on_signals(stop):
            return run_live(
                **args, stop=stop, sinks=sinks, progress=None if json_out else _status_line
            )
    except BaseException:
        for sink in sinks:  # closed by the loop once it runs; not if the model failed to load
            sink.close()
        raise


def _line(given: LineOutputs, station: dict[str, Any] | None) -> LineOutputs:
    """The line outputs: a station file's where it names them."""
    from dataclasses import replace

    if not station:
        return given
    return replace(given, **{k: v for k, v in station.items() if v is not None})


def run_args(model: str, source: list[str] | None, args: dict[str, Any]) -> dict[str, Any]:
    """run_live's arguments: from the command line, or from a station file over them.

    Every setting is checked here, before a model loads; sinks open only after.
    """
    from toolkit.errors import BadInputError
    from toolkit.live.feeds import as_specs, check_specs
    from toolkit.live.loop import LoopOptions
    from toolkit.live.open import SourceSettings

    if model.lower().endswith((".yaml", ".yml")):
        from toolkit.live.station_run import station_args

        if source:
            raise BadInputError("a station file names its sources: give no --source with it")
        args = station_args(Path(model), args)
    elif not source:
        raise BadInputError("no source: give --source (or run a station file)")
    else:
        args = {**args, "model": model, "source": source if len(source) > 1 else source[0]}
    loop_keys = {k: args.pop(k) for k in list(args) if k.startswith("loop_")}
    options = LoopOptions(
        max_frames=args.pop("max_frames"), duration=args.pop("duration"),
        batch=args.pop("batch"), **{k[len("loop_"):]: v for k, v in loop_keys.items()},
    )  # fmt: skip
    capture = SourceSettings(
        args["loop"], args["fps"], args["width"], args["height"], args["reconnect_timeout"]
    )
    check_specs(as_specs(args["source"]), capture)
    return {**args, "options": options}


def _check_settings(outputs: Outputs, json_out: bool, *, duration: float | None,
                    **counts: int | None) -> None:  # fmt: skip
    """``--events -`` takes stdout; counts are at least 1, a duration positive."""
    from toolkit.errors import BadInputError
    from toolkit.live.sinks import is_stdout

    if is_stdout(outputs.events):
        if json_out:
            raise BadInputError("--events - and --json both write to stdout: give --events a file")
        # stdout carries the JSON lines alone; status lines and the summary go to stderr
        # (the command wrapper points the console back afterwards).
        console.stderr = True
    for name, value in counts.items():
        if value is not None and value < 1:
            raise BadInputError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if duration is not None and duration <= 0:
        raise BadInputError(f"--duration must be positive, got {duration}")


def finish(summary: dict[str, Any], json_out: bool) -> None:
    """Print the summary, then exit as the run's outcome says (1: lost source or sink, 130)."""
    from rich.markup import escape

    from toolkit.cli.common import err_console
    from toolkit.live.run import run_outcome

    code, error = run_outcome(summary)
    if json_out:
        print_json({**summary, "error": error, "exit_code": code} if code else summary)
    else:
        print_summary(summary)
    if code:
        err_console.print(f"[red]error:[/red] {escape(error or '')}", soft_wrap=True)
        raise typer.Exit(code)


def _status_line(p: dict[str, Any]) -> None:
    console.print(
        f"{p['frames']} frames, {p['fps']:.1f} FPS, OK {p['ok']}, NG {p['ng']}, "
        f"dropped {p['dropped']}"
    )


def print_summary(summary: dict[str, Any]) -> None:
    """The human summary on stderr: counts, FPS, per-stage latency, faults, outputs."""
    from rich.table import Table

    s = summary
    console.print(
        f"[bold]{s['frames']}[/bold] frames from {s['source']} in {s['seconds']:.1f} s "
        f"({s['fps']:.1f} FPS, backend {s['backend']}): OK {s['ok']}, "
        f"[{'red' if s['ng'] else 'green'}]NG {s['ng']}[/], dropped {s['dropped']}, "
        f"stopped by {s['stopped_by']}"
    )
    table = Table(show_header=True, header_style="bold")
    table.add_column("stage (ms)")
    for key in ("mean", "p50", "p90", "p99", "max"):
        table.add_column(key, justify="right")
    for stage, st in s["latency_ms"].items():
        table.add_row(stage, *(f"{st[k]:.2f}" for k in ("mean", "p50", "p90", "p99", "max")))
    age = s["frame_age_ms"]
    table.add_row("frame age", "", f"{age['p50']:.2f}", "", f"{age['p99']:.2f}", "")
    console.print(table)
    if len(s.get("sources", {})) > 1:
        console.print(_sources_table(s["sources"]))
    if s.get("parts"):
        console.print(f"parts: OK {s['parts']['ok']}, NG {s['parts']['ng']}")
    if s.get("counts"):
        console.print("NG by class: " + ", ".join(f"{k} {v}" for k, v in s["counts"].items()))
    if s["decode_errors"]:
        console.print(f"{s['decode_errors']} frame(s) failed to decode and were skipped")
    for gap in s["gaps"]:
        back = "back" if gap["recovered"] else "not back"
        console.print(
            f"stream gap at {gap['start']} after frame {gap['after_frame']}: "
            f"{gap['seconds']:.1f} s ({back})"
        )
    if s.get("failed_sink"):
        f = s["failed_sink"]
        console.print(f"[red]{f['sink']} sink failed[/red]: {f['error']}")
    video = s.get("video")
    if video and video.get("no_signal_frames"):
        console.print(
            f"video: {video['frames']} frames at {video['fps']:g} FPS, "
            f"{video['no_signal_frames']} of them NO SIGNAL"
        )
    for what, path in s.get("outputs", {}).items():
        console.print(f"{what}: {path}")


def _sources_table(sources: dict[str, Any]) -> Any:
    """One row per source of a station."""
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    for col in ("source", "frames", "FPS", "OK", "NG", "dropped", "age p99 ms", "reconnects"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for name, v in sources.items():
        table.add_row(
            name, str(v["frames"]), f"{v['fps']:.1f}", str(v["ok"]), str(v["ng"]),
            str(v["dropped"]), f"{v['frame_age_ms']['p99']:.1f}", str(v["reconnects"]),
        )  # fmt: skip
    return table
