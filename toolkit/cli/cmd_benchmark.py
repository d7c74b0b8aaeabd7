"""`edgetk benchmark MODEL...`: latency and throughput, several backends side by side."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from toolkit.cli import options as opt
from toolkit.cli.common import cli_command, console, print_json
from toolkit.cli.notes import note_random_weights
from toolkit.errors import BadInputError

if TYPE_CHECKING:
    from toolkit.model.spec import SpecOverrides

ModelsArg = Annotated[
    list[str], typer.Argument(help="ONNX files or PyTorch references (zoo:NAME, file.py:Name).")
]
BackendsOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        "-b",
        help="Comma list: auto, ort-cpu, ort-cuda, ort-trt, tensorrt, torch. Speedups are "
        "relative to the first.",
    ),
]
BatchesOpt = Annotated[str, typer.Option("--batch", help="Comma list of batch sizes.")]
WarmupOpt = Annotated[int, typer.Option("--warmup", help="Untimed calls first.")]
ItersOpt = Annotated[
    int | None,
    typer.Option("--iters", help="Timed calls per backend (default 200, at most 10 s)."),
]
DurationOpt = Annotated[
    float | None, typer.Option("--duration", help="Timed seconds per backend instead.")
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Also write the report: .json, .csv or .md.")
]


def _split(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


def parse_batches(value: str) -> list[int]:
    """``--batch 1,8`` -> [1, 8]."""
    try:
        batches = [int(p) for p in _split(value)]
    except ValueError:
        raise BadInputError(f"--batch expects comma-separated integers, got '{value}'") from None
    if not batches or min(batches) < 1:
        raise BadInputError(f"--batch expects integers >= 1, got '{value}'")
    return batches


@cli_command
@opt.spec_options(*opt.SIZE_FLAGS)
def command(
    models: ModelsArg,
    backend: BackendsOpt = "auto",
    batch: BatchesOpt = "1",
    warmup: WarmupOpt = 20,
    iters: ItersOpt = None,
    duration: DurationOpt = None,
    threads: opt.ThreadsOpt = None,
    weights: opt.WeightsOpt = None,
    model_source: opt.ModelSourceOpt = None,
    spec: SpecOverrides = opt.GROUP,
    out: OutOpt = None,
    force: opt.ForceOpt = False,
    json_out: opt.JsonOpt = False,
    verbose: opt.VerboseOpt = False,
) -> None:
    """Measure latency (mean, p50, p90, p99, min, max, std) and throughput per backend and batch.

    A backend that cannot run here is reported as "unavailable: why", not an error.

    Example: edgetk benchmark r18.onnx --backend torch,ort-cpu --batch 1,8 --iters 50
    """
    from toolkit.bench.report import REPORT_SUFFIXES, render_table, write_report
    from toolkit.bench.runner import benchmark
    from toolkit.fileio import check_output
    from toolkit.loading import has_random_weights

    backends = _split(backend)
    batches = parse_batches(batch)
    opt.check_model_source(model_source, backends, models)
    if out is not None:
        if out.suffix.lower() not in REPORT_SUFFIXES:
            raise BadInputError(f"--out must end in {', '.join(REPORT_SUFFIXES)} (got '{out}')")
        check_output(out, force)  # fail before minutes of measuring, not after

    for model in models:
        # Timing is right either way; the notice says the outputs are not meaningful.
        if has_random_weights(model, weights):
            note_random_weights(model, _onnx_source(model))
    report = benchmark(
        models, backends, batches, warmup=warmup, iters=iters, duration=duration,
        threads=threads, overrides=None if spec.is_empty() else spec, weights=weights,
        model_source=model_source,
        progress=lambda msg: console.print(f"benchmark: {msg}", markup=False, style="dim"),
    )  # fmt: skip
    if out is not None:
        write_report(report, out, force=force)
        console.print(f"wrote {out}")
    if json_out:
        print_json(report.to_dict())
    else:
        console.print(render_table(report))


def _onnx_source(model: str) -> str | None:
    """The reference an ONNX file was exported from (for the notice), or None."""
    if not model.lower().endswith(".onnx"):
        return None
    from toolkit.model.modelfile import read_spec

    return read_spec(model).source
