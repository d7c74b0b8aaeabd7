"""The TensorRT side of a build: the network parsed from the ONNX file, the builder's config.

- strongly typed network (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``): the precision is
  the ONNX file's, never a builder flag; 11.x removed those flags and ``EXPLICIT_BATCH``;
- parser errors listed with the node name and operator;
- workspace limit, ``builder_optimization_level``, the profile, a timing cache, DLA;
- progress through ``trt.IProgressMonitor`` when the version has it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolkit.build.planning import BuildOptions, BuildPlan
from toolkit.errors import BackendUnavailableError, BadInputError, ToolkitError
from toolkit.platform.gpu import no_gpu_message

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def parse_network(
    trt: Any, plan: BuildPlan, options: BuildOptions, logger: Any, say: Progress
) -> tuple[Any, Any]:
    """``(builder, network)``: the plan's ONNX file parsed into a strongly typed network.

    Raises:
        BackendUnavailableError: TensorRT cannot start (no usable GPU or driver).
        BadInputError: the parser's errors, with the node name and operator.
    """
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
    return builder, network


def progress_monitor(trt: Any, progress: Progress) -> Any | None:
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


def read_timing_cache(path: Path | None) -> bytes:
    """The timing cache file's bytes (empty when there is none yet)."""
    if path is None or not path.is_file():
        return b""
    try:
        return path.read_bytes()
    except OSError as e:
        raise BadInputError(f"cannot read the timing cache {path}: {e}") from e


def configure(trt: Any, builder: Any, plan: BuildPlan, options: BuildOptions, cache_bytes: bytes,
              progress: Progress | None) -> Any:  # fmt: skip
    """The builder config: workspace, optimization level, the plan's profile, the timing cache
    (a fresh one when ``cache_bytes`` is another GPU's or TensorRT's), DLA, and a progress
    monitor reporting to ``progress`` when given (and the version has one)."""
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
    monitor = progress_monitor(trt, progress) if progress is not None else None
    if monitor is not None:
        config.progress_monitor = monitor
    return config


def serialize_network(
    builder: Any, network: Any, config: Any, logger: Any, plan: BuildPlan, say: Progress
) -> bytes:
    """The engine (plan) TensorRT builds; a failed build is a ToolkitError with its errors."""
    say("building (TensorRT times kernels: seconds to minutes)")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        detail = "; ".join(logger.errors[-3:]) or "no error message (run with --verbose)"
        raise ToolkitError(f"TensorRT could not build {plan.onnx.name}: {detail}")
    return bytes(memoryview(serialized))


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
