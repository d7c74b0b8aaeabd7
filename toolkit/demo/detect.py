"""The demo's detection step: held-out synthetic set, export, mAP, annotated belt frames.

:func:`run_detection_step` uses the shipped ``zoo:defect-det`` weights (or trains briefly
when the package has none), exports the detector to ONNX with its spec, validates it in
ONNX Runtime on a freshly generated held-out set (a seed the shipped weights never saw) and
runs it on a few frames of the synthetic conveyor, saving annotated copies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The shipped weights were trained on seed 0; the demo scores them on another seed.
HELD_OUT_SEED = 1


def _shipped() -> bool:
    from toolkit.zoo import get_registry
    from toolkit.zoo.create import shipped_weights_path

    return shipped_weights_path(get_registry().get("defect-det")) is not None


def run_detection_step(
    workdir: Path,
    *,
    quick: bool = False,
    force: bool = False,
    frames: int = 6,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Detection, end to end, into ``workdir``; returns a summary for the demo.

    Args:
        workdir: where ``det/`` (data set), ``defect-det.onnx`` and ``det_predictions/`` go.
        quick: a smaller held-out set (and fewer epochs when there are no shipped weights).
        force: replace earlier outputs of this step.
        frames: belt frames to predict on and save annotated.
        progress: the trainer's per-epoch callback ``(done, total, text)`` (only called
            when training is needed).

    Returns:
        ``{"weights", "data", "onnx", "export": {...}, "val": {...}, "predict": {...},
        "seconds"}`` with mAP50 / mAP50-95 / precision / recall of the ONNX model.
    """
    from toolkit.backends import open_session
    from toolkit.data.synthetic_det import make_detection_set
    from toolkit.evaluate.detect import validate_detector
    from toolkit.export import export_onnx

    t0 = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    shipped = _shipped()
    data = workdir / "det"
    n_train = 0 if shipped else (96 if quick else 300)
    make_detection_set(data, n_train=n_train, n_val=32 if quick else 100, seed=HELD_OUT_SEED,
                       force=force)  # fmt: skip
    weights, trained = (None, None) if shipped else _train(workdir, data, quick, force, progress)
    onnx_path = workdir / "defect-det.onnx"
    export = export_onnx("zoo:defect-det", onnx_path, weights=weights, force=force)
    with open_session(str(onnx_path), "ort-cpu") as session:
        val = validate_detector(session, data / "data.yaml", "val")
        predict = _predict_belt(session, frames, workdir / "det_predictions")
    return {
        "weights": "shipped" if shipped else "trained",
        "trained": trained,
        "data": str(data / "data.yaml"),
        "onnx": str(onnx_path),
        "export": {
            "parity": export.parity.status,
            "max_abs_diff": export.parity.max_abs_diff,
            "output_shapes": export.output_shapes,
            "file_size_bytes": export.file_size_bytes,
        },
        "val": {k: val[k] for k in ("map50", "map50_95", "precision", "recall", "images")},
        "predict": predict,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _train(
    workdir: Path,
    data: Path,
    quick: bool,
    force: bool,
    progress: Callable[[int, int, str], None] | None,
) -> tuple[str, dict[str, Any]]:
    """Train ``zoo:defect-det`` on ``data`` (no shipped weights): (checkpoint, its summary)."""
    from toolkit.train.detect import train_detector

    ckpt = workdir / "defect-det.pt"
    report = train_detector(
        "zoo:defect-det",
        data / "data.yaml",
        ckpt,
        epochs=3 if quick else 15,
        force=force,
        progress=progress,
    )
    return str(ckpt), {"epochs": report.epochs, "best_val_map50": report.best_val_map50}


def _predict_belt(session: Any, frames: int, out_dir: Path) -> dict[str, Any]:
    """Detect on ``frames`` held-out belt frames; save each annotated into ``out_dir``."""
    import cv2

    from toolkit.data.synthetic_det import BeltScene
    from toolkit.fileio import atomic_write_bytes
    from toolkit.tasks.annotate import draw_detections
    from toolkit.tasks.base import make_task, run_task

    task = make_task(session.spec, conf=0.25)
    scene = BeltScene(seed=HELD_OUT_SEED)
    shots = [scene.frame(i * 15)[0] for i in range(frames)]
    results = run_task(session, task, shots)
    out_dir.mkdir(exist_ok=True)
    n_dets = 0
    for i, (frame, dets) in enumerate(zip(shots, results, strict=True)):
        ok, buf = cv2.imencode(".jpg", draw_detections(frame, dets))
        if ok:
            atomic_write_bytes(out_dir / f"belt_{i:03d}.jpg", buf.tobytes())
        n_dets += len(dets)
    return {"frames": len(shots), "detections": n_dets, "saved": str(out_dir)}
