"""Read and write the ModelSpec stored in ONNX files, and build one for foreign files.

A foreign ONNX file (no ``edgetk`` metadata) gets a spec from its graph (input name and shape),
from Ultralytics' metadata when present (``imgsz``, ``names``, ``task`` as Python literals, read
with ``ast.literal_eval``, never ``eval``), from the output shape, then from flags.
"""

from __future__ import annotations

import ast
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError
from toolkit.spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    METADATA_KEY,
    InputSpec,
    ModelSpec,
    OutputSpec,
    PreprocessSpec,
    SpecOverrides,
)

log = logging.getLogger(__name__)


def load_onnx(path: str | Path, *, load_weights: bool = True) -> Any:
    """Load an ONNX file, with a one-line error for a missing or corrupt file."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"model file not found: {p}")
    try:
        return onnx.load(str(p), load_external_data=load_weights)
    except Exception as e:  # onnx raises DecodeError, ValueError, OSError... for a bad file
        raise BadInputError(f"not a valid ONNX file: {p} ({type(e).__name__})") from e


def read_metadata(model: Any) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def write_spec(model: Any, spec: ModelSpec) -> None:
    """Store ``spec`` as JSON in the model's ``metadata_props["edgetk"]`` (in place)."""
    for i, prop in enumerate(model.metadata_props):
        if prop.key == METADATA_KEY:
            del model.metadata_props[i]
            break
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = spec.to_json()


def _dims(value_info: Any) -> tuple[int | None, ...]:
    dims = []
    for d in value_info.type.tensor_type.shape.dim:
        dims.append(int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None)
    return tuple(dims)


def graph_io(
    model: Any,
) -> tuple[list[tuple[str, tuple[int | None, ...]]], list[tuple[str, tuple[int | None, ...]]]]:
    """(name, shape) of the real graph inputs (initializers excluded) and of the outputs."""
    inits = {i.name for i in model.graph.initializer}
    ins = [(v.name, _dims(v)) for v in model.graph.input if v.name not in inits]
    outs = [(v.name, _dims(v)) for v in model.graph.output]
    return ins, outs


def guess_output_format(
    shape: tuple[int | None, ...], n_labels: int | None = None
) -> tuple[str, str]:
    """Guess (task, output format) from the first output's shape.

    ``[N, C]`` is a classifier (logits); ``[N, 4+C, A]`` with A > 4+C is YOLOv8/11;
    ``[N, A, 5+C]`` is YOLOv5/v7; ``[N, K, 6]`` is YOLO with NMS in the graph.
    """
    if len(shape) == 2:
        return "classify", "logits"
    if len(shape) == 3:
        a, b = shape[1], shape[2]
        if b == 6 and (a is None or a <= 1000):
            return "detect", "yolo-nms"
        if a is not None and b is not None:
            if a < b:
                return "detect", "yolov8"
            return "detect", "yolov5"
        if a is not None and b is None:
            return "detect", "yolov8"
        if b is not None and a is None:
            return "detect", "yolov5"
    if len(shape) == 4 and shape[2] == 1 and shape[3] == 1:
        return "classify", "logits"
    raise BadInputError(
        f"cannot tell the model's output layout from its shape {list(shape)}: "
        "pass --task and --output-format"
    )


def _ultralytics(meta: dict[str, str]) -> dict[str, Any]:
    """Ultralytics stores Python literals (``{0: 'person', ...}``); parse them safely."""
    out: dict[str, Any] = {}
    for key in ("imgsz", "names", "task", "stride", "batch"):
        if key in meta:
            try:
                out[key] = ast.literal_eval(meta[key])
            except (ValueError, SyntaxError):
                log.warning("ignoring unreadable metadata %s=%r", key, meta[key][:80])
    return out


def spec_from_onnx(model: Any, source: str | None = None) -> ModelSpec:
    """The model's own spec, or one inferred for a foreign file (before flags are applied)."""
    meta = read_metadata(model)
    ins, outs = graph_io(model)
    if not ins:
        raise BadInputError("the ONNX model has no inputs")
    if METADATA_KEY in meta:
        return ModelSpec.from_json(meta[METADATA_KEY])

    name, shape = ins[0]
    if len(shape) != 4:
        raise BadInputError(
            f"expected a 4-D image input (NCHW), got '{name}' with shape {list(shape)}"
        )
    ul = _ultralytics(meta)
    shape_l = list(shape)
    imgsz = ul.get("imgsz")
    if isinstance(imgsz, (list, tuple)) and len(imgsz) == 2:
        shape_l[2] = shape_l[2] or int(imgsz[0])
        shape_l[3] = shape_l[3] or int(imgsz[1])
    labels: tuple[str, ...] = ()
    names = ul.get("names")
    if isinstance(names, dict):
        labels = tuple(str(names[k]) for k in sorted(names))
    elif isinstance(names, (list, tuple)):
        labels = tuple(str(n) for n in names)

    out_shape = outs[0][1] if outs else ()
    ul_task = ul.get("task")
    if ul_task == "detect" or (ul_task is None and len(out_shape) == 3):
        task, fmt = guess_output_format(out_shape)
        if task != "detect":
            task, fmt = "detect", "yolov8"
    else:
        try:
            task, fmt = guess_output_format(out_shape)
        except BadInputError:
            task, fmt = "classify", "logits"

    if task == "detect":
        # YOLO convention: RGB, 0..1, letterbox with grey 114 padding.
        pre = PreprocessSpec(resize="letterbox", scale=1 / 255)
    else:
        # The common convention for foreign classifiers (torchvision, timm): ImageNet stats.
        pre = PreprocessSpec(resize="center-crop", mean=IMAGENET_MEAN, std=IMAGENET_STD)
    channels = shape_l[1] or 3
    color = "gray" if channels == 1 else "rgb"
    if channels == 1:
        pre = replace(pre, mean=pre.mean[:1], std=pre.std[:1])
    return ModelSpec(
        task=task,  # type: ignore[arg-type]
        input=InputSpec(name=name, shape=tuple(shape_l), color=color),  # type: ignore[arg-type]
        preprocess=pre,
        labels=labels,
        output=OutputSpec(format=fmt, name=outs[0][0] if outs else None),
        source=source,
        extra={"foreign": True},
    )


def read_spec(path: str | Path, overrides: SpecOverrides | None = None) -> ModelSpec:
    """The spec of an ONNX file with command-line overrides applied."""
    model = load_onnx(path, load_weights=False)
    spec = spec_from_onnx(model)
    if overrides is not None:
        spec = overrides.apply(spec)
    return spec
