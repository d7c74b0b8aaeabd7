"""Do `edgetk explain`'s heatmaps mean anything? The figures of docs/explain.md (issue 16).

Prepares, under ``--work`` (kept between runs; ``--fresh`` rebuilds it):

- a classifier: ``zoo:defect-cls`` trained on a synthetic ImageFolder
  (``make_classification_set``, ``--per-class`` crops per class, ``--epochs``), exported to
  ONNX; its ONNX Runtime top-1 on the set's val split is reported;
- 24 part crops with their defect boxes (``render_part``, a seed the training set does not
  use), as a YOLO set: the classifier's evaluation set;
- the shipped ``zoo:defect-det`` exported to ONNX, and 12 belt scenes
  (``make_detection_set(seed=11)``): the detector's evaluation set.

Then runs ``explain(..., eval_data=...)`` (what ``edgetk explain MODEL --eval DATA`` runs) for
every heatmap method on both models: pointing game, deletion AUC (hottest first vs random) and
milliseconds per map. Prints a Markdown table per model and writes ``<work>/eval.json``.

Usage: python benchmarks/explain_measure.py [--work /tmp/edgetk-explain] [--per-class 250]
       [--epochs 30] [--threads 2] [--fresh]

About 4 minutes on 2 CPU cores (training ~1 min, the detector's gradcam and occlusion most of
the rest). ``benchmarks/explain_pictures.py`` draws docs/images/explain_*.png from the same
work folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

METHODS = ("gradcam", "gradcam++", "layercam", "saliency", "occlusion")
DEFECTS = ("scratch", "spot", "crack")


def train_classifier_onnx(work: Path, per_class: int, epochs: int, threads: int) -> dict:
    """``cls.onnx`` (and ``cls.pt``): zoo:defect-cls trained on ``work/cls``; its top-1."""
    from toolkit.backends import open_session
    from toolkit.data.synthetic import make_classification_set
    from toolkit.evaluate.classify import validate_classifier
    from toolkit.export import export_onnx
    from toolkit.train import train_classifier

    info: dict[str, Any] = {"per_class": per_class, "epochs": epochs}
    if not (work / "cls.onnx").exists():
        make_classification_set(work / "cls", n_per_class=per_class, size=96, seed=0, force=True)
        r = train_classifier("zoo:defect-cls", work / "cls", work / "cls.pt", epochs=epochs,
                             batch=16, lr=4e-3, threads=threads, force=True)  # fmt: skip
        info.update(train_seconds=round(r.seconds, 1), best_epoch=r.best_epoch)
        export_onnx("zoo:defect-cls", work / "cls.onnx", weights=str(work / "cls.pt"), force=True)
    with open_session(str(work / "cls.onnx"), "ort-cpu", threads=threads) as s:
        val = validate_classifier(s, work / "cls" / "val", topk=1)
    info.update(val_images=val["n"], val_top1=round(val["top1"], 4))
    return info


def part_crops(root: Path, n: int = 24, seed: int = 7) -> Path:
    """``n`` defective part crops (96x96, the defects in turn) with their boxes, YOLO layout."""
    from toolkit.data.synthetic import render_part
    from toolkit.data.synthetic_det import yolo_lines
    from toolkit.data.yolo import write_data_yaml

    if (root / "data.yaml").exists():
        return root
    (root / "images/val").mkdir(parents=True)
    (root / "labels/val").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img, boxes = render_part(rng, 96, DEFECTS[i % len(DEFECTS)])
        cv2.imwrite(str(root / f"images/val/{i:03d}.png"), img)
        (root / f"labels/val/{i:03d}.txt").write_text(yolo_lines(boxes, list(DEFECTS), (96, 96)))
    write_data_yaml(root / "data.yaml", names=list(DEFECTS), train="images/val", val="images/val")
    return root


def prepare(work: Path, per_class: int, epochs: int, threads: int) -> dict:
    """Everything both scripts need under ``work``; what the classifier reached."""
    from toolkit.data.synthetic_det import make_detection_set
    from toolkit.export import export_onnx

    work.mkdir(parents=True, exist_ok=True)
    info = train_classifier_onnx(work, per_class, epochs, threads)
    part_crops(work / "parts")
    if not (work / "det.onnx").exists():
        export_onnx("zoo:defect-det", work / "det.onnx", force=True)
    if not (work / "det" / "data.yaml").exists():
        make_detection_set(work / "det", n_train=0, n_val=12, seed=11, force=True)
    return info


def table(report: dict) -> str:
    rows = ["| method | pointing game | deletion AUC, hottest first | random | ms / map |",
            "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for m in report["methods"]:
        d = m["deletion"]
        rows.append(f"| {m['method']} | {m['pointing_game']:.2f} | {d['auc_heat']:.3f} | "
                    f"{d['auc_random']:.3f} | {m['ms_per_map']:.0f} |")  # fmt: skip
    n = report["methods"][0]["trials"] if report["methods"] else 0
    return "\n".join(rows) + f"\n\n({n} maps per method)"


def main() -> None:
    from toolkit.explain import HeatOptions, ModelArgs, explain

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgetk-explain"))
    ap.add_argument("--per-class", type=int, default=250)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fresh", action="store_true", help="rebuild the work folder")
    a = ap.parse_args()
    if a.fresh and a.work.exists():
        shutil.rmtree(a.work)
    t0 = time.perf_counter()
    info = prepare(a.work, a.per_class, a.epochs, a.threads)
    print(f"classifier: {json.dumps(info)} (prepared in {time.perf_counter() - t0:.0f} s)")
    heat = HeatOptions(methods=METHODS)
    results: dict[str, Any] = {"classifier_training": info}
    for name, model, data, limit in [
        ("classifier", a.work / "cls.onnx", a.work / "parts", 24),
        ("detector", a.work / "det.onnx", a.work / "det", 12),
    ]:
        t = time.perf_counter()
        args = ModelArgs(str(model), backend="ort-cpu", threads=a.threads)
        results[name] = explain(args, eval_data=str(data), eval_limit=limit, heat=heat)
        print(f"\n{name} ({time.perf_counter() - t:.0f} s)\n\n{table(results[name])}")
    (a.work / "eval.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten {a.work / 'eval.json'}")


if __name__ == "__main__":
    main()
