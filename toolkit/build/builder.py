"""``edgetk build``: an ONNX file -> a TensorRT plan + its sidecar, one code path for 10.3+ and 11.x.

- strongly typed network (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``): the precision is
  the ONNX file's (fp32, fp16, or int8 QDQ for the tensorrt target), never a builder flag;
  11.x removed those flags and ``EXPLICIT_BATCH``;
- parser errors listed with the node name and operator;
- workspace limit (``MemoryPoolType.WORKSPACE``), ``builder_optimization_level``;
- a timing cache file read before and written back (atomically) after the build;
- ``--dla N`` (Jetson Orin: TensorRT 10.x, or 11.4.1+ on JetPack 7.2.2+): DLA default
  device with GPU fallback;
- progress through ``trt.IProgressMonitor`` when the version has it;
- the plan and the sidecar written atomically: a failed build leaves earlier files intact.

Everything that can be checked without TensorRT (output path, precision, profile) is checked
first (:mod:`toolkit.build.planning`), so that those errors are the same on every machine; the
calls into TensorRT's parser and builder are in :mod:`toolkit.build.network`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from toolkit.build.network import (
    Progress,
    configure,
    parse_network,
    read_timing_cache,
    serialize_network,
)
from toolkit.build.planning import BuildOptions, BuildPlan, plan_build
from toolkit.errors import BadInputError
from toolkit.model.sidecar import EngineInfo, sha256_file, sidecar_path
from toolkit.model.spec import SpecOverrides, portable_spec
from toolkit.platform.gpu import GpuIdentity, trt_logger

log = logging.getLogger(__name__)


@dataclass
class BuildReport:
    """What was built: files, precision, profile, TensorRT and GPU, and how long it took."""

    engine: str
    sidecar: str
    onnx: str
    precision: str
    target: str | None
    profile: dict[str, Any]
    tensorrt: str
    gpu: str | None
    compute_capability: str | None
    seconds: float
    size_bytes: int
    timing_cache: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_engine(
    onnx_path: str | Path,
    output: str | Path,
    options: BuildOptions | None = None,
    *,
    overrides: SpecOverrides | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> BuildReport:
    """Build a TensorRT engine from an ONNX file and write ``output`` + ``output.json``.

    Args:
        onnx_path: the ONNX model (fp32, fp16, or int8 QDQ made for the tensorrt target).
        output: the ``.engine`` (plan) path.
        options: profile, workspace, timing cache, optimization level, DLA.
        overrides: spec flags for a foreign ONNX file (``--imgsz``...).
        force: overwrite an existing engine.
        progress: called with short status lines while TensorRT builds.

    Raises:
        BadInputError: bad input (file, precision, flags, parser errors), exit code 2.
        MissingDependencyError: tensorrt is not installed (names the ``tensorrt`` extra).
        ToolkitError: TensorRT failed to build.

    Example:
        >>> build_engine("model.trt-int8.onnx", "model.engine", BuildOptions(max_batch=8))
    """
    from toolkit.fileio import check_output
    from toolkit.platform.gpu import gpu_identity, import_tensorrt

    options = options or BuildOptions()
    out = check_output(output, force)
    plan = plan_build(onnx_path, options, overrides)
    trt = import_tensorrt("edgetk build")
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()

    logger = trt_logger(trt)
    builder, network = parse_network(trt, plan, options, logger, say)
    cache_path = Path(options.timing_cache) if options.timing_cache else None
    config = configure(trt, builder, plan, options, read_timing_cache(cache_path), progress)
    data = serialize_network(builder, network, config, logger, plan, say)

    info = _engine_info(plan, options, out, cache_path, str(trt.__version__), gpu_identity(0))
    _write(out, data, info, cache_path, config)
    return BuildReport(
        engine=str(out),
        sidecar=str(sidecar_path(out)),
        onnx=str(plan.onnx),
        precision=info.precision,
        target=plan.precision.target,
        profile=plan.profile.to_dict(),
        tensorrt=info.tensorrt,
        gpu=info.gpu,
        compute_capability=info.compute_capability,
        seconds=round(time.perf_counter() - t0, 2),
        size_bytes=len(data),
        timing_cache=str(cache_path) if cache_path else None,
    )


def _engine_info(
    plan: BuildPlan,
    options: BuildOptions,
    out: Path,
    cache_path: Path | None,
    tensorrt: str,
    gpu: GpuIdentity,
) -> EngineInfo:
    """The sidecar of the engine ``out``: its spec, TensorRT, GPU, ONNX file and options."""
    onnx_abs = plan.onnx.resolve()
    return EngineInfo(
        # Its recorded files stay relative to the file that carries it (the engine may be
        # built into another folder than the ONNX file's).
        spec=portable_spec(plan.spec, out.parent, read_from=plan.onnx.parent),
        tensorrt=tensorrt,
        gpu=gpu.name,
        compute_capability=gpu.compute_capability,
        precision=plan.precision.precision,
        onnx={"path": str(onnx_abs), "sha256": sha256_file(onnx_abs)},
        build={
            **plan.profile.to_dict(),
            "workspace": options.workspace,
            "opt_level": options.opt_level,
            "dla_core": options.dla_core,
            "timing_cache": str(cache_path) if cache_path else None,
            "strongly_typed": True,
            "target": plan.precision.target,
        },
    )


def _write(out: Path, data: bytes, info: EngineInfo, cache_path: Path | None, config: Any) -> None:
    """The plan and its sidecar together (atomically), then the updated timing cache."""
    import json

    from toolkit.fileio import atomic_path, atomic_write_bytes

    with atomic_path(out) as tmp_engine, atomic_path(sidecar_path(out)) as tmp_json:
        tmp_engine.write_bytes(data)
        tmp_json.write_text(json.dumps(info.to_dict(), indent=2) + "\n", encoding="utf-8")
    if cache_path is not None:
        atomic_write_bytes(cache_path, bytes(memoryview(config.get_timing_cache().serialize())))


def rebuild_options(engine: str | Path) -> tuple[Path, BuildOptions]:
    """The ONNX file and build options recorded in ``engine``'s sidecar (for ``--rebuild``).

    Raises:
        BadInputError: no sidecar, or its ONNX file is gone.
    """
    from toolkit.model.sidecar import read_sidecar

    info = read_sidecar(engine)
    if info is None:
        raise BadInputError(
            f"{engine} has no sidecar ({sidecar_path(engine).name}): build it from its ONNX "
            "file instead (edgetk build model.onnx -o model.engine --force)"
        )
    src = (info.onnx or {}).get("path")
    if src and not Path(src).is_file():
        # Engine and ONNX copied together to another machine: look beside the engine.
        beside = Path(engine).with_name(Path(src).name)
        src = str(beside) if beside.is_file() else src
    if not src or not Path(src).is_file():
        raise BadInputError(
            f"the ONNX file {engine} was built from is not there ({src or 'not recorded'})"
        )
    want = (info.onnx or {}).get("sha256")
    if want and sha256_file(src) != want:
        log.warning(
            "%s changed since %s was built (sha256 differs); rebuilding from it", src, engine
        )
    b = info.build
    return Path(src), BuildOptions(
        min_batch=b.get("min_batch"),
        opt_batch=b.get("opt_batch"),
        max_batch=b.get("max_batch"),
        workspace=b.get("workspace"),
        timing_cache=b.get("timing_cache"),
        opt_level=int(b.get("opt_level", 3)),
        dla_core=b.get("dla_core"),
    )
