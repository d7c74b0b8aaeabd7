"""`edgetk demo`: synthetic defects -> train -> ONNX -> validate -> benchmark -> int8 -> detect -> live."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from toolkit.cli import options as opt
from toolkit.cli.common import cli_command, console, print_json


@cli_command
def command(
    workdir: Annotated[
        Path, typer.Option("--workdir", "-w", help="Work folder for every artifact.")
    ] = Path("edgetk-demo"),
    quick: Annotated[
        bool, typer.Option("--quick", help="A tiny run (few images, one epoch) for smoke tests.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the data and the training.")] = 0,
    force: opt.ForceOpt = False,
    json_out: opt.JsonOpt = False,
    verbose: opt.VerboseOpt = False,
) -> None:
    """Run the whole story on this machine: no camera, GPU or download.

    Makes a synthetic defect-inspection data set, trains the zoo's defect classifier on CPU,
    exports it to ONNX (with a parity check), validates it in ONNX Runtime, benchmarks ONNX
    Runtime against PyTorch, classifies a few images, quantizes to int8 for the CPU behind an
    accuracy gate, runs the defect detector (export, mAP), runs the live loop on a synthetic
    conveyor (annotated video, events), and writes summary.json.
    """
    from toolkit.demo.run import run_demo

    summary = run_demo(workdir, quick=quick, force=force, seed=seed, console=console)
    _print_summary(summary)
    if json_out:
        print_json(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.table import Table

    steps, timings = summary["steps"], summary["timings_s"]
    table = Table(title="edgetk demo", title_justify="left", show_header=True)
    table.add_column("step")
    table.add_column("result")
    table.add_column("time", justify="right")
    for name, text in _STEP_TEXT.items():
        if name in steps:
            table.add_row(name, text(steps), f"{timings.get(name, 0):.1f} s")
    console.print(table)
    console.print(
        f"total {summary['total_s']:.1f} s; artifacts in [bold]{summary['workdir']}[/bold] "
        "(summary.json)"
    )


def _data(steps: dict[str, Any]) -> str:
    d = steps["data"]
    return f"{d['train']} train + {d['val']} val images, {', '.join(d['classes'])}"


def _train(steps: dict[str, Any]) -> str:
    t = steps["train"]
    return f"val top-1 {t['val_top1']:.3f} (epoch {t['best_epoch']}/{t['epochs']})"


def _export(steps: dict[str, Any]) -> str:
    p = steps["export"]["parity"]
    diff = p["max_abs_diff"]
    return (
        f"parity {p['status']}"
        + (f", max |diff| {diff:.1e}" if diff is not None else "")
        + f", {steps['export']['nodes']} nodes"
    )


def _validate(steps: dict[str, Any]) -> str:
    v = steps["validate"]
    return f"ONNX Runtime top-1 {v['top1']:.3f} on {v['n']} images"


def _benchmark(steps: dict[str, Any]) -> str:
    parts = []
    for r in steps["benchmark"]["results"]:
        o, t = r["ort_cpu_p50_ms"], r["torch_p50_ms"]
        if o is not None and t is not None:
            parts.append(f"b{r['batch']}: ORT {o:.2f} ms vs torch {t:.2f} ms ({r['speedup']}x)")
        else:
            parts.append(f"b{r['batch']}: {r['ort_cpu_status']} / {r['torch_status']}")
    return "; ".join(parts)


def _predict(steps: dict[str, Any]) -> str:
    p = steps["predict"]
    return f"{p['correct']}/{len(p['images'])} right -> {p['sheet']}"


def _quantize(steps: dict[str, Any]) -> str:
    q = steps["quantize"]
    text = f"int8 ({q['target']}) top-1 {_num(q['int8_top1'])} vs fp32 {_num(q['float_top1'])}"
    text += f", drop {_num(q['drop_pt'])} pt" if q.get("drop_pt") is not None else ""
    if q.get("int8_vs_fp32_latency") is not None:
        text += f", latency {q['int8_vs_fp32_latency']}x fp32"
    return text if q["passed"] else "rejected by the accuracy gate: " + text


def _detect(steps: dict[str, Any]) -> str:
    d = steps["detect"]
    v = d["val"]
    return (
        f"mAP50 {v['map50']:.3f}, mAP50-95 {v['map50_95']:.3f} on {v['images']} images; "
        f"{d['predict']['detections']} boxes on {d['predict']['frames']} belt frames"
    )


def _live(steps: dict[str, Any]) -> str:
    lv = steps["live"]
    return (
        f"{lv['frames']} frames at {lv['fps']:.1f} FPS, OK {lv['ok']} / NG {lv['ng']}, "
        f"e2e p50 {lv['latency_ms']['end_to_end']['p50']:.1f} ms"
    )


# The table's rows, in order: each step's one-line result.
_STEP_TEXT: dict[str, Callable[[dict[str, Any]], str]] = {
    "data": _data,
    "train": _train,
    "export": _export,
    "validate": _validate,
    "benchmark": _benchmark,
    "predict": _predict,
    "quantize": _quantize,
    "detect": _detect,
    "live": _live,
}


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
