"""Draw docs/images/explain_*.png: the pictures of docs/explain.md (issue 16).

Uses the work folder of ``benchmarks/explain_measure.py`` (the trained classifier, the part
crops, the detector and its belt scenes; prepared here too if missing) and writes:

- ``explain_heatmaps.png``: four part crops, each with its five heatmaps (classifier);
- ``explain_detector.png``: three belt scenes, every detected box's map, max-combined;
- ``explain_filters.png`` / ``explain_filters_deep.png``: filter maximizers of a middle and a
  deep block (``--filters``), ``explain_classes.png`` (``--class all``),
  ``explain_kernels.png``, ``explain_maps.png`` and ``explain_dream.png``.

Each PNG is kept under 300 KB (quantized to a 256-colour palette when it would be larger).

Usage: python benchmarks/explain_pictures.py [--work /tmp/edgetk-explain] [--out docs/images]
       [--threads 2]

About a minute on 2 CPU cores once the work folder exists.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from explain_measure import METHODS, prepare

MAX_BYTES = 300_000
FILTERS = "features.2.4"  # block 2's pointwise BN, before its ReLU: stride 4, strokes
FILTERS_DEEP = "features.5.4"  # block 5's, stride 8: lattices of dots and bars
DREAM = "features.3"


def save(path: Path, img: np.ndarray) -> None:
    """``img`` (BGR) as a PNG under :data:`MAX_BYTES`: palette-quantized if it must be."""
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    data = buf.tobytes()
    if len(data) > MAX_BYTES:
        from PIL import Image

        rgb = Image.fromarray(np.ascontiguousarray(img[:, :, ::-1]))
        pal = rgb.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        out = io.BytesIO()
        pal.save(out, format="PNG", optimize=True)
        data = out.getvalue()
    path.write_bytes(data)
    print(f"{path} {img.shape[1]}x{img.shape[0]} {len(data) // 1024} KB")


def views(model: str, crop: str, out: Path, threads: int) -> None:
    """The lecture's views, through ``explain()`` as ``edgetk explain --filters`` etc. run."""
    from toolkit.explain import ModelArgs, Views, explain

    args = ModelArgs(model, threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        r = explain(args, crop, tmp, views=Views(filters=FILTERS, count=24, kernels=True,
                                                 maps=True, dream=DREAM))  # fmt: skip
        deep = explain(args, None, tmp, views=Views(filters=FILTERS_DEEP, count=16))
        classes = explain(args, None, tmp, views=Views(maximize="all"))
        for got, name in [(r["filters"], "filters"), (deep["filters"], "filters_deep"),
                          (classes["classes"], "classes"), (r["kernels"], "kernels"),
                          (r["maps"], "maps"), (r["dream"], "dream")]:  # fmt: skip
            save(out / f"explain_{name}.png", cv2.imread(got["png"]))


def heatmaps(model: str, crops: list[str], out: Path, threads: int) -> None:
    """Each crop, then its map by every method (for the top class, named with its score)."""
    from toolkit.explain import Explainer
    from toolkit.explain import heat as H
    from toolkit.explain.grid import stack, tile

    frames = [cv2.imread(p) for p in crops]
    cols: list[list[np.ndarray]] = [[f] for f in frames]
    labels: list[list[str]] = [["input"] for _ in frames]
    for m in METHODS:
        backend = "ort-cpu" if m == "occlusion" else "torch"
        with Explainer(model, m, backend=backend, threads=threads) as ex:
            for k, frame in enumerate(frames):
                [e] = ex.explain(frame)
                cols[k].append(H.overlay(frame, e.heat))
                labels[k].append(f"{m}: {e.target.label} {e.target.score:.2f}")
    rows = [tile(c, t, cols=len(c), cell=144) for c, t in zip(cols, labels, strict=True)]
    save(out / "explain_heatmaps.png", stack(rows))


def detector(model: str, scenes: list[str], out: Path, threads: int) -> None:
    """Each scene, then every detected box's map (max over boxes) by three methods."""
    from toolkit.explain import Explainer
    from toolkit.explain.grid import stack, tile
    from toolkit.explain.worker import combined

    frames = [cv2.imread(p) for p in scenes]
    cols: list[list[np.ndarray]] = [[f] for f in frames]
    for m in ("gradcam", "layercam", "occlusion"):
        backend = "ort-cpu" if m == "occlusion" else "torch"
        with Explainer(model, m, backend=backend, threads=threads) as ex:
            for k, frame in enumerate(frames):
                cols[k].append(combined(frame, ex.explain(frame))[0])
    names = ["input", "gradcam", "layercam", "occlusion"]
    rows = [tile(c, [f"{n}: every box, max" if n != "input" else n for n in names],
                 cols=4, cell=224) for c in cols]  # fmt: skip
    save(out / "explain_detector.png", stack(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgetk-explain"))
    ap.add_argument("--out", type=Path, default=Path("docs/images"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    prepare(a.work, 250, 30, a.threads)
    crops = sorted(str(p) for p in (a.work / "parts/images/val").glob("*.png"))
    scenes = sorted(str(p) for p in (a.work / "det/images/val").glob("*.png"))
    cls, det = str(a.work / "cls.onnx"), str(a.work / "det.onnx")
    views(cls, crops[0], a.out, a.threads)
    heatmaps(cls, crops[:4], a.out, a.threads)
    detector(det, scenes[:3], a.out, a.threads)


if __name__ == "__main__":
    main()
