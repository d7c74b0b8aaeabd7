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
first, so that those errors are the same on every machine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from toolkit.build.planning import BuildProfile, plan_profile
from toolkit.build.precision import PrecisionReport, detect_precision, require_buildable
from toolkit.errors import BackendUnavailableError, BadInputError, ToolkitError
from toolkit.model.sidecar import EngineInfo, sha256_file, sidecar_path
from toolkit.model.spec import ModelSpec, SpecOverrides, portable_spec
from toolkit.platform.gpu import no_gpu_message, trt_logger

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildOptions:
    """What ``edgetk build`` was asked for (recorded in the sidecar).

    Attributes:
        min_batch, opt_batch, max_batch: the dynamic-batch profile (None: defaults).
        workspace: the workspace memory pool limit in bytes (None: TensorRT's default).
        timing_cache: a timing cache file, read if present and updated after the build.
        opt_level: ``builder_optimization_level`` 0..5 (3 is TensorRT's default).
        dla_core: build for this DLA core with GPU fallback (Jetson, TensorRT 10.x).
    """

    min_batch: int | None = None
    opt_batch: int | None = None
    max_batch: int | None = None
    workspace: int | None = None
    timing_cache: str | None = None
    opt_level: int = 3
    dla_core: int | None = None

    def validate(self) -> None:
        if not 0 <= self.opt_level <= 5:
            raise BadInputError(f"--opt-level must be 0..5, got {self.opt_level}")
        if self.workspace is not None and self.workspace <= 0:
            raise BadInputError(f"--workspace must be > 0, got {self.workspace} bytes")
        if self.dla_core is not None and self.dla_core < 0:
            raise BadInputError(f"--dla must be a DLA core number >= 0, got {self.dla_core}")


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


@dataclass(frozen=True)
class BuildPlan:
    """Everything decided before TensorRT is touched (testable without it)."""

    onnx: Path
    spec: ModelSpec
    precision: PrecisionReport
    profile: BuildProfile


def plan_build(
    onnx_path: str | Path,
    options: BuildOptions,
    overrides: SpecOverrides | None = None,
) -> BuildPlan:
    """Read the ONNX file, its spec and precision, refuse what TensorRT cannot build, plan the
    profile. No TensorRT needed.

    Raises:
        BadInputError: missing/corrupt file, a cpu-target QDQ model, bad batch flags.
    """
    from toolkit.model.modelfile import graph_io, load_onnx, spec_from_onnx

    options.validate()
    path = Path(onnx_path)
    if path.suffix.lower() != ".onnx":
        raise BadInputError(f"edgetk build takes an .onnx file, got {path}")
    proto = load_onnx(path, load_weights=False)
    spec = spec_from_onnx(proto)
    if overrides is not None:
        spec = overrides.apply(spec)
    report = detect_precision(path, spec)
    require_buildable(report, path, spec)
    ins, _ = graph_io(proto)
    profile = plan_profile(
        ins,
        spec,
        min_batch=options.min_batch,
        opt_batch=options.opt_batch,
        max_batch=options.max_batch,
    )
    if options.dla_core is not None and report.precision not in ("fp16", "int8"):
        raise BadInputError(
            f"DLA runs fp16 or int8 only and {path.name} is {report.precision}: "
            "quantize it first (edgetk quantize --precision fp16|int8)"
        )
    return BuildPlan(onnx=path, spec=spec.with_changes(precision=report.precision),
                     precision=report, profile=profile)  # fmt: skip


def _progress_monitor(trt: Any, progress: Progress) -> Any | None:
    """A ``trt.IProgressMonitor`` reporting "phase step/total" lines (None if unsupported)."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class _Monitor(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.steps: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.steps[phase_name] = num_steps
            progress(f"{phase_name} (0/{num_steps})")

        def step_complete(self, phase_name: str, step: int) -> bool:
            progress(f"{phase_name} ({step + 1}/{self.steps.get(phase_name, '?')})")
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            self.steps.pop(phase_name, None)

    return _Monitor()


def format_parser_errors(errors: list[Any], limit: int = 3) -> str:
    """``node 'conv1' (Conv): <desc>; ...`` from ``OnnxParser.get_error`` objects.

    ``node_name``/``node_operator`` exist since TensorRT 8.6; older objects give ``node``.
    """
    parts = []
    for err in errors[:limit]:
        desc = " ".join(str(_call(err, "desc") or err).split())
        node = _call(err, "node_name") or ""
        op = _call(err, "node_operator") or ""
        index = _call(err, "node")
        if node or op:
            where = f"node '{node}'" if node else f"node #{index}"
            parts.append(f"{where}{f' ({op})' if op else ''}: {desc}")
        elif isinstance(index, int) and index >= 0:
            parts.append(f"node #{index}: {desc}")
        else:
            parts.append(desc)
    more = len(errors) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _call(obj: Any, name: str) -> Any:
    fn = getattr(obj, name, None)
    return fn() if callable(fn) else None


def _read_cache(path: Path | None) -> bytes:
    if path is None or not path.is_file():
        return b""
    try:
        return path.read_bytes()
    except OSError as e:
        raise BadInputError(f"cannot read the timing cache {path}: {e}") from e


def _configure(trt: Any, builder: Any, network: Any, plan: BuildPlan, options: BuildOptions,
               cache_bytes: bytes) -> Any:  # fmt: skip
    config = builder.create_builder_config()
    if options.workspace is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace))
    config.builder_optimization_level = int(options.opt_level)
    profile = builder.create_optimization_profile()
    for p in plan.profile.inputs:
        profile.set_shape(p.name, p.min, p.opt, p.max)
    config.add_optimization_profile(profile)
    cache = config.create_timing_cache(cache_bytes)
    if not config.set_timing_cache(cache, False):
        # Another GPU or TensorRT wrote it: start a fresh one rather than fail the build.
        log.warning("the timing cache does not match this GPU/TensorRT; starting a new one")
        config.set_timing_cache(config.create_timing_cache(b""), False)
    if options.dla_core is not None:
        _use_dla(trt, builder, config, options.dla_core)
    return config


def _use_dla(trt: Any, builder: Any, config: Any, core: int) -> None:
    # DLA exists on Jetson Orin only: TensorRT 10.x on JetPack 6, and again 11.4.1+ on JetPack
    # 7.2.2+ (11.0-11.3 dropped it). num_DLA_cores says whether this build and device have it.
    cores = int(getattr(builder, "num_DLA_cores", 0))
    if cores == 0:
        raise BadInputError(
            f"--dla: no DLA cores with TensorRT {trt.__version__} on this device (DLA needs a "
            "Jetson AGX/NX Orin with TensorRT 10.x on JetPack 6, or 11.4.1+ on JetPack 7.2.2+)"
        )
    if core >= cores:
        raise BadInputError(f"--dla {core}: this device has DLA cores 0..{cores - 1}")
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = core
    # Layers the DLA cannot run go to the GPU. Precision stays the network's (strongly
    # typed): the FP16/INT8 builder flags are invalid for DLA builds.
    config.set_flag(trt.BuilderFlag.GPU_FALLBACK)


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
    from toolkit.fileio import atomic_path, check_output
    from toolkit.platform.gpu import gpu_identity, import_tensorrt

    options = options or BuildOptions()
    out = check_output(output, force)
    plan = plan_build(onnx_path, options, overrides)
    trt = import_tensorrt("edgetk build")
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()

    logger = trt_logger(trt)
    try:
        builder = trt.Builder(logger)
    except (RuntimeError, TypeError) as e:  # pybind: "factory function returned nullptr"
        raise BackendUnavailableError(no_gpu_message(trt, logger, e)) from e
    # One code path for 10.x and 11.x: EXPLICIT_BATCH is gone in 11 (and implied in 10);
    # STRONGLY_TYPED is what 10.x needs, and is the (deprecated, ignored) default in 11.x.
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    network = builder.create_network(0 if strongly_typed is None else 1 << int(strongly_typed))
    parser = trt.OnnxParser(network, logger)
    dla_flag = getattr(getattr(trt, "OnnxParserFlag", None), "ADJUST_FOR_DLA", None)
    if options.dla_core is not None and dla_flag is not None:
        parser.set_flag(dla_flag)  # reshapes some layers so that more of them run on the DLA
    say(f"parsing {plan.onnx.name}")
    if not parser.parse_from_file(str(plan.onnx)):  # finds external data beside the file
        errors = [parser.get_error(i) for i in range(parser.num_errors)]
        detail = format_parser_errors(errors) if errors else "; ".join(logger.errors[-3:])
        raise BadInputError(f"TensorRT {trt.__version__} cannot parse {plan.onnx.name}: {detail}")

    cache_path = Path(options.timing_cache) if options.timing_cache else None
    config = _configure(trt, builder, network, plan, options, _read_cache(cache_path))
    monitor = _progress_monitor(trt, say) if progress is not None else None
    if monitor is not None:
        config.progress_monitor = monitor
    say("building (TensorRT times kernels: seconds to minutes)")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        detail = "; ".join(logger.errors[-3:]) or "no error message (run with --verbose)"
        raise ToolkitError(f"TensorRT could not build {plan.onnx.name}: {detail}")
    data = bytes(memoryview(serialized))

    gpu = gpu_identity(0)
    onnx_abs = plan.onnx.resolve()
    info = EngineInfo(
        # Its recorded files stay relative to the file that carries it (the engine may be
        # built into another folder than the ONNX file's).
        spec=portable_spec(plan.spec, out.parent, read_from=plan.onnx.parent),
        tensorrt=str(trt.__version__),
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
    import json

    with atomic_path(out) as tmp_engine, atomic_path(sidecar_path(out)) as tmp_json:
        tmp_engine.write_bytes(data)
        tmp_json.write_text(json.dumps(info.to_dict(), indent=2) + "\n", encoding="utf-8")
    if cache_path is not None:
        from toolkit.fileio import atomic_write_bytes

        atomic_write_bytes(cache_path, bytes(memoryview(config.get_timing_cache().serialize())))
    return BuildReport(
        engine=str(out),
        sidecar=str(sidecar_path(out)),
        onnx=str(plan.onnx),
        precision=plan.precision.precision,
        target=plan.precision.target,
        profile=plan.profile.to_dict(),
        tensorrt=str(trt.__version__),
        gpu=gpu.name,
        compute_capability=gpu.compute_capability,
        seconds=round(time.perf_counter() - t0, 2),
        size_bytes=len(data),
        timing_cache=str(cache_path) if cache_path else None,
    )


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
