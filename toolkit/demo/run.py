"""``edgetk demo``: the whole story on one CPU, with nothing downloaded.

Steps, each a function of a :class:`DemoContext` that returns what it measured (later issues
append their own steps: quantize, detection, the live loop):

1. ``data``: a synthetic defect-inspection ImageFolder (ok / scratch / spot / crack).
2. ``train``: ``zoo:defect-cls`` trained briefly on CPU, best checkpoint kept.
3. ``export``: PyTorch -> ONNX with the parity check.
4. ``validate``: the ONNX model's accuracy on the held-out images, in ONNX Runtime.
5. ``benchmark``: ONNX Runtime CPU vs PyTorch eager, side by side.
6. ``predict``: a few held-out images classified, and a contact sheet of them.

Everything lands in the work folder (``data/``, ``weights.pt``, ``model.onnx``,
``bench.json``, ``predictions.png``, ``summary.json``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit._version import __version__
from toolkit.errors import OutputExistsError
from toolkit.fileio import atomic_write_text

if TYPE_CHECKING:
    from rich.console import Console

ARCH = "zoo:defect-cls"


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo; :meth:`make` gives the full or the ``--quick`` ones."""

    workdir: Path
    quick: bool = False
    seed: int = 0
    n_per_class: int = 400
    size: int = 96
    epochs: int = 18
    batch: int = 32
    lr: float = 4e-3
    bench_batches: tuple[int, ...] = (1, 8)
    bench_iters: int = 100
    predict_per_class: int = 2

    @classmethod
    def make(cls, workdir: str | Path, *, quick: bool = False, seed: int = 0) -> DemoConfig:
        """The full demo, or a tiny one (a few images, one epoch) for tests and smoke runs."""
        if quick:
            return cls(
                Path(workdir),
                quick=True,
                seed=seed,
                n_per_class=10,
                epochs=1,
                batch=16,
                bench_batches=(1,),
                bench_iters=10,
                predict_per_class=1,
            )
        return cls(Path(workdir), seed=seed)


@dataclass
class DemoContext:
    """What the steps share: the config, the console and the results so far."""

    config: DemoConfig
    console: Console
    progress: bool = True
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.config.workdir / name

    @property
    def data_dir(self) -> Path:
        return self.path("data")

    @property
    def weights(self) -> Path:
        return self.path("weights.pt")

    @property
    def onnx(self) -> Path:
        return self.path("model.onnx")


@dataclass(frozen=True)
class DemoStep:
    """A named step: ``run(ctx)`` returns a JSON-able dict of what it did."""

    name: str
    title: str
    run: Callable[[DemoContext], dict[str, Any]]


def step_data(ctx: DemoContext) -> dict[str, Any]:
    """Generate the synthetic classification set into ``data/``."""
    from toolkit.data.synthetic import make_classification_set

    cfg = ctx.config
    info = make_classification_set(
        ctx.data_dir, n_per_class=cfg.n_per_class, size=cfg.size, seed=cfg.seed, force=True
    )
    counts = info["counts"]
    assert isinstance(counts, dict)
    return {
        "path": str(ctx.data_dir),
        "classes": info["classes"],
        "size": cfg.size,
        "train": sum(counts["train"].values()),
        "val": sum(counts["val"].values()),
    }


def step_train(ctx: DemoContext) -> dict[str, Any]:
    """Train ``zoo:defect-cls`` on ``data/``; the best checkpoint goes to ``weights.pt``."""
    from toolkit.train import train_classifier

    cfg = ctx.config
    report = train_classifier(
        ARCH,
        ctx.data_dir,
        ctx.weights,
        epochs=cfg.epochs,
        batch=cfg.batch,
        lr=cfg.lr,
        seed=cfg.seed,
        force=True,
        progress=ctx.progress,
        console=ctx.console,
    )
    return {
        "arch": report.arch,
        "weights": report.output,
        "epochs": report.epochs,
        "best_epoch": report.best_epoch,
        "val_top1": report.best_val_top1,
        "seconds": report.seconds,
        "history": report.history,
    }


def step_export(ctx: DemoContext) -> dict[str, Any]:
    """Export the trained model to ``model.onnx`` (dynamic batch), checked against PyTorch."""
    from toolkit.export import export_onnx

    report = export_onnx(ARCH, ctx.onnx, weights=str(ctx.weights), force=True)
    parity = report.parity
    return {
        "onnx": report.output,
        "opset": report.opset,
        "nodes": report.nodes_after,
        "file_size_bytes": report.file_size_bytes,
        "seconds": report.total_seconds,
        "parity": {
            "passed": parity.passed,
            "status": parity.status,
            "max_abs_diff": parity.max_abs_diff,
            "top1_agreement": parity.top1_agreement,
        },
    }


def step_validate(ctx: DemoContext) -> dict[str, Any]:
    """Top-1 of the ONNX model in ONNX Runtime on ``data/val``."""
    from toolkit.backends import open_session
    from toolkit.evaluate.classify import validate_classifier

    with open_session(ctx.onnx, "ort-cpu") as session:
        result = validate_classifier(session, ctx.data_dir / "val", topk=1)
    return {
        "backend": "ort-cpu",
        "n": result["n"],
        "top1": result["top1"],
        "per_class": {k: v["top1"] for k, v in result["per_class"].items()},
        "images_per_second": result["images_per_second"],
    }


def step_benchmark(ctx: DemoContext) -> dict[str, Any]:
    """Latency of ONNX Runtime CPU vs PyTorch eager, interleaved; full report in bench.json."""
    from toolkit.bench.report import write_report
    from toolkit.bench.runner import benchmark

    cfg = ctx.config
    report = benchmark(
        [str(ctx.onnx)],
        ["ort-cpu", "torch"],
        list(cfg.bench_batches),
        warmup=max(3, cfg.bench_iters // 10),
        iters=cfg.bench_iters,
        weights=str(ctx.weights),
    )
    write_report(report, ctx.path("bench.json"), force=True)
    rows: list[dict[str, Any]] = []
    for batch in cfg.bench_batches:
        got = {r.backend: r for r in report.results if r.batch == batch}
        ort, pt = got.get("ort-cpu"), got.get("torch")
        row: dict[str, Any] = {"batch": batch}
        for name, r in (("ort_cpu", ort), ("torch", pt)):
            row[f"{name}_p50_ms"] = r.latency_ms["p50"] if r and r.ok and r.latency_ms else None
            row[f"{name}_status"] = r.status if r else "missing"
        a, b = row["ort_cpu_p50_ms"], row["torch_p50_ms"]
        row["speedup"] = round(b / a, 2) if a and b else None
        rows.append(row)
    return {"report": str(ctx.path("bench.json")), "results": rows}


def step_predict(ctx: DemoContext) -> dict[str, Any]:
    """Classify a few held-out images per class; draw them into ``predictions.png``."""
    from toolkit.backends import open_session
    from toolkit.data.imagefolder import ImageFolder
    from toolkit.data.images import read_image
    from toolkit.tasks.base import run_task
    from toolkit.tasks.classify import ClassifyTask

    per_class = ctx.config.predict_per_class
    with open_session(ctx.onnx, "ort-cpu") as session:
        ds = ImageFolder(ctx.data_dir / "val", labels=session.spec.labels or None)
        picked = []
        for cls in ds.classes:
            picked += [p for p, t in ds.samples if ds.classes[t] == cls][:per_class]
        frames = [read_image(p) for p in picked]
        results = run_task(session, ClassifyTask(session.spec, topk=1), frames)
    rows = [
        {
            "image": str(p.relative_to(ctx.config.workdir)),
            "truth": p.parent.name,
            "label": r.top1_label,
            "confidence": round(r.top1_confidence, 4),
        }
        for p, r in zip(picked, results, strict=True)
    ]
    _contact_sheet(frames, rows, ctx.path("predictions.png"))
    return {
        "images": rows,
        "correct": sum(r["truth"] == r["label"] for r in rows),
        "sheet": str(ctx.path("predictions.png")),
    }


def _contact_sheet(frames: list[Any], rows: list[dict[str, Any]], out: Path) -> None:
    """The images side by side, each captioned with its prediction (green right, red wrong)."""
    import cv2
    import numpy as np

    from toolkit.fileio import atomic_path

    tiles = []
    for frame, row in zip(frames, rows, strict=True):
        tile = cv2.resize(frame, (160, 160), interpolation=cv2.INTER_NEAREST)
        color = (60, 200, 60) if row["truth"] == row["label"] else (40, 40, 230)
        cv2.rectangle(tile, (0, 136), (159, 159), (0, 0, 0), -1)
        text = f"{row['label']} {row['confidence']:.2f}"
        cv2.putText(tile, text, (4, 153), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
        tiles.append(tile)
    with atomic_path(out) as tmp:
        ok, buf = cv2.imencode(".png", np.hstack(tiles))
        tmp.write_bytes(buf.tobytes() if ok else b"")


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
        ctx.config.workdir, quick=ctx.config.quick, force=True, progress=ctx.progress
    )


def step_live(ctx: DemoContext) -> dict[str, Any]:
    """The live loop on the synthetic conveyor: annotated video, events, NG snapshots."""
    from toolkit.demo.live_step import run_live_step

    detector = ctx.path("defect-det.onnx")
    model = detector if detector.exists() else ctx.onnx
    return run_live_step(ctx.config.workdir, model, quick=ctx.config.quick)


def default_steps() -> list[DemoStep]:
    """The demo's steps, in order (later features add theirs)."""
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
