"""OpenVINO sessions: ``openvino`` (its AUTO device), ``openvino:CPU``, ``openvino:GPU``,
``openvino:NPU``.

OpenVINO reads the ONNX file itself, fp32, fp16 and int8 QDQ alike (a QDQ file of either
``--target`` runs on its int8 kernels). Compiled models are cached in
``$XDG_CACHE_HOME/edgetk/openvino`` (``CACHE_DIR``): compiling for an Intel iGPU takes minutes
without it. The performance hint is ``latency`` (the live loop: one request, all cores on
one frame) unless ``throughput`` is asked for (the benchmark: a batch is split across the
device's optimal number of infer requests, run at once). A device OpenVINO does not list is
an error naming what is missing; nothing falls back to another device.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from toolkit.backends.base import Session, TensorInfo, session_threads
from toolkit.backends.ort_options import first_line
from toolkit.errors import BackendUnavailableError, BadInputError, ToolkitError
from toolkit.model.spec import SpecOverrides

log = logging.getLogger(__name__)

HINT = 'pip install "edgetk[openvino]"'
DEVICES: tuple[str, ...] = ("CPU", "GPU", "NPU")
HINTS: tuple[str, ...] = ("latency", "throughput")
# What a missing device needs, for the error message.
_NEEDS = {
    "GPU": "an Intel GPU with its compute runtime (intel-opencl-icd / Level Zero)",
    "NPU": "an Intel NPU (Core Ultra) with its driver (intel-npu-driver)",
    "CPU": "an x86-64 or ARM64 CPU that OpenVINO supports",
}


def import_openvino() -> Any:
    """``import openvino``, or a BackendUnavailableError naming the extra."""
    try:
        import openvino
    except ImportError as e:
        raise BackendUnavailableError(f"openvino is not installed: {HINT}") from e
    return openvino


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/edgetk/openvino`` (``~/.cache/edgetk/openvino`` without it)."""
    from toolkit.platform.machine import cache_home

    return cache_home() / "openvino"


def parse_device(backend: str) -> str:
    """``openvino`` -> ``AUTO``; ``openvino:gpu`` -> ``GPU`` (``GPU.1`` keeps its index)."""
    _, _, dev = backend.partition(":")
    dev = dev.strip().upper() or "AUTO"
    if dev != "AUTO" and dev.split(".")[0] not in DEVICES:
        raise BadInputError(
            f"unknown OpenVINO device '{dev}' in '{backend}' (expected openvino, "
            f"{', '.join(f'openvino:{d}' for d in DEVICES)})"
        )
    return dev


def openvino_devices() -> dict[str, str] | None:
    """OpenVINO's devices here -> their full names; None when openvino is not installed."""
    try:
        ov = import_openvino()
        core = ov.Core()
        return {d: str(core.get_property(d, "FULL_DEVICE_NAME")) for d in core.available_devices}
    except BackendUnavailableError:
        return None
    except (RuntimeError, OSError) as e:  # a broken plugin: say so, do not crash `info`
        return {"error": first_line(e)}


def openvino_status(backend: str) -> str | None:
    """None when ``backend`` (``openvino[:DEVICE]``) can run here, else why not."""
    try:
        ov = import_openvino()
        available = list(ov.Core().available_devices)
    except BackendUnavailableError as e:
        return str(e)
    except (RuntimeError, OSError) as e:
        return f"OpenVINO cannot list its devices: {first_line(e)}"
    return _missing_device(backend, parse_device(backend), available)


def _missing_device(backend: str, device: str, available: list[str]) -> str | None:
    if not available:
        return f"{backend}: OpenVINO sees no device"
    if device == "AUTO" or device in available:
        return None
    if "." not in device and any(a.split(".")[0] == device for a in available):
        return None  # GPU when OpenVINO lists GPU.0 and GPU.1
    what = _NEEDS.get(device.split(".")[0], device)
    return f"{backend} needs {what} (OpenVINO sees: {', '.join(available)})"


class OpenVinoSession(Session):
    """An ONNX model compiled by OpenVINO for one device.

    Args:
        path: the ``.onnx`` file.
        backend: ``openvino`` (AUTO) or ``openvino:CPU|GPU|NPU``.
        overrides: command-line spec values (fill the gaps of a foreign model).
        threads: CPU inference threads (default: physical cores).
        hint: ``latency`` (default, the live loop) or ``throughput`` (the benchmark).
        cache: the compiled-model cache folder (default :func:`cache_dir`; False: none).
    """

    backend: ClassVar[str] = "openvino"

    def __init__(
        self,
        path: str | Path,
        backend: str = "openvino",
        *,
        overrides: SpecOverrides | None = None,
        threads: int | None = None,
        hint: str = "latency",
        cache: Path | bool = True,
    ) -> None:
        from toolkit.model.modelfile import read_spec

        if hint not in HINTS:
            raise BadInputError(f"OpenVINO hint must be one of {', '.join(HINTS)}, got {hint!r}")
        ov = import_openvino()
        self.path = Path(path)
        self.spec = read_spec(self.path, overrides)
        self.precision = self.spec.precision
        self.requested = parse_device(backend)
        name = "openvino" if self.requested == "AUTO" else f"openvino:{self.requested}"
        self.backend = name  # type: ignore[misc]
        self.hint = hint
        self.threads = session_threads(threads)
        core = ov.Core()
        reason = _missing_device(backend, self.requested, list(core.available_devices))
        if reason is not None:
            raise BackendUnavailableError(reason)
        self.cache = None if cache is False else Path(cache_dir() if cache is True else cache)
        self._compiled = self._compile(core)
        self.inputs = [self._info(p) for p in self._compiled.inputs]
        self.outputs = [self._info(p) for p in self._compiled.outputs]
        self.nireq = self._optimal_requests()
        self._requests = [self._compiled.create_infer_request() for _ in range(self.nireq)]

    def _compile(self, core: Any) -> Any:
        config: dict[str, Any] = {"PERFORMANCE_HINT": self.hint.upper()}
        if self.cache is not None:
            self.cache.mkdir(parents=True, exist_ok=True)
            config["CACHE_DIR"] = str(self.cache)
        try:
            model = core.read_model(str(self.path))
        except RuntimeError as e:
            raise BadInputError(f"OpenVINO cannot read {self.path}: {first_line(e)}") from e
        config.update(self._device_config(list(core.available_devices)))
        try:
            return core.compile_model(model, self.requested, config)
        except RuntimeError as e:
            raise BackendUnavailableError(
                f"openvino:{self.requested} could not compile {self.path.name}: {first_line(e)}"
            ) from e

    def _device_config(self, available: list[str]) -> dict[str, Any]:
        """Threads, and the file's precision: OpenVINO's CPU plugin would otherwise run an
        fp32 file in bf16 where the CPU has it (and the GPU plugin in f16), silently."""
        precision = "f16" if self.precision == "fp16" else "f32"
        per_device = {
            "CPU": {"INFERENCE_NUM_THREADS": self.threads, "INFERENCE_PRECISION_HINT": "f32"},
            "GPU": {"INFERENCE_PRECISION_HINT": precision},
        }
        if self.requested != "AUTO":
            return per_device.get(self.requested.split(".")[0], {})
        # AUTO passes device properties on by device name.
        props = {d: per_device[d] for d in per_device if d in {a.split(".")[0] for a in available}}
        return {"DEVICE_PROPERTIES": props} if props else {}

    def _optimal_requests(self) -> int:
        if self.hint == "latency":
            return 1
        try:
            return max(1, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        except RuntimeError:
            return 1

    @staticmethod
    def _info(port: Any) -> TensorInfo:
        shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
        try:
            dtype = np.dtype(port.get_element_type().to_dtype())
        except (RuntimeError, TypeError) as e:
            raise BadInputError(f"unsupported tensor type for '{port.any_name}': {e}") from e
        return TensorInfo(name=port.any_name, shape=shape, dtype=dtype)

    @property
    def device(self) -> str:  # type: ignore[override]
        return self.requested.lower() if self.requested != "AUTO" else "auto"

    def execution_devices(self) -> list[str]:
        """The devices AUTO (or the named device) really runs on."""
        try:
            return list(self._compiled.get_property("EXECUTION_DEVICES"))
        except RuntimeError:
            return [self.requested]

    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = next(iter(inputs.values())).shape[0] if inputs else 0
        try:
            if self.nireq > 1 and batch > 1 and self.static_batch is None:
                return self._infer_split(inputs, batch)
            return self._run(self._requests[0], inputs)
        except RuntimeError as e:
            raise ToolkitError(f"openvino inference failed: {first_line(e)}") from e

    def _run(self, request: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        request.infer(inputs)
        return {
            t.name: request.get_output_tensor(i).data.copy() for i, t in enumerate(self.outputs)
        }

    def _infer_split(self, inputs: dict[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
        """Throughput hint: the batch in up to ``nireq`` chunks, each on its own request."""
        bounds = np.linspace(0, batch, min(self.nireq, batch) + 1).astype(int)
        used = self._requests[: len(bounds) - 1]
        for req, lo, hi in zip(used, bounds[:-1], bounds[1:], strict=True):
            req.start_async({k: v[lo:hi] for k, v in inputs.items()})
        parts = []
        for req in used:
            req.wait()
            parts.append([req.get_output_tensor(i).data.copy() for i in range(len(self.outputs))])
        return {t.name: np.concatenate([p[i] for p in parts]) for i, t in enumerate(self.outputs)}

    def _close(self) -> None:
        del self._requests, self._compiled

    def describe(self) -> dict[str, object]:
        """Backend, the device asked for and the ones used, hint, infer requests, cache."""
        info = super().describe()
        info.update(
            execution_devices=self.execution_devices(),
            hint=self.hint,
            infer_requests=self.nireq,
            threads=self.threads,
            cache_dir=None if self.cache is None else str(self.cache),
            model=str(self.path),
        )
        return info
