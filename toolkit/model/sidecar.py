"""``model.engine.json``: what an engine is, and what it was built for.

The engine file stays a plain TensorRT plan (trtexec, DeepStream and C++ loaders read it; a
header inside it breaks them, as Ultralytics users found). Everything else lives beside it:
the ModelSpec, the TensorRT version, the GPU and its compute capability, the ONNX file and its
sha256, the build options and the precision really built. Loading checks the sidecar against
this machine before TensorRT sees the plan, so a mismatch is a clear error instead of a
deserialization failure (or a crash).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError
from toolkit.model.spec import ModelSpec, SpecOverrides

log = logging.getLogger(__name__)

SIDECAR_FORMAT = 1


def sidecar_path(engine: str | Path) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    p = Path(engine)
    return p.with_name(p.name + ".json")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class EngineInfo:
    """The sidecar's content.

    Attributes:
        spec: the model's spec (``precision`` is the precision really built).
        tensorrt: the TensorRT version that built the plan (``trt.__version__``).
        gpu: GPU name; ``compute_capability``: ``"8.7"``.
        precision: what the engine computes in (from the ONNX, not from a flag).
        onnx: ``{"path": ..., "sha256": ...}`` of the source ONNX file, when known.
        build: the build options (profile, workspace, opt level, DLA, timing cache).
    """

    spec: ModelSpec
    tensorrt: str
    gpu: str | None
    compute_capability: str | None
    precision: str
    onnx: dict[str, str] | None = None
    build: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SIDECAR_FORMAT,
            "spec": self.spec.to_dict(),
            "tensorrt": self.tensorrt,
            "gpu": self.gpu,
            "compute_capability": self.compute_capability,
            "precision": self.precision,
            "onnx": dict(self.onnx) if self.onnx else None,
            "build": self.build,
            "created": self.created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EngineInfo:
        try:
            return cls(
                spec=ModelSpec.from_dict(d["spec"]),
                tensorrt=str(d["tensorrt"]),
                gpu=d.get("gpu"),
                compute_capability=d.get("compute_capability"),
                precision=str(d.get("precision") or d["spec"].get("precision", "fp32")),
                onnx=d.get("onnx") or None,
                build=dict(d.get("build") or {}),
                created=str(d.get("created") or ""),
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise BadInputError(f"invalid engine sidecar: missing or bad field {e}") from e


def write_sidecar(engine: str | Path, info: EngineInfo) -> Path:
    """Write ``<engine>.json`` atomically; returns its path."""
    from toolkit.fileio import atomic_write_text

    path = sidecar_path(engine)
    atomic_write_text(path, json.dumps(info.to_dict(), indent=2) + "\n")
    return path


def read_sidecar(engine: str | Path) -> EngineInfo | None:
    """The sidecar of ``engine``, or None when there is none (an engine built by trtexec).

    Raises:
        BadInputError: the sidecar exists but is not valid JSON or lacks a field.
    """
    path = sidecar_path(engine)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInputError(f"cannot read the engine sidecar {path}: {e}") from e
    if not isinstance(data, dict):
        raise BadInputError(f"invalid engine sidecar {path}: expected a JSON object")
    return EngineInfo.from_dict(data)


def _release(version: str) -> str:
    """``10.3.0.30`` -> ``10.3.0``: plans are compatible only within one TensorRT release."""
    return ".".join(version.split(".")[:3])


def rebuild_hint(engine: str | Path, info: EngineInfo) -> str:
    """What to run to get an engine for this machine."""
    src = (info.onnx or {}).get("path")
    if src:
        return f"rebuild it here: edgetk build --rebuild {engine} (from {src})"
    return f"rebuild it here from its ONNX file: edgetk build model.onnx -o {engine} --force"


def check_compatible(
    engine: str | Path,
    info: EngineInfo,
    *,
    tensorrt: str,
    gpu: str | None,
    compute_capability: str | None,
) -> None:
    """Refuse an engine built by another TensorRT release or for another GPU.

    The plan is tied to the TensorRT release and to the GPU's compute capability; another GPU
    model with the same capability loads (TensorRT warns, tactics may be slower) and is
    logged, not refused.

    Raises:
        BadInputError: naming both sides and how to rebuild.
    """
    name = Path(engine).name
    built = f"TensorRT {info.tensorrt} on {info.gpu or 'an unknown GPU'}"
    if info.compute_capability:
        built += f" (compute {info.compute_capability})"
    here = f"TensorRT {tensorrt} on {gpu or 'an unknown GPU'}"
    if compute_capability:
        here += f" (compute {compute_capability})"
    hint = rebuild_hint(engine, info)
    if _release(info.tensorrt) != _release(tensorrt):
        raise BadInputError(
            f"{name} was built with {built}; this machine has {here}: TensorRT engines only "
            f"load in the release that built them; {hint}"
        )
    if (
        info.compute_capability
        and compute_capability
        and info.compute_capability != compute_capability
    ):
        raise BadInputError(
            f"{name} was built for {built}; this machine has {here}: an engine runs only on "
            f"the GPU architecture it was built for; {hint}"
        )
    if info.gpu and gpu and info.gpu != gpu:
        log.warning("%s was built on %s, running on %s (same architecture)", name, info.gpu, gpu)


def spec_from_engine_io(
    inputs: list[tuple[str, tuple[int | None, ...]]],
    outputs: list[tuple[str, tuple[int | None, ...]]],
    overrides: SpecOverrides | None = None,
    precision: str = "fp32",
) -> ModelSpec:
    """A spec for an engine without a sidecar (built by trtexec), from its I/O tensors.

    The same inference as for a foreign ONNX file (``modelfile.spec_from_onnx``): the I/O
    shapes are wrapped in an empty ONNX graph so that one set of rules serves both; flags
    (``--imgsz``, ``--labels``...) fill the gaps.
    """
    from onnx import TensorProto, helper

    from toolkit.model.modelfile import spec_from_onnx

    def vi(name: str, shape: tuple[int | None, ...], axis_name: str) -> Any:
        dims = [d if d is not None else f"{axis_name}{i}" for i, d in enumerate(shape)]
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)

    graph = helper.make_graph(
        [],
        "engine",
        [vi(n, s, "in") for n, s in inputs],
        [vi(n, s, "out") for n, s in outputs],
    )
    spec = spec_from_onnx(helper.make_model(graph), source=None)
    spec = spec.with_changes(precision=precision)
    return overrides.apply(spec) if overrides is not None else spec
