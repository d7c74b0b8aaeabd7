"""Decode + NMS time for a YOLOv8-style output: 8400 candidates x 80 classes (640 px COCO).

The output mimics a trained model's: 20 objects, each seen by ~15 anchors with jittered boxes
and high scores, every other anchor at low background scores. Timed: the full
``toolkit.tasks.decode.decode`` call (best class per anchor, confidence filter, box
conversion, class-aware NMS), as the predict / live-loop postprocess runs it.

Wall time (mean, p50, p90, min) and this process's CPU time per call are reported; on a
shared machine the CPU time and the minimum show the cost without waiting for a core.

Usage: python benchmarks/decode_nms.py [--iters 300] [--conf 0.25] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from toolkit.tasks.decode import DecodeOptions, decode


def make_output(
    rng: np.random.Generator, anchors: int = 8400, classes: int = 80, objects: int = 20
) -> np.ndarray:
    """A ``[1, 4 + C, A]`` output with ``objects`` clustered detections."""
    out = np.empty((1, 4 + classes, anchors), np.float32)
    xy = rng.uniform(0, 640, (anchors, 2))
    wh = rng.uniform(4, 120, (anchors, 2))
    out[0, :2], out[0, 2:4] = xy.T, wh.T
    out[0, 4:] = rng.uniform(0, 0.05, (classes, anchors))  # background
    centres = rng.uniform(60, 580, (objects, 2))
    sizes = rng.uniform(30, 200, (objects, 2))
    cls = rng.integers(0, classes, objects)
    per = 15
    idx = rng.choice(anchors, objects * per, replace=False).reshape(objects, per)
    for k in range(objects):
        a = idx[k]
        out[0][0:2, a] = (centres[k] + rng.normal(0, 3, (per, 2))).T
        out[0][2:4, a] = (sizes[k] * rng.uniform(0.9, 1.1, (per, 2))).T
        out[0, 4 + cls[k], a] = rng.uniform(0.3, 0.95, per)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    out = make_output(rng)
    opts = DecodeOptions(conf=args.conf, iou=0.45, max_det=300)
    for _ in range(20):  # warm-up
        decode(out, "yolov8", opts)
    times, cpu = [], []
    for _ in range(args.iters):
        t, c = time.perf_counter(), time.process_time()
        [(boxes, _, _)] = decode(out, "yolov8", opts)
        cpu.append((time.process_time() - c) * 1000)
        times.append((time.perf_counter() - t) * 1000)
    t_ms = np.asarray(times)
    # CPU time of this process: what the work costs when other jobs share the cores.
    c_ms = np.asarray(cpu)
    result = {
        "shape": list(out.shape),
        "conf": args.conf,
        "kept": len(boxes),
        "iters": args.iters,
        "ms": {
            "mean": round(float(t_ms.mean()), 3),
            "p50": round(float(np.percentile(t_ms, 50)), 3),
            "p90": round(float(np.percentile(t_ms, 90)), 3),
            "min": round(float(t_ms.min()), 3),
        },
        "cpu_ms_p50": round(float(np.percentile(c_ms, 50)), 3),
    }
    if args.json:
        print(json.dumps(result))
    else:
        ms = result["ms"]
        print(
            f"decode+NMS {out.shape[2]} x {out.shape[1] - 4} classes (conf {args.conf}): "
            f"p50 {ms['p50']:.3f} ms, mean {ms['mean']:.3f} ms, min {ms['min']:.3f} ms, "
            f"CPU time p50 {result['cpu_ms_p50']:.3f} ms; "
            f"{len(boxes)} boxes kept"
        )


if __name__ == "__main__":
    main()
