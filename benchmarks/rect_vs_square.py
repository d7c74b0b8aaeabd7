"""Rect vs square inference (ONNX Runtime CPU) on 640x480 frames, and their box agreement.

The shipped zoo:defect-det is exported with ``--dynamic-hw`` (once, into ``--cache``), then
run at imgsz 320 and 640 (the same file: its height and width are dynamic) on synthetic belt
scenes of 640x480, one frame per call as in the live loop. Timed per frame: the full
``run_task`` (letterbox, inference, decode + NMS). Rect and square alternate in rounds, and
the best round's frames per second is kept (the machine is shared: the best round is the
least disturbed). Agreement: every square box (conf >= 0.25) matched to the rect box of its
class with the highest IoU; reported are the share matched at IoU >= 0.5 and the mean IoU.

Usage: python benchmarks/rect_vs_square.py [--frames 30] [--rounds 5] [--threads 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from toolkit.backends import open_session
from toolkit.data.synthetic_det import render_scene
from toolkit.model.spec import SpecOverrides
from toolkit.tasks.base import make_task, prepare_inputs, run_task
from toolkit.tasks.boxes import box_iou


def model_file(cache: Path) -> Path:
    from toolkit.export import export_onnx

    path = cache / "defect-det-dynhw.onnx"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        export_onnx("zoo:defect-det", path, dynamic_hw=True)
    return path


def fps(session, task, frames, square: bool) -> float:
    t0 = time.perf_counter()
    for f in frames:
        run_task(session, task, [f], square=square)
    return len(frames) / (time.perf_counter() - t0)


def agreement(session, task, frames) -> dict[str, float]:
    ious = []
    for f in frames:
        [r] = run_task(session, task, [f])
        [s] = run_task(session, task, [f], square=True)
        for box, cls in zip(s.xyxy, s.class_id, strict=True):
            same = r.class_id == cls
            ious.append(float(box_iou(box[None], r.xyxy[same]).max()) if same.any() else 0.0)
    a = np.asarray(ious)
    return {"boxes": len(a), "matched_iou50": float((a >= 0.5).mean()) if len(a) else 1.0,
            "mean_iou": float(a.mean()) if len(a) else 1.0,
            "min_iou": float(a.min()) if len(a) else 1.0}  # fmt: skip


def run(imgsz: int, path: Path, frames: list, rounds: int, threads: int) -> dict:
    overrides = SpecOverrides(imgsz=(imgsz, imgsz))
    with open_session(path, "ort-cpu", overrides=overrides, threads=threads) as session:
        task = make_task(session.spec, conf=0.25)
        rect_hw = prepare_inputs(session, task, frames[:1])[0]["images"].shape[2:]
        fps(session, task, frames[:3], False), fps(session, task, frames[:3], True)  # warm-up
        best = {"rect": 0.0, "square": 0.0}
        for _ in range(rounds):
            for name, square in (("rect", False), ("square", True)):
                best[name] = max(best[name], fps(session, task, frames, square))
        return {
            "imgsz": imgsz,
            "rect_input": list(rect_hw),
            "pixels_ratio": round(rect_hw[0] * rect_hw[1] / imgsz**2, 3),
            "rect_fps": round(best["rect"], 1),
            "square_fps": round(best["square"], 1),
            "speedup": round(best["rect"] / best["square"], 3),
            **agreement(session, task, frames),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/edgetk-bench"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    path = model_file(args.cache)
    rng = np.random.default_rng(7)
    frames = [render_scene(rng, (480, 640))[0] for _ in range(args.frames)]
    rows = [run(s, path, frames, args.rounds, args.threads) for s in (320, 640)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("imgsz  rect input  pixels  rect FPS  square FPS  speedup  boxes  matched  mean IoU")
    for r in rows:
        print(f"{r['imgsz']:5d}  {r['rect_input'][0]:4d}x{r['rect_input'][1]:<5d}  "
              f"{r['pixels_ratio']:6.2f}  {r['rect_fps']:8.1f}  {r['square_fps']:10.1f}  "
              f"{r['speedup']:7.2f}  {r['boxes']:5d}  {r['matched_iou50']:7.1%}  "
              f"{r['mean_iou']:8.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
