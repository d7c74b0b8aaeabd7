"""`edgetk explain MODEL [IMAGES]`: what the CNN looks at, and what it learned."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from toolkit.cli import options as opt
from toolkit.cli.common import cli_command, console, print_json
from toolkit.model.spec import SpecOverrides

ImagesArg = Annotated[
    str | None,
    typer.Argument(help="An image, a folder, a glob or a video (heatmaps, --dream, --maps)."),
]
OutOpt = Annotated[Path | None, typer.Option("-o", "--out", help="Folder for the pictures.")]
MethodOpt = Annotated[
    str | None,
    typer.Option("--method", help="gradcam | gradcam++ | layercam | occlusion | saliency, "
                 "a comma list, or all (default: gradcam; --eval: all)."),
]  # fmt: skip
ClassOpt = Annotated[
    str | None,
    typer.Option("--class", help="With IMAGES: the class to explain (default: the top one). "
                 "Without: draw the input that maximizes it (a name, an id, or all)."),
]  # fmt: skip
LayerOpt = Annotated[str | None, typer.Option("--layer", help="The CAM layer (default: chosen).")]
RoiOpt = Annotated[
    list[str] | None, typer.Option("--roi", help="x,y,w,h: report the heat inside (repeatable).")
]
FiltersOpt = Annotated[str | None, typer.Option("--filters", help="A conv layer: its filters' "
                                                "preferred inputs, by gradient ascent.")]  # fmt: skip
DreamOpt = Annotated[str | None, typer.Option("--dream", help="A layer: DeepDream the IMAGE.")]
KernelsOpt = Annotated[bool, typer.Option("--kernels", help="The first conv layer's kernels.")]
MapsOpt = Annotated[bool, typer.Option("--maps", help="The IMAGE's feature maps, stage by stage.")]
EvalOpt = Annotated[
    str | None, typer.Option("--eval", help="A YOLO-format set with defect boxes: pointing "
                             "game, deletion vs random, time per image, per method.")
]  # fmt: skip
LimitOpt = Annotated[int, typer.Option("--limit", help="--eval: images used (0: all).")]
CountOpt = Annotated[int, typer.Option("--count", help="--filters: filters drawn.")]
StepsOpt = Annotated[int, typer.Option("--steps", help="Gradient-ascent steps.")]
L1Opt = Annotated[float | None, typer.Option("--l1", help="L1 penalty on the pixels.")]
PatchOpt = Annotated[int | None, typer.Option("--patch", help="Occlusion patch side (px).")]
StrideOpt = Annotated[int | None, typer.Option("--stride", help="Occlusion step (px).")]
ConfOpt = Annotated[float, typer.Option("--conf", help="Detection: boxes explained from.")]
MaxBoxesOpt = Annotated[int, typer.Option("--max-boxes", help="Detection: boxes per image.")]


@cli_command
@opt.spec_options()
def command(
    model: opt.RunModelArg,
    images: ImagesArg = None,
    out: OutOpt = None,
    method: MethodOpt = None,
    class_: ClassOpt = None,
    layer: LayerOpt = None,
    roi: RoiOpt = None,
    filters: FiltersOpt = None,
    dream: DreamOpt = None,
    kernels: KernelsOpt = False,
    maps: MapsOpt = False,
    eval_data: EvalOpt = None,
    limit: LimitOpt = 50,
    count: CountOpt = 32,
    steps: StepsOpt = 96,
    l1: L1Opt = None,
    patch: PatchOpt = None,
    stride: StrideOpt = None,
    conf: ConfOpt = 0.25,
    iou: opt.DetIouOpt = 0.45,
    max_boxes: MaxBoxesOpt = 10,
    batch: opt.ImageBatchOpt = 32,
    backend: opt.BackendOpt = "auto",
    force: opt.ForceOpt = False,
    json_out: opt.JsonOpt = False,
    threads: opt.ThreadsOpt = None,
    weights: opt.WeightsOpt = None,
    model_source: opt.ModelSourceOpt = None,
    spec: SpecOverrides = opt.GROUP,
    verbose: opt.VerboseOpt = False,
) -> None:
    """Heatmaps of why the model said what it said, and the lecture's views of what it learned.

    Gradient methods (gradcam, gradcam++, layercam, saliency) run on the PyTorch model: for an
    ONNX file, its recorded zoo: source or --model-source. Occlusion runs on --backend.
    Detectors get one heatmap per detected box.
    """
    from toolkit.explain import HeatOptions, ModelArgs, Views, explain
    from toolkit.explain.api import parse_methods
    from toolkit.explain.explainer import METHODS
    from toolkit.live.verdict import parse_roi

    rois = [r for r in (parse_roi(t) for t in roi or []) if r is not None]
    methods = parse_methods(method, METHODS if eval_data else ("gradcam",))
    views = Views(filters=filters, maximize=class_ if images is None else None, dream=dream,
                  kernels=kernels, maps=maps, count=count, steps=steps, l1=l1)  # fmt: skip
    heat = HeatOptions(methods=methods, class_id=class_ if images else None, layer=layer,
                       rois=rois, conf=conf, iou=iou, max_boxes=max_boxes, patch=patch,
                       stride=stride, batch=batch)  # fmt: skip
    args = ModelArgs(model, backend, weights, model_source, spec, threads)
    report = explain(args, images, out, heat=heat, views=views, eval_data=eval_data,
                     eval_limit=limit or None, force=force)  # fmt: skip
    if json_out:
        print_json({"model": model, **report})
    else:
        _print(report)


def _print(report: dict[str, Any]) -> None:
    mode = report["mode"]
    if mode == "eval":
        _print_eval(report)
    elif mode == "views":
        for what, item in report.items():
            if isinstance(item, dict) and "png" in item:
                console.print(f"{what}: {item['png']}")
    else:
        n = sum(len(i["maps"]) for i in report["images"])
        for img in report["images"]:
            for m in img["maps"]:
                inside = f", {m['inside_own_box']:.0%} in its box" if "box" in m else ""
                console.print(f"{img['source']} {img['method']}: {m['label']} "
                              f"{m['score']:.2f}, peak {m['peak']}{inside}")  # fmt: skip
        console.print(f"{n} heatmap(s) in {report['out']}")


def _print_eval(report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    for col in ("method", "pointing game", "maps", "deletion AUC (heat)", "random", "ms/map"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for m in report["methods"]:
        pg = m["pointing_game"]
        d = m["deletion"]
        table.add_row(m["method"], "-" if pg is None else f"{pg:.2f}", str(m["trials"]),
                      f"{d['auc_heat']:.3f}", f"{d['auc_random']:.3f}",
                      "-" if m["ms_per_map"] is None else f"{m['ms_per_map']:.1f}")  # fmt: skip
    console.print(table)
    console.print("deletion AUC: the score left while the hottest (or random) pixels are "
                  "covered, lower is a sharper map")  # fmt: skip
