"""`edgetk benchmark MODEL...`: latency and throughput, several backends side by side.

`edgetk benchmark --compare OLD.json NEW.json`: the change per row between two reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from toolkit.cli import options as opt
from toolkit.cli.common import cli_command, console, print_json
from toolkit.cli.notes import note_random_weights
from toolkit.errors import BadInputError

if TYPE_CHECKING:
    from toolkit.bench.rows import BenchReport
    from toolkit.model.spec import SpecOverrides

ModelsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="ONNX files or PyTorch references (zoo:NAME, file.py:Name).", show_default=False
    ),
]
BackendsOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        "-b",
        help="Comma list: auto, ort-cpu, ort-cuda, ort-trt, tensorrt, torch. A PyTorch "
        "reference is exported (and cached) for the ONNX backends.",
    ),
]
BatchesOpt = Annotated[str, typer.Option("--batch", help="Comma list of batch sizes.")]
WarmupOpt = Annotated[int, typer.Option("--warmup", help="Untimed calls first.")]
ItersOpt = Annotated[
    int | None,
    typer.Option("--iters", help="Timed calls per row (default 200, at most 10 s)."),
]
DurationOpt = Annotated[
    float | None, typer.Option("--duration", help="Timed seconds per row instead.")
]
ThreadsOpt = Annotated[
    str | None,
    typer.Option(
        "--threads",
        help="CPU threads (default: physical cores); a comma list is a sweep, rows per count.",
    ),
]
SpinningOpt = Annotated[
    bool | None,
    typer.Option(
        "--spinning/--no-spinning",
        help="ONNX Runtime intra-op spin wait (default: off, as in edgetk run).",
        show_default=False,
    ),
]
BaselineOpt = Annotated[
    int | None,
    typer.Option(
        "--baseline", help="Row number (#) speedups are against (default: the first that ran)."
    ),
]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="Where exports of PyTorch references are cached "
                 "(default: ~/.cache/edgetk/exports, or under $XDG_CACHE_HOME)."),
]  # fmt: skip
NoFloorOpt = Annotated[
    bool,
    typer.Option("--no-floor", help="Skip the floor: GEMM rate, GFLOP/s, plain ONNX Runtime."),
]
E2eOpt = Annotated[
    str | None,
    typer.Option("--e2e", help="Also run the live pipeline on this source (a video, a folder, "
                 "synthetic) per model and backend at the first batch."),
]  # fmt: skip
MaxFramesOpt = Annotated[int, typer.Option("--max-frames", help="Frames per --e2e run.")]
PlotOpt = Annotated[
    Path | None,
    typer.Option(
        "--plot", help="Draw the report into this PNG (needs matplotlib: the plot extra)."
    ),
]
CompareOpt = Annotated[
    tuple[Path, Path] | None,
    typer.Option("--compare", help="Compare two JSON reports (OLD NEW) instead; exit 1 on a "
                 "regression beyond the noise.", show_default=False),
]  # fmt: skip
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Also write the report: .json, .csv, .md or .html."),
]


@dataclass(frozen=True)
class Timing:
    """How the rows are measured (the options of :func:`timing_options`)."""

    warmup: int
    iters: int | None
    duration: float | None
    threads: list[int | None]
    spinning: bool | None
    baseline: int | None
    cache_dir: Path | None


def timing_options(
    warmup: WarmupOpt = 20,
    iters: ItersOpt = None,
    duration: DurationOpt = None,
    threads: ThreadsOpt = None,
    spinning: SpinningOpt = None,
    baseline: BaselineOpt = None,
    cache_dir: CacheDirOpt = None,
) -> Timing:
    return Timing(warmup, iters, duration, parse_threads(threads), spinning, baseline, cache_dir)


@dataclass(frozen=True)
class Extras:
    """What is measured and written beside the rows (the options of :func:`extra_options`)."""

    floor: bool
    e2e: str | None
    max_frames: int
    plot: Path | None


def extra_options(
    no_floor: NoFloorOpt = False,
    e2e: E2eOpt = None,
    max_frames: MaxFramesOpt = 300,
    plot: PlotOpt = None,
) -> Extras:
    return Extras(not no_floor, e2e, max_frames, plot)


def _split(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


def _integers(value: str, flag: str) -> list[int]:
    try:
        numbers = [int(p) for p in _split(value)]
    except ValueError:
        raise BadInputError(f"{flag} expects comma-separated integers, got '{value}'") from None
    if not numbers or min(numbers) < 1:
        raise BadInputError(f"{flag} expects integers >= 1, got '{value}'")
    return numbers


def parse_batches(value: str) -> list[int]:
    """``--batch 1,8`` -> [1, 8]."""
    return _integers(value, "--batch")


def parse_threads(value: str | None) -> list[int | None]:
    """``--threads 1,2`` -> [1, 2]; not given -> [None] (the default count)."""
    return [None] if value is None else list(_integers(value, "--threads"))


@cli_command
@opt.spec_options(*opt.SIZE_FLAGS, timing=timing_options, extras=extra_options)
def command(
    models: ModelsArg = None,
    backend: BackendsOpt = "auto",
    batch: BatchesOpt = "1",
    timing: Timing = opt.GROUP,
    weights: opt.WeightsOpt = None,
    model_source: opt.ModelSourceOpt = None,
    spec: SpecOverrides = opt.GROUP,
    extras: Extras = opt.GROUP,
    compare: CompareOpt = None,
    out: OutOpt = None,
    force: opt.ForceOpt = False,
    json_out: opt.JsonOpt = False,
    verbose: opt.VerboseOpt = False,
) -> None:
    """Measure latency (mean, p50, p90, p99, min, max, std) and throughput per backend, batch
    and thread count; rows are numbered (#) and every speedup is against --baseline.

    A backend that cannot run here is reported as "unavailable: why", not an error.

    Example: edgetk benchmark zoo:resnet18 --backend torch,ort-cpu --batch 1,8 --threads 1,2
    """
    if compare is not None:
        _compare(compare, models, json_out)
        return
    if not models:
        raise BadInputError("give at least one MODEL (or --compare OLD.json NEW.json)")
    from toolkit.bench.runner import benchmark

    backends = _split(backend)
    opt.check_model_source(model_source, backends, models)
    batches = parse_batches(batch)
    _check_outputs(out, extras, force)  # fail before minutes of measuring, not after
    _random_weight_notes(models, weights)
    overrides = None if spec.is_empty() else spec
    report = benchmark(
        models, backends, batches, warmup=timing.warmup, iters=timing.iters,
        duration=timing.duration, threads=timing.threads, overrides=overrides, weights=weights,
        model_source=model_source, spinning=timing.spinning, baseline=timing.baseline,
        cache_dir=timing.cache_dir, progress=_progress,
    )  # fmt: skip
    _add_extras(report, extras, overrides, weights, model_source)
    _write(report, out, extras.plot, force)
    if json_out:
        print_json(report.to_dict())
    else:
        from toolkit.bench.report import render_table

        console.print(render_table(report))


def _progress(msg: str) -> None:
    console.print(f"benchmark: {msg}", markup=False, style="dim", soft_wrap=True)


def _check_outputs(out: Path | None, extras: Extras, force: bool) -> None:
    """Refuse outputs and sources that cannot work before anything is measured."""
    import importlib.util

    from toolkit.bench.report import REPORT_SUFFIXES
    from toolkit.errors import MissingDependencyError
    from toolkit.fileio import check_output

    if out is not None:
        if out.suffix.lower() not in REPORT_SUFFIXES:
            raise BadInputError(f"--out must end in {', '.join(REPORT_SUFFIXES)} (got '{out}')")
        check_output(out, force)
    if extras.plot is not None:
        if extras.plot.suffix.lower() != ".png":
            raise BadInputError(f"--plot must end in .png (got '{extras.plot.name}')")
        check_output(extras.plot, force, option="--plot")
        if importlib.util.find_spec("matplotlib") is None:
            raise MissingDependencyError('--plot needs matplotlib: pip install "edgetk[plot]"')
    if extras.e2e is not None:
        from toolkit.live.open import check_source_settings

        if extras.max_frames < 1:
            raise BadInputError(f"--max-frames must be at least 1, got {extras.max_frames}")
        check_source_settings(extras.e2e)


def _random_weight_notes(models: list[str], weights: str | None) -> None:
    from toolkit.loading import has_random_weights

    for model in models:
        # Timing is right either way; the notice says the outputs are not meaningful.
        if has_random_weights(model, weights):
            note_random_weights(model, _onnx_source(model))


def _add_extras(
    report: BenchReport, extras: Extras, overrides: SpecOverrides | None, weights: str | None,
    model_source: str | None,
) -> None:  # fmt: skip
    from toolkit.bench import extras as measure

    if extras.floor:
        measure.add_floor(report, overrides=overrides, progress=_progress)
    if extras.e2e is not None:
        measure.add_e2e(
            report, extras.e2e, overrides=overrides, weights=weights,
            model_source=model_source, max_frames=extras.max_frames, progress=_progress,
        )  # fmt: skip


def _write(report: BenchReport, out: Path | None, plot: Path | None, force: bool) -> None:
    """The plot first (a .md or .html report embeds it), then the report file."""
    if plot is not None:
        from toolkit.bench.plot import plot_report

        plot_report(report.to_dict(), plot)
        console.print(f"wrote {plot}")
    if out is not None:
        from toolkit.bench.report import write_report

        write_report(report, out, force=force, plot=plot)
        console.print(f"wrote {out}")


def _compare(files: tuple[Path, Path], models: list[str] | None, json_out: bool) -> None:
    """``--compare OLD NEW``: print the change per row; exit 1 when one is a regression."""
    from toolkit.bench.compare import compare_reports, load_report, render_compare

    if models:
        raise BadInputError("--compare takes two reports and no MODEL")
    result: dict[str, Any] = compare_reports(load_report(files[0]), load_report(files[1]))
    if json_out:
        print_json(result)
    else:
        console.print(render_compare(result))
    if result["regressions"]:
        raise typer.Exit(1)


def _onnx_source(model: str) -> str | None:
    """The reference an ONNX file was exported from (for the notice), or None."""
    if not model.lower().endswith(".onnx"):
        return None
    from toolkit.model.modelfile import read_spec

    return read_spec(model).source
