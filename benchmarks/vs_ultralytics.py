"""edgetk's single-stream live loop vs Ultralytics' streaming predict, on one ONNX file and video.

Both sides run the same YOLOv8 ONNX file (as Ultralytics exports it: static 640x640, one
output 1x84x8400) on the same video file, ONNX Runtime on the CPU, batch 1, conf 0.25,
IoU 0.45 (Ultralytics' default is 0.7: it is set to 0.45 here, edgetk's default):

- Ultralytics, in its own virtual environment (``--ul-python``), in a subprocess::

      for r in YOLO(model, task="detect").predict(video, stream=True, imgsz=640, conf=0.25,
                                                   iou=0.45, device="cpu", verbose=False): ...

  FPS = (frames - 1) / (time of the last result - time of the first result).
- edgetk: ``edgetk run MODEL -s VIDEO --headless --json --backend ort-cpu --conf 0.25``;
  FPS = the summary's ``fps`` (frames / (last frame done - first frame read)).

For both, "wall" is the whole subprocess (interpreter start, imports, model load, every
frame). Rounds alternate (Ultralytics, edgetk, Ultralytics, ...); best and median of each are
reported, and the ratio edgetk / Ultralytics of both. A dynamic-H/W model also runs edgetk
with ``--square`` (its default there is rect); a static one has one variant only.

Boxes are counted once, outside the timed rounds: Ultralytics ``len(r.boxes)`` per frame, edgetk
from an ``--events`` file; the table gives the totals and the frames whose counts differ.

Ultralytics on a CPU-only torch: the PyPI torchvision wheels are CUDA builds that fail to load
against torch+cpu (``libc10_cuda.so`` missing), and Ultralytics imports torchvision for video
sources. Unless ``--real-torchvision``, the Ultralytics process puts a stand-in ``torchvision``
module whose ``ops.nms`` is Ultralytics' own ``TorchNMS.nms`` (its pure-torch NMS) before
importing ultralytics; the torchvision distribution must still be installed (Ultralytics reads
its version from the metadata).

Usage:
    python benchmarks/vs_ultralytics.py [--model /tmp/ulbench/yolov8n.onnx]
        [--video /tmp/ulbench/belt640x480.mp4] [--ul-python /tmp/ulvenv/bin/python]
        [--rounds 3] [--conf 0.25] [--iou 0.45] [--json out.json]

Prints a markdown table (and writes the raw rounds as JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

UL_SCRIPT = r"""
import json, sys, time, types
model, video, imgsz, conf, iou, real_tv = sys.argv[1:7]
if real_tv != "1":
    tv = types.ModuleType("torchvision")
    sys.modules["torchvision"] = tv
    from ultralytics.utils.nms import TorchNMS
    tv.ops = types.SimpleNamespace(nms=TorchNMS.nms)
from ultralytics import YOLO

yolo = YOLO(model, task="detect")
boxes, t_first, t_last = [], None, None
for r in yolo.predict(video, stream=True, imgsz=int(imgsz), conf=float(conf), iou=float(iou),
                      device="cpu", verbose=False):
    t_last = time.perf_counter()
    t_first = t_first or t_last
    boxes.append(len(r.boxes))
n = len(boxes)
fps = (n - 1) / (t_last - t_first) if n > 1 and t_last > t_first else 0.0
print(json.dumps({"frames": n, "fps": round(fps, 2), "boxes": boxes}))
"""


def model_hw_dynamic(model: Path) -> bool:
    """Whether the model's input height or width is dynamic (then edgetk runs rect by default)."""
    import onnx

    proto = onnx.load(str(model), load_external_data=False)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    return any(not d.HasField("dim_value") for d in list(dims)[2:4])


def run_ultralytics(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """One Ultralytics round in its own venv: frames, FPS, per-frame box counts, wall seconds."""
    env = dict(os.environ, YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(workdir / "ulcfg"))
    env.pop("VIRTUAL_ENV", None)
    cmd = [
        str(args.ul_python), "-c", UL_SCRIPT, str(args.model), str(args.video),
        str(args.imgsz), str(args.conf), str(args.iou), "1" if args.real_torchvision else "0",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"ultralytics failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = round(wall, 3)
    return out


def run_edgetk(
    args: argparse.Namespace, extra: list[str], events: Path | None = None
) -> dict[str, Any]:
    """One ``edgetk run`` over the video: the summary's frames and FPS, and the wall seconds."""
    cmd = [
        str(args.edgetk), "run", str(args.model), "-s", str(args.video), "--headless", "--json",
        "--backend", "ort-cpu", "--conf", str(args.conf), "--iou", str(args.iou), *extra,
    ]  # fmt: skip
    if events is not None:
        cmd += ["--events", str(events)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"edgetk failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    summary = json.loads(proc.stdout)
    return {"frames": summary["frames"], "fps": summary["fps"], "wall_s": round(wall, 3)}


def edgetk_boxes(args: argparse.Namespace, extra: list[str], workdir: Path) -> list[int]:
    """Per-frame detection counts from one (untimed) edgetk run with an events file."""
    events = workdir / f"events{len(extra)}.jsonl"
    events.unlink(missing_ok=True)
    run_edgetk(args, extra, events)
    counts = []
    for line in events.read_text().splitlines():
        counts.append(len(json.loads(line).get("detections", [])))
    return counts


def stats(rounds: list[dict[str, Any]]) -> dict[str, float]:
    """Best and median FPS and wall seconds of some rounds."""
    fps = [r["fps"] for r in rounds]
    wall = [r["wall_s"] for r in rounds]
    return {
        "fps_best": max(fps),
        "fps_median": statistics.median(fps),
        "wall_best": min(wall),
        "wall_median": statistics.median(wall),
        "frames": rounds[0]["frames"],
    }


def box_line(name: str, counts: list[int], ref: list[int]) -> str:
    """Boxes in total, and the frames whose count differs from Ultralytics'."""
    pairs = zip(counts, ref, strict=False)
    differ = sum(a != b for a, b in pairs) + abs(len(counts) - len(ref))
    return f"{name}: {sum(counts)} boxes over {len(counts)} frames ({differ} frames differ)"


def table(results: dict[str, dict[str, float]]) -> str:
    """The markdown table: FPS and wall per variant, and the ratio to Ultralytics."""
    ul = results["ultralytics"]
    rows = [
        "| run | frames | FPS best | FPS median | wall s best | wall s median | FPS x (best/median) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in results.items():
        ratio = f"{s['fps_best'] / ul['fps_best']:.2f} / {s['fps_median'] / ul['fps_median']:.2f}"
        rows.append(
            f"| {name} | {s['frames']} | {s['fps_best']:.2f} | {s['fps_median']:.2f} "
            f"| {s['wall_best']:.2f} | {s['wall_median']:.2f} | {ratio} |"
        )
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--model", type=Path, default=Path("/tmp/ulbench/yolov8n.onnx"))
    p.add_argument("--video", type=Path, default=Path("/tmp/ulbench/belt640x480.mp4"))
    p.add_argument("--ul-python", type=Path, default=Path("/tmp/ulvenv/bin/python"))
    p.add_argument("--edgetk", type=Path, default=Path(sys.executable).parent / "edgetk")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--iou", type=float, default=0.45)
    p.add_argument("--real-torchvision", action="store_true", help="no torchvision stand-in")
    p.add_argument("--no-boxes", action="store_true", help="skip the untimed box-count runs")
    p.add_argument("--json", type=Path, help="write the raw rounds here")
    args = p.parse_args(argv)
    for path in (args.model, args.video, args.ul_python, args.edgetk):
        if not path.exists():
            p.error(f"not found: {path}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    variants = {"edgetk": []}
    if model_hw_dynamic(args.model):
        variants = {"edgetk (rect)": [], "edgetk --square": ["--square"]}
    raw: dict[str, list[dict[str, Any]]] = {"ultralytics": [], **{k: [] for k in variants}}
    with tempfile.TemporaryDirectory(prefix="vs_ul_") as tmp:
        workdir = Path(tmp)
        for i in range(args.rounds):
            raw["ultralytics"].append(run_ultralytics(args, workdir))
            for name, extra in variants.items():
                raw[name].append(run_edgetk(args, extra, None))
            print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]['fps']}" for k, v in raw.items()),
                  file=sys.stderr)  # fmt: skip
        lines = []
        if not args.no_boxes:
            ref = raw["ultralytics"][0]["boxes"]
            lines.append(box_line("ultralytics", ref, ref))
            for name, extra in variants.items():
                lines.append(box_line(name, edgetk_boxes(args, extra, workdir), ref))
    results = {k: stats(v) for k, v in raw.items()}
    print(f"model {args.model.name}, video {args.video.name}, conf {args.conf}, iou {args.iou}, "
          f"{args.rounds} rounds, ORT CPU, batch 1\n")  # fmt: skip
    print(table(results))
    if lines:
        print("\n" + "\n".join(f"- {line}" for line in lines))
    if args.json:
        for rounds in raw.values():
            for r in rounds:
                r.pop("boxes", None)
        args.json.write_text(json.dumps({"rounds": raw, "summary": results}, indent=2))


if __name__ == "__main__":
    main()
