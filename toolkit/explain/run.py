"""The library form of ``edgetk explain``: each mode writes its pictures and returns a report.

Outputs are checked before any work (the folder takes files; a file of the same name is
never replaced without ``force``) and written atomically.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import OutputExistsError
from toolkit.explain import heat as H
from toolkit.explain.grid import to_pixels, write_png
from toolkit.fileio import atomic_write_bytes, check_output_dir


def _safe(name: str) -> str:
    """A file-name stem from an image's name (``a/b.png`` -> ``a_b``; ``v.mp4#frame=3`` ->
    ``v_frame3``)."""
    stem = re.sub(r"\.(png|jpe?g|bmp|tiff?|webp)$", "", name, flags=re.I)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem.replace("#frame=", "_frame")).strip("_") or "image"


def prepare_dir(out: str | Path, force: bool, patterns: list[str]) -> Path:
    """Check ``out`` before the work: a folder that takes files, holding none of ``patterns``
    (globs of what this run writes) unless ``force``."""
    folder = check_output_dir(out, option="-o")
    if folder.is_dir() and not force:
        for pattern in patterns:
            hit = next(iter(sorted(folder.glob(pattern))), None)
            if hit is not None:
                raise OutputExistsError(f"output exists: {hit} (pass --force to overwrite)")
    return folder


def save_npy(path: Path, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr, np.float32))
    atomic_write_bytes(path, buf.getvalue())


def heatmaps(
    explainer: Any,
    frames: Any,
    out: Path,
    *,
    class_id: int | str | None = None,
    rois: list[tuple[int, int, int, int]] | None = None,
) -> list[dict[str, Any]]:
    """Explain every ``(name, frame)``: per map an overlay PNG and the raw ``.npy`` (the map
    over the frame's pixels, [0, 1]); one report entry per image."""
    from toolkit.explain.worker import draw_boxes

    out.mkdir(parents=True, exist_ok=True)
    cid = explainer.class_id(class_id)
    method = explainer.method.replace("+", "p")
    report = []
    for name, frame in frames:
        stem = f"{_safe(name)}_{method}"
        maps = []
        for k, e in enumerate(explainer.explain(frame, cid, rois)):
            base = stem if e.target.box is None else f"{stem}_box{k}"
            write_png(str(out / f"{base}.png"), draw_boxes(H.overlay(frame, e.heat), [e]))
            save_npy(out / f"{base}.npy", e.heat)
            maps.append({**e.to_dict(), "overlay": str(out / f"{base}.png"),
                         "npy": str(out / f"{base}.npy")})  # fmt: skip
        report.append({"source": name, "method": explainer.method, "maps": maps})
    return report


def filters(tm: Any, layer: str, out: Path, count: int, cfg: Any) -> dict[str, Any]:
    """``filters_<layer>.png``: the input maximizing each of the first ``count`` filters."""
    from toolkit.explain.ascent import filter_inputs
    from toolkit.explain.grid import stretch_contrast, tile
    from toolkit.explain.source import get_layer

    n = int(getattr(get_layer(tm.module, layer), "out_channels", 0) or count)
    picked = list(range(min(count, n)))
    xs = filter_inputs(tm.module, tm.spec, layer, picked, cfg)
    tiles = [stretch_contrast(to_pixels(x, tm.spec)) for x in xs]
    path = out / f"filters_{_safe(layer)}.png"
    sheet = tile(tiles, [f"#{k}" for k in picked], cols=8, cell=96,
                 title=f"{layer}: inputs maximizing each filter's summed activation")  # fmt: skip
    write_png(str(path), sheet)
    return {"layer": layer, "filters": len(picked), "of": n, "png": str(path)}


def class_maximizers(tm: Any, classes: list[int], out: Path, cfg: Any) -> dict[str, Any]:
    """``classes.png``: x* = argmax (y_i - l1 * sum |x|) for each class, side by side."""
    from toolkit.explain.ascent import class_inputs
    from toolkit.explain.grid import stretch_contrast, tile

    xs = class_inputs(tm.module, tm.spec, classes, cfg)
    tiles = [stretch_contrast(to_pixels(x, tm.spec)) for x in xs]
    labels = [tm.spec.label(c) for c in classes]
    path = out / "classes.png"
    write_png(str(path), tile(tiles, labels, cols=8, cell=128,
                              title=f"class maximizers (L1 {cfg.l1:g})"))  # fmt: skip
    return {"classes": labels, "png": str(path)}


def deep_dream(
    tm: Any, layer: str, name: str, frame: np.ndarray, out: Path, cfg: Any
) -> dict[str, Any]:
    """``dream_<image>_<layer>.png``: the image, and the image dreamt by ``layer``."""
    from toolkit.explain.ascent import dream
    from toolkit.explain.grid import tile
    from toolkit.tasks.preprocess import preprocess

    x, _ = preprocess([frame], tm.spec)
    got = dream(tm.module, tm.spec, layer, x, cfg)
    pics = [to_pixels(x[0], tm.spec), to_pixels(got[0], tm.spec)]
    path = out / f"dream_{_safe(name)}_{_safe(layer)}.png"
    write_png(str(path), tile(pics, ["input", f"dreamt by {layer}"], cols=2, cell=256))
    return {"layer": layer, "source": name, "png": str(path)}


def kernels(tm: Any, out: Path, layer: str | None = None) -> dict[str, Any]:
    """``kernels.png``: the first conv layer's raw weights."""
    from toolkit.explain.views import kernels_sheet

    path = out / "kernels.png"
    write_png(str(path), kernels_sheet(tm.module, layer))
    return {"png": str(path)}


def feature_maps(tm: Any, name: str, frame: np.ndarray, out: Path) -> dict[str, Any]:
    """``maps_<image>.png``: the feature maps after each conv / pool stage, with shapes."""
    from toolkit.explain.views import feature_stages, maps_sheet
    from toolkit.tasks.preprocess import preprocess

    x, _ = preprocess([frame], tm.spec)
    stages = feature_stages(tm.module, x)
    path = out / f"maps_{_safe(name)}.png"
    write_png(str(path), maps_sheet(stages))
    return {"source": name, "stages": [s.to_dict() for s in stages], "png": str(path)}
