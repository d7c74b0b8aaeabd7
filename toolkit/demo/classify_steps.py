"""The demo's classifier steps: data, train, export, validate, benchmark, predict.

Each is a function of the :class:`~toolkit.demo.context.DemoContext` that returns what it
measured (a JSON-able dict for ``summary.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolkit.demo.context import ARCH, DemoContext


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
        progress=ctx.train_progress("classifier"),
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
    from toolkit.tasks.annotate import draw_caption

    tiles = []
    for frame, row in zip(frames, rows, strict=True):
        tile = cv2.resize(frame, (160, 160), interpolation=cv2.INTER_NEAREST)
        color = (60, 200, 60) if row["truth"] == row["label"] else (40, 40, 230)
        draw_caption(tile, f"{row['label']} {row['confidence']:.2f}", color)
        tiles.append(tile)
    with atomic_path(out) as tmp:
        ok, buf = cv2.imencode(".png", np.hstack(tiles))
        tmp.write_bytes(buf.tobytes() if ok else b"")
