"""``edgetk demo``: the whole story on one CPU, with nothing downloaded.

Steps, each a function of a :class:`~toolkit.demo.context.DemoContext` that returns what it
measured (:func:`default_steps`):

1. ``data``: a synthetic defect-inspection ImageFolder (ok / scratch / spot / crack).
2. ``train``: ``zoo:defect-cls`` trained briefly on CPU, best checkpoint kept.
3. ``export``: PyTorch -> ONNX with the parity check.
4. ``validate``: the ONNX model's accuracy on the held-out images, in ONNX Runtime.
5. ``benchmark``: ONNX Runtime CPU vs PyTorch eager, side by side.
6. ``predict``: a few held-out images classified, and a contact sheet of them.
7. ``quantize``: int8 for the CPU behind an accuracy gate, fp32 vs int8 latency.
8. ``detect``: the defect detector exported, scored (mAP) and run on belt frames.
9. ``live``: the live loop on the synthetic conveyor (annotated video, events, NG snapshots).

Steps 1-6 are in :mod:`toolkit.demo.classify_steps`; 7-9 in :mod:`toolkit.demo.quantize_step`,
:mod:`toolkit.demo.detect` and :mod:`toolkit.demo.live_step`. Everything lands in the work
folder (``data/``, ``weights.pt``, ``model.onnx``, ``bench.json``, ``predictions.png``,
``model.int8.onnx``, ``det/``, ``defect-det.onnx``, ``det_predictions/``, ``live/``,
``summary.json``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit._version import __version__
from toolkit.demo.classify_steps import (
    step_benchmark,
    step_data,
    step_export,
    step_predict,
    step_train,
    step_validate,
)
from toolkit.demo.context import ARCH, DemoConfig, DemoContext, DemoStep
from toolkit.errors import OutputExistsError
from toolkit.fileio import atomic_write_text

if TYPE_CHECKING:
    from rich.console import Console


def step_quantize(ctx: DemoContext) -> dict[str, Any]:
    """int8 for the CPU with the accuracy gate, and fp32 vs int8 latency."""
    from toolkit.demo.quantize_step import run_quantize_step

    return run_quantize_step(
        ctx.config.workdir, ctx.onnx, ctx.data_dir / "val", quick=ctx.config.quick
    )


def step_detect(ctx: DemoContext) -> dict[str, Any]:
    """The defect detector: export, mAP in ONNX Runtime, annotated belt frames."""
    from toolkit.demo.detect import run_detection_step

    return run_detection_step(
        ctx.config.workdir,
        quick=ctx.config.quick,
        force=True,
        progress=ctx.train_progress("detector"),
    )


def step_live(ctx: DemoContext) -> dict[str, Any]:
    """The live loop on the synthetic conveyor: annotated video, events, NG snapshots."""
    from toolkit.demo.live_step import run_live_step

    detector = ctx.path("defect-det.onnx")
    model = detector if detector.exists() else ctx.onnx
    return run_live_step(ctx.config.workdir, model, quick=ctx.config.quick)


def default_steps() -> list[DemoStep]:
    """The demo's steps, in order."""
    return [
        DemoStep("data", "synthetic defect images", step_data),
        DemoStep("train", f"train {ARCH} on CPU", step_train),
        DemoStep("export", "export to ONNX + parity", step_export),
        DemoStep("validate", "validate in ONNX Runtime", step_validate),
        DemoStep("benchmark", "ONNX Runtime vs PyTorch", step_benchmark),
        DemoStep("predict", "predict held-out images", step_predict),
        DemoStep("quantize", "int8 (cpu target) with an accuracy gate", step_quantize),
        DemoStep("detect", "defect detector: export, mAP, predictions", step_detect),
        DemoStep("live", "live loop on the synthetic conveyor", step_live),
    ]


def run_demo(
    workdir: str | Path = "edgetk-demo",
    *,
    quick: bool = False,
    force: bool = False,
    seed: int = 0,
    steps: list[DemoStep] | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run every demo step into ``workdir`` and write ``summary.json`` there.

    Args:
        workdir: the work folder; one holding an earlier run needs ``force``.
        quick: a tiny run (a few images, one epoch) for tests.
        force: run again over an earlier run's artifacts (only the demo's own files are
            replaced).
        seed: seeds the data and the training.
        steps: the steps to run (default: :func:`default_steps`).
        progress: show progress bars.
        console: where progress and step lines go (default: stderr).

    Returns:
        The summary (as written to ``summary.json``).

    Raises:
        OutputExistsError: ``workdir`` is not empty and ``force`` is false.
        BadInputError: ``workdir`` (or a folder above it) is a file, or cannot take files.
    """
    from rich.console import Console

    from toolkit.fileio import check_output_dir

    config = DemoConfig.make(workdir, quick=quick, seed=seed)
    wd = config.workdir
    check_output_dir(wd, option="--workdir")  # before minutes of training, not after
    if wd.exists() and any(wd.iterdir()) and not force:
        raise OutputExistsError(
            f"work folder {wd} is not empty (pass --force to run the demo again there)"
        )
    wd.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(config, console or Console(stderr=True), progress=progress)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    for i, step in enumerate(steps or default_steps(), 1):
        ctx.console.print(f"[bold cyan][{i}] {step.title}[/bold cyan]")
        t0 = time.perf_counter()
        ctx.results[step.name] = step.run(ctx)
        timings[step.name] = round(time.perf_counter() - t0, 2)
        ctx.console.print(f"    done in {timings[step.name]:.1f} s")
    summary = _summary(ctx, timings, round(time.perf_counter() - t_all, 2))
    atomic_write_text(ctx.path("summary.json"), json.dumps(summary, indent=2) + "\n")
    return summary


def _summary(ctx: DemoContext, timings: dict[str, float], total: float) -> dict[str, Any]:
    """The summary: headline numbers first, then every step's own result."""
    res = ctx.results
    headline: dict[str, Any] = {}
    if "train" in res:
        headline["train_val_top1"] = res["train"]["val_top1"]
        headline["train_seconds"] = res["train"]["seconds"]
    if "export" in res:
        headline["parity_passed"] = res["export"]["parity"]["passed"]
    if "validate" in res:
        headline["onnx_val_top1"] = res["validate"]["top1"]
    if "benchmark" in res:
        first = res["benchmark"]["results"][0] if res["benchmark"]["results"] else {}
        headline["speedup_ort_vs_torch_batch1"] = first.get("speedup")
    artifacts = {
        name: str(ctx.path(name))
        for name in (
            "data",
            "weights.pt",
            "model.onnx",
            "bench.json",
            "predictions.png",
            "model.int8.onnx",
            "defect-det.onnx",
            "det_predictions",
            "live",
        )
        if ctx.path(name).exists()
    }
    artifacts["summary.json"] = str(ctx.path("summary.json"))
    return {
        "version": __version__,
        "workdir": str(ctx.config.workdir),
        "quick": ctx.config.quick,
        "seed": ctx.config.seed,
        **headline,
        "steps": res,
        "timings_s": timings,
        "total_s": total,
        "artifacts": artifacts,
    }
