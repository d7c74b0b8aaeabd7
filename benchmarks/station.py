"""A station of 1, 2 and 4 sources on one detector (ONNX Runtime CPU): batched vs sequential.

Throughput: N file sources (the same 640x480 video of the synthetic belt, decoded by each
source's own reader; OpenCV decodes outside the GIL) through :func:`toolkit.live.run.run_live`,
once with one frame per inference call (``batch=1``: the sources take turns, sequential) and
once batched (one frame per source per call). Reported: total FPS and inference calls. Freshness: N paced belts at 10 FPS each (live
sources) for a few seconds, batched: each source's frame age p99. The two modes alternate in
rounds; the best round of each is kept (the machine may be shared).

Usage: python benchmarks/station.py [--frames 48] [--rounds 3] [--threads 2] [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from toolkit.live.feeds import SourceSpec
from toolkit.live.loop import LoopOptions
from toolkit.live.run import Outputs, run_live


def model_file(cache: Path) -> Path:
    from toolkit.export import export_onnx

    path = cache / "defect-det.onnx"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        export_onnx("zoo:defect-det", path)
    return path


def video_file(cache: Path, frames: int = 150) -> Path:
    """The belt at 640x480 as an mp4 (made once)."""
    import cv2

    from toolkit.live.sources import SyntheticSource

    path = cache / f"belt640x480_{frames}.mp4"
    if not path.exists():
        src = SyntheticSource(size=(480, 640), paced=False, max_frames=frames)
        out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
        while (img := src.read()) is not None:
            out.write(img)
        out.release()
    return path


def throughput(model: Path, video: Path, n: int, frames: int, batch: int | None,
               threads: int) -> dict:  # fmt: skip
    specs = [SourceSpec(str(video), name=f"cam{i}") for i in range(n)]
    s = run_live(
        model, specs, backend="ort-cpu", threads=threads, outputs=Outputs(show=False),
        options=LoopOptions(max_frames=frames * n, batch=batch),
    )  # fmt: skip
    return {"fps": s["fps"], "calls": s["inference_calls"], "frames": s["frames"]}


def freshness(model: Path, n: int, seconds: float, threads: int) -> dict:
    specs = [SourceSpec(f"synthetic:fps=10,seed={i}", name=f"cam{i}") for i in range(n)]
    s = run_live(
        model, specs, backend="ort-cpu", threads=threads, outputs=Outputs(show=False),
        options=LoopOptions(duration=seconds),
    )  # fmt: skip
    return {
        "fps": s["fps"],
        "age_p99_ms": {k: v["frame_age_ms"]["p99"] for k, v in s["sources"].items()},
        "dropped": s["dropped"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=48, help="frames per source per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/edgetk-bench"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    model = model_file(args.cache)
    video = video_file(args.cache, max(args.frames, 30))
    rows = []
    for n in (1, 2, 4):
        best: dict[str, dict] = {}
        for _ in range(args.rounds):
            for mode, batch in (("sequential", 1), ("batched", None)):
                r = throughput(model, video, n, args.frames, batch, args.threads)
                if mode not in best or r["fps"] > best[mode]["fps"]:
                    best[mode] = r
        fresh = freshness(model, n, args.seconds, args.threads)
        rows.append({"sources": n, **best, "live": fresh})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| sources | sequential FPS (calls) | batched FPS (calls) | batched / sequential "
          "| live 10 FPS each: total FPS | frame age p99 per source (ms) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for r in rows:
        seq, bat, live = r["sequential"], r["batched"], r["live"]
        ages = ", ".join(f"{v:.0f}" for v in live["age_p99_ms"].values())
        print(
            f"| {r['sources']} | {seq['fps']:.1f} ({seq['calls']}) | {bat['fps']:.1f} "
            f"({bat['calls']}) | {bat['fps'] / seq['fps']:.2f}x | {live['fps']:.1f} | {ages} |"
        )


if __name__ == "__main__":
    main()
