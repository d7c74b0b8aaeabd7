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
from toolkit.model.spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    METADATA_KEY,
    InputSpec,
    ModelSpec,
    OutputSpec,
    PreprocessSpec,
    SpecOverrides,
    check_label_count,
)
from toolkit.model.spec_schema import SpecFieldError

log = logging.getLogger(__name__)


def load_onnx(path: str | Path, *, load_weights: bool = True) -> Any:
    """Load an ONNX file, with a one-line error for a missing or corrupt file."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"model file not found: {p}")
    if p.stat().st_size == 0:
        # Protobuf reads zero bytes as an empty, valid message: say what it is instead.
        raise BadInputError(f"not a valid ONNX file: {p} (empty file)")
    try:
        model = onnx.load(str(p), load_external_data=load_weights)
    except Exception as e:  # onnx raises DecodeError, ValueError, OSError... for a bad file
        raise BadInputError(f"not a valid ONNX file: {p} ({type(e).__name__})") from e
    missing = _missing_part(model)
    if missing:
        # A file cut at a field boundary still parses: it just lacks what came after the cut.
        raise BadInputError(f"not a valid ONNX file: {p} (truncated or not ONNX: {missing})")
    return model


def _missing_part(model: Any) -> str | None:
    """What a real ONNX model always has and ``model`` lacks, or None."""
    if model.ir_version <= 0:
        return "no IR version"
    if not model.HasField("graph"):
        return "no graph"
    if not model.opset_import:
        return "no opset import"
    if not model.graph.output:
        return "the graph has no outputs"
    return None


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


# Ultralytics metadata keys -> the longest text read. ``literal_eval`` parses the whole text
# first: long or deeply nested text costs memory and time, or ends in MemoryError.
_UL_MAX_CHARS = {"names": 200_000, "imgsz": 40, "stride": 20, "batch": 20}
_UL_MAX_DEPTH = 2  # names {0: 'a'} and imgsz [h, w] nest once


def _literal_depth(text: str) -> int:
    """The bracket nesting of a Python literal, brackets inside quoted strings not counted."""
    depth = deepest = 0
    quote: str | None = None
    escaped = False
    for ch in text:
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def _ul_literal(key: str, text: str) -> Any:
    """One Ultralytics value parsed with ``literal_eval`` inside the size limits.

    Returns None (with a warning) for text that is no literal: other tools store free text
    under these keys. Oversized or over-nested text is refused: no exporter writes it.
    """
    limit = _UL_MAX_CHARS[key]
    if len(text) > limit:
        raise BadInputError(f"invalid model metadata: {key}: longer than {limit:,} characters")
    if _literal_depth(text) > _UL_MAX_DEPTH:
        raise BadInputError(
            f"invalid model metadata: {key}: nested deeper than {_UL_MAX_DEPTH} levels"
        )
    try:
        return ast.literal_eval(text)
    except (MemoryError, RecursionError):  # e.g. 100,000 unary minus signs
        raise BadInputError(f"invalid model metadata: {key}: too complex to read") from None
    except (ValueError, SyntaxError, TypeError):
        log.warning("ignoring unreadable metadata %s=%r", key, text[:80])
        return None


def _ul_check(key: str, value: Any) -> str | None:
    """Why a parsed Ultralytics value has the wrong type or size, or None."""
    from toolkit.model.spec_schema import MAX_IMGSZ, MAX_LABEL_CHARS

    def size(v: Any, hi: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= hi

    if key == "names":
        items = list(value.items()) if isinstance(value, dict) else None
        if items is not None and all(isinstance(k, int) and isinstance(v, str) for k, v in items):
            names = [v for _, v in items]
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            names = list(value)
        else:
            return "expected {int: str} or [str, ...]"
        long = next((n for n in names if len(n) > MAX_LABEL_CHARS), None)
        return None if long is None else f"a name is longer than {MAX_LABEL_CHARS} characters"
    if key == "imgsz":
        pair = value if isinstance(value, (list, tuple)) else [value]
        if len(pair) in (1, 2) and all(size(v, MAX_IMGSZ) for v in pair):
            return None
        return f"expected an int or [h, w], each 1..{MAX_IMGSZ}"
    if key == "batch":  # unused here; exporters may write -1 for a dynamic batch
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "expected an integer"
    return None if size(value, MAX_IMGSZ) else f"expected an integer 1..{MAX_IMGSZ}"


def _ultralytics(meta: dict[str, str]) -> dict[str, Any]:
    """Ultralytics stores Python literals (``{0: 'person', ...}``); parse them safely.

    ``literal_eval``, never ``eval``, on text of bounded size and nesting, and each result's
    type is checked. ``task`` is plain text (Ultralytics writes ``detect``, unquoted).
    """
    out: dict[str, Any] = {}
    for key in _UL_MAX_CHARS:
        if key not in meta:
            continue
        value = _ul_literal(key, meta[key])
        if value is None:
            continue
        why = _ul_check(key, value)
        if why is not None:
            raise BadInputError(f"invalid model metadata: {key}: {why}")
        out[key] = value
    task = meta.get("task", "").strip().strip("'\"")
    if task:
        out["task"] = task
    return out


def spec_from_onnx(model: Any, source: str | None = None) -> ModelSpec:
    """The model's own spec, or one inferred for a foreign file (before flags are applied)."""
    meta = read_metadata(model)
    ins, outs = graph_io(model)
    if not ins:
        raise BadInputError("the ONNX model has no inputs")
    if METADATA_KEY in meta:
        spec = ModelSpec.from_json(meta[METADATA_KEY])
        _check_labels(spec, outs, "labels")
        return spec

    name, shape = ins[0]
    if len(shape) != 4:
        raise BadInputError(
            f"expected a 4-D image input (NCHW), got '{name}' with shape {list(shape)}"
        )
    ul = _ultralytics(meta)
    shape_l = list(shape)
    imgsz = ul.get("imgsz")
    if imgsz is not None:  # checked by _ultralytics: an int or [h, w] / [n]
        h, w = (imgsz, imgsz) if isinstance(imgsz, int) else (imgsz[0], imgsz[-1])
        shape_l[2] = shape_l[2] or int(h)
        shape_l[3] = shape_l[3] or int(w)
    out_shape = outs[0][1] if outs else ()
    task, fmt = _foreign_output(ul.get("task"), out_shape)
    channels = shape_l[1] or 3
    color = "gray" if channels == 1 else "rgb"
    pre = _foreign_preprocess(task, channels)
    labels = _ultralytics_labels(ul.get("names"))
    spec = ModelSpec(
        task=task,  # type: ignore[arg-type]
        input=InputSpec(name=name, shape=tuple(shape_l), color=color),  # type: ignore[arg-type]
        preprocess=pre,
        labels=labels,
        output=OutputSpec(format=fmt, name=outs[0][0] if outs else None),
        source=source,
        extra={"foreign": True},
    )
    _check_labels(spec, outs, "names")
    return spec


def _ultralytics_labels(names: Any) -> tuple[str, ...]:
    """Ultralytics' ``names`` (``{0: 'person', ...}`` or a list) as labels."""
    if isinstance(names, dict):
        return tuple(str(names[k]) for k in sorted(names))
    if isinstance(names, (list, tuple)):
        return tuple(str(n) for n in names)
    return ()


def _foreign_output(ul_task: Any, out_shape: tuple[int | None, ...]) -> tuple[str, str]:
    """Task and output format of a foreign file: Ultralytics' task, else the output's shape."""
    if ul_task == "detect" or (ul_task is None and len(out_shape) == 3):
        task, fmt = guess_output_format(out_shape)
        if task != "detect":
            task, fmt = "detect", "yolov8"
        return task, fmt
    try:
        return guess_output_format(out_shape)
    except BadInputError:
        return "classify", "logits"


def _foreign_preprocess(task: str, channels: int) -> PreprocessSpec:
    """The preprocessing convention of a foreign model of ``task``."""
    if task == "detect":
        # YOLO convention: RGB, 0..1, letterbox with grey 114 padding.
        pre = PreprocessSpec(resize="letterbox", scale=1 / 255)
    else:
        # The common convention for foreign classifiers (torchvision, timm): ImageNet stats.
        pre = PreprocessSpec(resize="center-crop", mean=IMAGENET_MEAN, std=IMAGENET_STD)
    if channels == 1:
        pre = replace(pre, mean=pre.mean[:1], std=pre.std[:1])
    return pre


def _output_shape(spec: ModelSpec, outs: list[tuple[str, tuple[int | None, ...]]]) -> Any:
    """The shape of the output the spec reads (its named one, else the first), or None."""
    named = [shape for name, shape in outs if name == spec.output.name]
    if named:
        return named[0]
    return outs[0][1] if outs else None


def _check_labels(
    spec: ModelSpec, outs: list[tuple[str, tuple[int | None, ...]]], field_name: str
) -> None:
    """Metadata labels must fit the graph's class count (when its output shape tells it)."""
    shape = _output_shape(spec, outs)
    if shape is None:
        return
    try:
        check_label_count(spec, shape, field_name)
    except SpecFieldError as e:
        raise BadInputError(f"invalid model metadata: {e}") from e


def read_spec(path: str | Path, overrides: SpecOverrides | None = None) -> ModelSpec:
    """The spec of an ONNX file with command-line overrides applied.

    ``--labels`` must fit the graph's class count, as export requires.
    """
    model = load_onnx(path, load_weights=False)
    spec = spec_from_onnx(model)
    if overrides is not None:
        spec = overrides.apply(spec)
        check_override_labels(spec, graph_io(model)[1], overrides)
    return spec


def check_override_labels(
    spec: ModelSpec,
    outs: list[tuple[str, tuple[int | None, ...]]],
    overrides: SpecOverrides | None,
) -> None:
    """``--labels`` must name as many classes as the model's output holds (as export checks).

    ``outs``: the (name, shape) of the model's outputs (an ONNX graph's, an engine's).
    """
    shape = _output_shape(spec, outs)
    if overrides is not None and overrides.labels is not None and shape is not None:
        check_label_count(spec, shape, "--labels")
