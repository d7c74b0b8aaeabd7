"""Live-loop measurements: end-to-end FPS vs `edgetk benchmark`, per-stage latency, RSS growth.

On a 640x480 video file (the synthetic belt, written with OpenCV) and the demo detector
(``zoo:defect-det`` exported to ONNX; the demo classifier with ``--model zoo:defect-cls``) on
ONNX Runtime CPU, batch 1:

1. model-only throughput as ``edgetk benchmark`` measures it (same model, backend, batch);
2. the live loop on the file (``--loop``) for ``--frames`` frames, events written to a file,
   with the resident set size sampled at frame 1,000 and at the last frame.

Usage:
    python benchmarks/live_loop.py [--model zoo:defect-det] [--frames 10000] [--out live.json]

Prints one JSON document (the numbers docs/benchmarks.md records).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toolkit.live.sinks import Sink


def rss_mb() -> float:
    """The current resident set size in MiB (Linux /proc; peak RSS elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssProbe(Sink):
    """A sink that notes the RSS when given frame counts have been processed."""

    def __init__(self, at: tuple[int, ...]) -> None:
        self.at, self.samples, self.n = set(at), {}, 0

    def write(
        self, event: dict[str, Any], annotated: np.ndarray | None, captured: float | None = None
    ) -> None:
        self.n += 1
        if self.n in self.at:
            self.samples[self.n] = round(rss_mb(), 1)


def write_belt_video(path: Path, n: int = 300, size: tuple[int, int] = (480, 640)) -> Path:
    from toolkit.data.synthetic_det import BeltScene

    scene = BeltScene(seed=0, size=size, fps=30)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (size[1], size[0]))
    for i in range(n):
        writer.write(scene.frame(i)[0])
    writer.release()
    return path


def _loop(
    model: Path,
    video: Path,
    frames: int,
    batch: int,
    threads: int | None,
    conf: float,
    sinks: list[Sink],
) -> dict[str, Any]:
    from toolkit.backends import open_session
    from toolkit.live.loop import LoopOptions, run_loop
    from toolkit.live.open import open_source
    from toolkit.live.run import make_loop_task
    from toolkit.live.stop import StopFlag
    from toolkit.live.verdict import Judge

    with open_session(model, "ort-cpu", threads=threads) as session:
        spec = session.spec
        task = make_loop_task(
            spec, conf=conf, iou=0.45, max_det=300, classes=None, agnostic=False, topk=5
        )
        judge = Judge(
            None, tuple(spec.labels or ()), conf, None, crop_input=spec.task == "classify"
        )
        source = open_source(str(video), loop=True)
        summary = run_loop(
            session,
            task,
            source,
            judge=judge,
            sinks=sinks,
            options=LoopOptions(max_frames=frames, batch=batch),
            stop=StopFlag(),
        )
    summary["task"], summary["input"] = spec.task, list(spec.input.shape)
    return summary


def _bench_fps(model: Path, batch: int, threads: int | None) -> tuple[float, dict[str, Any]]:
    from toolkit.bench.runner import benchmark

    row = benchmark([model], ["ort-cpu"], [batch], threads=threads, iters=200).results[0].to_dict()
    return float(row["throughput_fps"]), row["latency_ms"]


def _model_only_fps(model: Path, batch: int, threads: int | None, iters: int = 200) -> float:
    """Inference calls back to back with the loop's own session settings (spinning off)."""
    from toolkit.backends import open_session

    with open_session(model, "ort-cpu", threads=threads) as session:
        shape = [batch if d is None else d for d in session.inputs[0].shape]
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        for _ in range(10):
            session.infer(x)
        t0 = time.perf_counter()
        for _ in range(iters):
            session.infer(x)
        return iters * batch / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="zoo:defect-det", help="zoo reference or .onnx file")
    ap.add_argument("--frames", type=int, default=10_000, help="frames of the long (RSS) run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved benchmark/loop rounds")
    ap.add_argument("--round-frames", type=int, default=600)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    from toolkit.live.sinks import EventsSink

    work = Path(tempfile.mkdtemp(prefix="edgetk-live-bench-"))
    model = Path(args.model)
    if not str(args.model).endswith(".onnx"):
        # In a child process: torch stays out of this one, so the RSS is the loop's own.
        model = work / "model.onnx"
        subprocess.run(
            [sys.executable, "-m", "toolkit", "export", args.model, "-o", str(model)],
            check=True,
            capture_output=True,
        )
    video = write_belt_video(work / "belt640x480.mp4")

    # Interleaved: the machine's load changes; each loop run is compared with the benchmark
    # runs on either side of it.
    bench: list[float] = []
    loops: list[dict[str, Any]] = []
    bench_lat: dict[str, Any] = {}
    plain: list[float] = []
    for _ in range(args.rounds):
        fps, bench_lat = _bench_fps(model, args.batch, args.threads)
        bench.append(fps)
        plain.append(_model_only_fps(model, args.batch, args.threads))
        loops.append(
            _loop(model, video, args.round_frames, args.batch, args.threads, args.conf, [])
        )
    bench.append(_bench_fps(model, args.batch, args.threads)[0])
    ratios = [loop["fps"] / ((bench[i] + bench[i + 1]) / 2) for i, loop in enumerate(loops)]

    probe = RssProbe(at=(1_000, args.frames))
    t0 = time.perf_counter()
    long = _loop(
        model,
        video,
        args.frames,
        args.batch,
        args.threads,
        args.conf,
        [EventsSink(work / "events.jsonl", force=True), probe],
    )
    wall = time.perf_counter() - t0
    rss = probe.samples
    growth = None
    if 1_000 in rss and args.frames in rss:
        growth = round(100 * (rss[args.frames] - rss[1_000]) / rss[1_000], 2)
    best = max(range(len(loops)), key=lambda i: ratios[i])
    out = {
        "model": str(args.model),
        "task": long["task"],
        "input": long["input"],
        "source": "640x480 mp4 (synthetic belt, 300 frames, looped)",
        "backend": "ort-cpu",
        "batch": args.batch,
        "threads": args.threads,
        "benchmark_fps": [round(b, 2) for b in bench],
        "loop_fps": [loop["fps"] for loop in loops],
        "ratio": [round(r, 3) for r in ratios],
        "ratio_median": round(float(np.median(ratios)), 3),
        # The same model timed with the loop's session settings (ORT spinning off): on a busy
        # machine the benchmark's spinning threads lose time slices, so both are reported.
        "model_only_fps_no_spin": [round(p, 2) for p in plain],
        "ratio_vs_no_spin": [
            round(loop["fps"] / p, 3) for loop, p in zip(loops, plain, strict=True)
        ],
        "benchmark_latency_ms": bench_lat,
        "round_stages_ms": {
            k: {"p50": v["p50"], "p99": v["p99"]} for k, v in loops[best]["latency_ms"].items()
        },
        "long_run": {
            "frames": long["frames"],
            "dropped": long["dropped"],
            "fps": long["fps"],
            "stages_ms": {
                k: {"p50": v["p50"], "p99": v["p99"]} for k, v in long["latency_ms"].items()
            },
            "frame_age_ms": long["frame_age_ms"],
            "rss_mb": {str(k): v for k, v in sorted(rss.items())},
            "rss_growth_pct": growth,
            "wall_s": round(wall, 1),
        },
        "load_avg": list(os.getloadavg()),
        "cores": os.cpu_count(),
    }
    text = json.dumps(out, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return out


if __name__ == "__main__":
    main()
