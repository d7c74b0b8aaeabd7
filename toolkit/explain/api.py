"""``explain()``: one call per ``edgetk explain`` run, whichever views it asks for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError
from toolkit.explain import run as R
from toolkit.explain.explainer import METHODS, Explainer, check_method
from toolkit.model.spec import SpecOverrides


@dataclass(frozen=True)
class ModelArgs:
    """How to open the model (as ``edgetk predict`` does)."""

    model: str
    backend: str = "auto"
    weights: str | None = None
    model_source: str | None = None
    overrides: SpecOverrides | None = None
    threads: int | None = None

    def torch_model(self) -> Any:
        from toolkit.explain.source import load_torch_model

        return load_torch_model(self.model, weights=self.weights, threads=self.threads,
                                model_source=self.model_source, overrides=self.overrides)  # fmt: skip

    def explainer(self, method: str, **opts: Any) -> Explainer:
        backend = self.backend if method == "occlusion" else "torch"
        source = self.model_source if backend == "torch" else None
        return Explainer(self.model, method, backend=backend, weights=self.weights,
                         model_source=source, overrides=self.overrides, threads=self.threads,
                         **opts)  # fmt: skip


@dataclass(frozen=True)
class Views:
    """The lecture's views asked for (any mix)."""

    filters: str | None = None  # a conv layer
    maximize: str | None = None  # a class, or "all"
    dream: str | None = None  # a layer
    kernels: bool = False
    maps: bool = False
    count: int = 32  # filters shown
    steps: int = 96
    l1: float | None = None

    @property
    def any(self) -> bool:
        return bool(self.filters or self.maximize or self.dream or self.kernels or self.maps)

    def patterns(self, stems: list[str]) -> list[str]:
        out = [f"filters_{R._safe(self.filters)}.png"] if self.filters else []
        out += ["classes.png"] if self.maximize else []
        out += ["kernels.png"] if self.kernels else []
        first = stems[:1]
        out += [f"dream_{s}_{R._safe(self.dream)}.png" for s in first] if self.dream else []
        return out + ([f"maps_{s}.png" for s in first] if self.maps else [])


@dataclass(frozen=True)
class HeatOptions:
    methods: tuple[str, ...] = ("gradcam",)
    class_id: str | None = None
    layer: str | None = None
    rois: list[tuple[int, int, int, int]] = field(default_factory=list)
    conf: float = 0.25
    iou: float = 0.45
    max_boxes: int = 10
    patch: int | None = None
    stride: int | None = None
    batch: int = 32

    def explainer_opts(self) -> dict[str, Any]:
        return {"layer": self.layer, "conf": self.conf, "iou": self.iou,
                "max_boxes": self.max_boxes, "patch": self.patch, "stride": self.stride,
                "batch": self.batch}  # fmt: skip


def parse_methods(text: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """``--method`` as a tuple: one name, a comma list, or ``all``."""
    if not text:
        return default
    if text.strip().lower() == "all":
        return METHODS
    return tuple(check_method(m) for m in text.split(",") if m.strip())


def _stems(images: str | None) -> tuple[Any, list[str]]:
    """(the image stream, the file stems its outputs are named after)."""
    if images is None:
        return None, []
    from toolkit.data.images import is_video, iter_images

    frames = iter_images(images)
    root = Path(images) if Path(images).is_dir() else None
    stems = []
    for f in frames.files:
        rel = str(f.relative_to(root)) if root is not None else f.name
        stems.append(R._safe(rel) + ("_frame*" if is_video(f) else ""))
    return frames, stems


def _named(frames: Any, images: str) -> Any:
    """Frames renamed as their outputs are: relative to a folder source, else the file name."""
    root = Path(images) if Path(images).is_dir() else None
    for name, frame in frames:
        path, _, frame_no = name.partition("#")
        rel = str(Path(path).relative_to(root)) if root is not None else Path(path).name
        yield (f"{rel}#{frame_no}" if frame_no else rel), frame


def _run_views(
    args: ModelArgs, views: Views, frames: Any, images: str | None, out: Path
) -> dict[str, Any]:
    from toolkit.explain.ascent import AscentConfig
    from toolkit.explain.targets import check_class

    tm = args.torch_model()
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    first = next(iter(_named(frames, images)), None) if frames is not None else None
    if views.filters:
        cfg = AscentConfig(steps=views.steps, l1=views.l1 or 0.0)
        report["filters"] = R.filters(tm, views.filters, out, views.count, cfg)
    if views.maximize:
        n = len(tm.spec.labels) or 2
        picked = (list(range(n)) if views.maximize == "all"
                  else [check_class(tm.spec, views.maximize, None)])  # fmt: skip
        cfg = AscentConfig(steps=max(views.steps, 128), l1=views.l1 or 0.0)
        report["classes"] = R.class_maximizers(tm, [int(c) for c in picked], out, cfg)
    if views.kernels:
        report["kernels"] = R.kernels(tm, out)
    if views.dream or views.maps:
        if first is None:
            raise BadInputError("--dream and --maps need an IMAGE")
        if views.dream:
            cfg = AscentConfig(steps=views.steps // 3 or 1, lr=0.02, jitter=2)
            report["dream"] = R.deep_dream(tm, views.dream, first[0], first[1], out, cfg)
        if views.maps:
            report["maps"] = R.feature_maps(tm, first[0], first[1], out)
    return report


def _run_eval(
    args: ModelArgs, heat: HeatOptions, data: str, limit: int | None, out: Path | None,
    progress: Callable[[str, int, int], None] | None,
) -> dict[str, Any]:  # fmt: skip
    import json

    from toolkit.explain.evaluate import evaluate_methods
    from toolkit.fileio import atomic_write_text

    opts = heat.explainer_opts()
    scores = evaluate_methods(lambda m: args.explainer(m, **opts), heat.methods, data,
                              limit=limit, progress=progress)  # fmt: skip
    report = {"data": str(data), "methods": [s.to_dict() for s in scores]}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "eval.json", json.dumps(report, indent=2) + "\n")
        report["json"] = str(out / "eval.json")
    return report


def explain(
    args: ModelArgs,
    images: str | None = None,
    out: str | Path | None = None,
    *,
    heat: HeatOptions | None = None,
    views: Views | None = None,
    eval_data: str | None = None,
    eval_limit: int | None = 50,
    force: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Run one ``edgetk explain``: ``--eval`` figures, the lecture's views, or heatmaps of
    ``images`` (the default). Outputs go under ``out``, checked before any work.

    Raises:
        BadInputError: a missing ``out`` or ``images``, a bad option, an existing output
            without ``force`` (before the model loads).
    """
    heat = heat or HeatOptions()
    views = views or Views()
    if eval_data is not None:
        if views.any or images is not None:
            raise BadInputError("--eval runs alone: leave out IMAGES and the view options")
        folder = R.prepare_dir(out, force, ["eval.json"]) if out is not None else None
        return {"mode": "eval", **_run_eval(args, heat, eval_data, eval_limit, folder, progress)}
    if out is None:
        raise BadInputError("-o DIR is required: where the pictures go")
    frames, stems = _stems(images)
    if views.any:
        folder = R.prepare_dir(out, force, views.patterns(stems))
        return {"mode": "views", **_run_views(args, views, frames, images, folder)}
    if frames is None:
        raise BadInputError("IMAGES is required for heatmaps (or ask for --filters, --class, "
                            "--kernels, --dream, --maps or --eval)")  # fmt: skip
    tags = [m.replace("+", "p") for m in heat.methods]
    folder = R.prepare_dir(out, force, [f"{s}_{t}*" for s in stems for t in tags])
    images_out: list[dict[str, Any]] = []
    for method in heat.methods:
        with args.explainer(method, **heat.explainer_opts()) as ex:
            again, _ = _stems(images)
            images_out += R.heatmaps(ex, _named(again, images), folder, class_id=heat.class_id,
                                     rois=heat.rois)  # fmt: skip
    return {"mode": "heatmaps", "out": str(folder), "images": images_out,
            "skipped": [s.to_dict() for s in frames.skipped]}  # fmt: skip
