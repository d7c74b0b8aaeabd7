"""INT8 accuracy with the default label-free gate: a classifier on real scans, the detector.

    pip install scikit-learn        # only for its bundled digits scans (UCI, 1,797 images)
    python benchmarks/int8_accuracy.py [--out runs/int8_accuracy] [--epochs 30] [--json F]

1. Real data: scikit-learn's handwritten digits (real scans, 8x8 grey levels, bundled in the
   package, nothing downloaded) upscaled to 32x32 PNGs in an ImageFolder (80/20 split per
   class); ``zoo:lenet5`` trained on them with ``edgetk train``, exported, then quantized for
   both targets with the default gate and *no* ``--eval``, calibrated on the training images.
   Each model's top-1 on the held-out scans comes from ``edgetk val``.
2. The shipped defect detector (``zoo:defect-det``), quantized for both targets with the
   default gate and synthetic calibration, no ``--eval``, no ``--max-fallback`` tuning; mAP50-95
   from ``edgetk val`` on a held-out synthetic YOLO set (seed 7, not the training seed).

Everything runs through the ``edgetk`` console script, as a user would run it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def edgetk(*args: object) -> dict[str, Any]:
    exe = shutil.which("edgetk") or str(Path(sys.executable).with_name("edgetk"))
    proc = subprocess.run([exe, *map(str, args), "--json"], capture_output=True, text=True)
    doc = json.loads(proc.stdout) if proc.stdout.strip() else {}
    if proc.returncode != 0:
        print(f"  exit {proc.returncode}: {' '.join(map(str, args))}: {doc.get('error', '')}")
        print(proc.stderr[-2000:])
    doc["exit_code"] = proc.returncode
    return doc


def digits_folder(root: Path) -> Path:
    import cv2
    import numpy as np
    from sklearn.datasets import load_digits

    if (root / "val").is_dir():
        return root
    digits = load_digits()
    rng = np.random.default_rng(0)
    for label in range(10):
        idx = rng.permutation(np.flatnonzero(digits.target == label))
        n_val = len(idx) // 5
        for split, part in (("val", idx[:n_val]), ("train", idx[n_val:])):
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for i in part:
                img = (digits.images[i] * (255 / 16)).astype(np.uint8)
                img = cv2.resize(img, (32, 32), interpolation=cv2.INTER_CUBIC)
                cv2.imwrite(str(folder / f"{i:04d}.png"), img)
    return root


def top1(doc: dict[str, Any]) -> float | None:
    return doc.get("top1")


def map5095(doc: dict[str, Any]) -> float | None:
    return doc.get("map50_95", doc.get("mAP50-95"))


def quantize_both(model: Path, calib: str, data: Path, metric: Any, out: Path) -> dict:
    rows: dict[str, Any] = {"fp32": {"value": metric(edgetk("val", model, data))}}
    for target in ("cpu", "tensorrt"):
        q = out / f"{model.stem}.{target}.onnx"
        rep = edgetk("quantize", model, "--precision", "int8", "--target", target,
                     "--calib", calib, "-o", q, "--force")  # fmt: skip
        val = edgetk("val", q, data) if q.exists() else {}
        rows[target] = {
            "exit_code": rep["exit_code"],
            "value": metric(val) if val else None,
            "kept_float": rep.get("kept_float"),
            "agreement": rep.get("agreement"),
            "cpu_isa": (rep.get("isa") or {}).get("cpu_isa"),
            "emulated": val.get("emulated"),
        }
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/int8_accuracy")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    data = digits_folder(out / "digits")
    weights = out / "lenet5.pt"
    if not weights.exists():
        edgetk("train", "zoo:lenet5", data, "-o", weights, "--epochs", args.epochs)
    lenet = out / "lenet5.onnx"
    edgetk("export", "zoo:lenet5", "--weights", weights, "-o", lenet, "--force")
    results = {"digits": quantize_both(lenet, str(data / "train"), data / "val", top1, out)}

    det = out / "defect-det.onnx"
    edgetk("export", "zoo:defect-det", "-o", det, "--force")
    from toolkit.data.synthetic_det import make_detection_set

    yolo = out / "det-val"
    if not (yolo / "data.yaml").exists():
        make_detection_set(yolo, n_train=0, n_val=150, seed=7, force=True)
    results["defect-det"] = quantize_both(det, "synthetic", yolo / "data.yaml", map5095, out)

    for name, rows in results.items():
        base = rows["fp32"]["value"]
        print(f"{name}: fp32 {base}")
        for target in ("cpu", "tensorrt"):
            r = rows[target]
            drop = None if r["value"] is None or base is None else (base - r["value"]) * 100
            r["drop_pt"] = drop
            kept = len(r["kept_float"] or [])
            print(f"  {target:8s} exit {r['exit_code']} value {r['value']} drop {drop} pt, "
                  f"{kept} layer(s) float, isa {r['cpu_isa']}, emulated {r['emulated']}")  # fmt: skip
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
