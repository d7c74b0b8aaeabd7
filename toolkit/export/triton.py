"""A Triton model repository from an edgetk ONNX file or TensorRT engine.

``repo/<name>/config.pbtxt`` is derived from the file itself (tensor names, types and shapes
from the ONNX graph, or from the engine's sidecar), never typed by hand: a config that does not
match the model is Triton users' most common failure. A dynamic batch axis becomes
``max_batch_size`` with dynamic batching (preferred sizes, a queue delay); a fixed batch cannot
be batched by Triton and gets ``max_batch_size: 0`` with the full shape. The edgetk spec goes in
as the ``edgetk`` parameter, so a ``triton://`` client needs no flags.

Example:
    >>> write_repository("defects.onnx", "model_repository/")
    TritonRepository(model_dir=PosixPath('model_repository/defects'), ...)
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.errors import BadInputError
from toolkit.fileio import apply_umask, onnx_companions
from toolkit.model.spec import ModelSpec, SpecOverrides

# ONNX / numpy dtype names -> Triton's data types.
TRITON_TYPES = {
    "float32": "TYPE_FP32", "float16": "TYPE_FP16", "float64": "TYPE_FP64",
    "uint8": "TYPE_UINT8", "int8": "TYPE_INT8", "int16": "TYPE_INT16", "uint16": "TYPE_UINT16",
    "int32": "TYPE_INT32", "int64": "TYPE_INT64", "bool": "TYPE_BOOL",
}  # fmt: skip
SPEC_PARAMETER = "edgetk"
DEFAULT_MAX_BATCH = 8
KINDS = ("cpu", "gpu")


@dataclass(frozen=True)
class TritonOptions:
    """How Triton serves the model.

    Attributes:
        name: the model's name in the repository (default: the file's stem).
        max_batch: Triton's ``max_batch_size`` for a dynamic batch axis.
        preferred: preferred batch sizes of the dynamic batcher (default: powers of two up to
            ``max_batch``, beyond 1).
        queue_delay_us: how long the batcher waits to fill a batch.
        instances: model instances; ``kind``: ``cpu`` or ``gpu`` (default: gpu for an engine).
    """

    name: str | None = None
    max_batch: int = DEFAULT_MAX_BATCH
    preferred: tuple[int, ...] | None = None
    queue_delay_us: int = 2000
    instances: int = 1
    kind: str | None = None


@dataclass
class TritonRepository:
    """What was written: the model folder, its config, platform and batching."""

    model_dir: Path
    config: Path
    platform: str
    max_batch_size: int
    inputs: list[dict[str, object]] = field(default_factory=list)
    outputs: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "model_dir": str(self.model_dir),
            "config": str(self.config),
            "platform": self.platform,
            "max_batch_size": self.max_batch_size,
            "inputs": self.inputs,
            "outputs": self.outputs,
        }


def _onnx_io(path: Path) -> tuple[list[tuple[str, tuple[int | None, ...], str]], ...]:
    import onnx

    from toolkit.model.modelfile import load_onnx

    proto = load_onnx(path, load_weights=False)
    inits = {i.name for i in proto.graph.initializer}

    def one(v: object) -> tuple[str, tuple[int | None, ...], str]:
        t = v.type.tensor_type  # type: ignore[attr-defined]
        dims = tuple(
            int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in t.shape.dim
        )
        dtype = str(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type))
        return v.name, dims, dtype  # type: ignore[attr-defined]

    ins = [one(v) for v in proto.graph.input if v.name not in inits]
    return ins, [one(v) for v in proto.graph.output]


def _tensor(name: str, dims: tuple[int | None, ...], dtype: str, batched: bool) -> dict:
    if dtype not in TRITON_TYPES:
        raise BadInputError(f"tensor '{name}' has type {dtype}, which Triton has no type for")
    shown = dims[1:] if batched else dims
    return {"name": name, "data_type": TRITON_TYPES[dtype], "dims": [d or -1 for d in shown]}


def _batched(ins: list[tuple[str, tuple[int | None, ...], str]]) -> bool:
    """Triton batches along axis 0 only when every input's axis 0 is dynamic."""
    return bool(ins) and all(dims and dims[0] is None for _, dims, _ in ins)


def _preferred(opts: TritonOptions, max_batch: int) -> list[int]:
    if opts.preferred is not None:
        bad = [b for b in opts.preferred if not 1 <= b <= max_batch]
        if bad:
            raise BadInputError(f"preferred batch sizes must be in 1..{max_batch}, got {bad}")
        return sorted(set(opts.preferred))
    sizes, b = [], 2
    while b <= max_batch:
        sizes.append(b)
        b *= 2
    return sizes or [max_batch]


def _list(values: list[object]) -> str:
    return "[ " + ", ".join(str(v) for v in values) + " ]"


def _tensors_text(key: str, tensors: list[dict]) -> list[str]:
    if not tensors:
        return []
    rows = [
        f"  {{ name: {json.dumps(t['name'])} data_type: {t['data_type']} dims: {_list(t['dims'])} }}"
        for t in tensors
    ]
    return [f"{key} [", ",\n".join(rows), "]"]


def config_text(
    name: str, platform: str, max_batch: int, inputs: list[dict], outputs: list[dict],
    opts: TritonOptions, kind: str, spec: ModelSpec,
) -> str:  # fmt: skip
    """``config.pbtxt`` (protobuf text format of Triton's ``ModelConfig``)."""
    lines = [f"name: {json.dumps(name)}", f"platform: {json.dumps(platform)}"]
    lines.append(f"max_batch_size: {max_batch}")
    lines += _tensors_text("input", inputs) + _tensors_text("output", outputs)
    if max_batch > 0:
        lines += [
            "dynamic_batching {",
            f"  preferred_batch_size: {_list(_preferred(opts, max_batch))}",
            f"  max_queue_delay_microseconds: {opts.queue_delay_us}",
            "}",
        ]
    lines += [f"instance_group [ {{ count: {opts.instances} kind: KIND_{kind.upper()} }} ]"]
    lines += [
        "parameters {",
        f"  key: {json.dumps(SPEC_PARAMETER)}",
        f"  value: {{ string_value: {json.dumps(spec.to_json())} }}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _check(opts: TritonOptions) -> str | None:
    if opts.max_batch < 1:
        raise BadInputError(f"--max-batch must be >= 1, got {opts.max_batch}")
    if opts.instances < 1:
        raise BadInputError(f"--instances must be >= 1, got {opts.instances}")
    if opts.queue_delay_us < 0:
        raise BadInputError(f"--queue-delay must be >= 0, got {opts.queue_delay_us}")
    if opts.kind is not None and opts.kind not in KINDS:
        raise BadInputError(f"--kind must be one of {', '.join(KINDS)}, got {opts.kind!r}")
    if opts.name is not None and (not opts.name or "/" in opts.name or opts.name.startswith(".")):
        raise BadInputError(f"invalid Triton model name {opts.name!r}")
    return opts.kind


def _engine_io(path: Path, overrides: SpecOverrides | None) -> tuple[ModelSpec, list, list, int]:
    from toolkit.model.sidecar import read_sidecar

    info = read_sidecar(path)
    if info is None:
        raise BadInputError(
            f"{path} has no sidecar ({path.name}.json): export-triton reads the engine's spec "
            "and batch profile from it (build the engine with edgetk build)"
        )
    spec = info.spec if overrides is None else overrides.apply(info.spec)
    profile = info.build.get("profile") if isinstance(info.build, dict) else None
    max_batch = int((profile or {}).get("max_batch") or 0)
    shape = tuple(spec.input.shape)
    ins = [(spec.input.name, (None, *shape[1:]) if max_batch else shape, "float32")]
    # Outputs are left to Triton's TensorRT auto-complete: it reads them from the plan.
    return spec, ins, [], max_batch


def write_repository(
    model: str | Path,
    repository: str | Path,
    options: TritonOptions | None = None,
    *,
    overrides: SpecOverrides | None = None,
    force: bool = False,
) -> TritonRepository:
    """Write ``repository/<name>/{config.pbtxt, 1/model.onnx|model.plan}``.

    Raises:
        BadInputError: not an ONNX file or engine, bad options, or the model folder exists
            (without ``force``).
    """
    from toolkit.backends import is_engine, is_onnx
    from toolkit.model.modelfile import read_spec

    opts = options or TritonOptions()
    kind = _check(opts)
    src = Path(model)
    if not src.is_file():
        raise BadInputError(f"file not found: {src} (expected an edgetk .onnx file or .engine)")
    name = opts.name or src.stem.split(".")[0]
    target = Path(repository) / name
    if target.exists() and not force:
        raise BadInputError(f"{target} exists (use --force to replace it)")
    if is_onnx(src):
        spec = read_spec(src, overrides)
        ins, outs = _onnx_io(src)
        platform, file_name, kind = "onnxruntime_onnx", "model.onnx", kind or "cpu"
        max_batch = opts.max_batch if _batched(ins) else 0
    elif is_engine(src):
        spec, ins, outs, max_batch = _engine_io(src, overrides)
        platform, file_name, kind = "tensorrt_plan", "model.plan", kind or "gpu"
        max_batch = min(max_batch, opts.max_batch) if max_batch else 0
    else:
        raise BadInputError(f"{src}: export-triton takes an .onnx file or a TensorRT .engine")
    batched = max_batch > 0
    tin = [_tensor(n, d, t, batched) for n, d, t in ins]
    tout = [_tensor(n, d, t, batched) for n, d, t in outs]
    text = config_text(name, platform, max_batch, tin, tout, opts, kind, spec)
    _write_model_dir(target, text, src, file_name)
    return TritonRepository(target, target / "config.pbtxt", platform, max_batch, tin, tout)


def _write_model_dir(target: Path, config: str, src: Path, file_name: str) -> None:
    """Build the folder beside ``target`` and rename it into place (a failure leaves none)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (tmp / "1").mkdir()
        shutil.copyfile(src, tmp / "1" / file_name)
        for extra in onnx_companions(src):  # external data keeps the name the graph refers to
            shutil.copyfile(extra, tmp / "1" / extra.name)
        (tmp / "config.pbtxt").write_text(config, encoding="utf-8")
        for p in (tmp, tmp / "1", *tmp.rglob("*")):
            apply_umask(p)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
