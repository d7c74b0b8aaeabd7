"""Lazy access to TensorRT and the CUDA runtime (cuda-python), and who this GPU is.

Nothing here imports tensorrt or cuda-python at module import time: ``edgetk --help`` and
every CPU command must work without them. A missing one is a one-line
:class:`~toolkit.errors.MissingDependencyError` naming the ``tensorrt`` extra.

cuda-python: ``from cuda.bindings import runtime`` (12.x and 13.x); the old ``cuda.cudart``
path was removed in 13 and is only a fallback for old 12.x installs. Every call returns
``(err, *results)``; :func:`cuda_call` turns an error into a :class:`ToolkitError`.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import MissingDependencyError, ToolkitError

log = logging.getLogger(__name__)

EXTRA = "tensorrt"
_IMPORT_ERRORS = (ImportError, OSError)  # OSError: bindings present, libnvinfer/libcudart missing


def import_tensorrt(purpose: str = "TensorRT engines") -> Any:
    """``import tensorrt``, or a MissingDependencyError naming the ``tensorrt`` extra."""
    try:
        import tensorrt
    except _IMPORT_ERRORS as e:
        raise MissingDependencyError("tensorrt", EXTRA, purpose) from e
    return tensorrt


def import_cudart(purpose: str = "TensorRT engines") -> Any:
    """The CUDA runtime bindings of cuda-python (``cuda.bindings.runtime``)."""
    try:
        from cuda.bindings import runtime
    except _IMPORT_ERRORS:
        try:  # cuda-python < 12.6 only; removed in 13
            from cuda import cudart as runtime  # type: ignore[no-redef]
        except _IMPORT_ERRORS as e:
            raise MissingDependencyError("cuda-python", EXTRA, purpose) from e
    return runtime


def cuda_call(cudart: Any, result: Any) -> Any:
    """Unpack a cuda-python ``(err, *values)`` result; raise ToolkitError on a CUDA error.

    Returns None, the single value, or a tuple of values.
    """
    if isinstance(result, tuple):
        err, values = result[0], result[1:]
    else:
        err, values = result, ()
    if err != cudart.cudaError_t.cudaSuccess:
        name = getattr(err, "name", str(err))
        detail = ""
        try:
            got = cudart.cudaGetErrorString(err)
            detail = got[1].decode() if isinstance(got, tuple) else str(got)
        except (AttributeError, TypeError, UnicodeDecodeError):
            pass
        raise ToolkitError(f"CUDA error {name}{': ' + detail if detail else ''}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class GpuIdentity:
    """What an engine is tied to: the GPU model and its compute capability."""

    name: str | None
    compute_capability: str | None  # "8.7"


def _decode(name: Any) -> str:
    if isinstance(name, bytes):
        return name.split(b"\0", 1)[0].decode(errors="replace").strip()
    return str(name).strip()


def nvidia_smi_query(
    fields: str, *, device_id: int | None = None, units: bool = True, timeout: float = 5.0
) -> list[list[str]] | None:
    """Rows of ``nvidia-smi --query-gpu=FIELDS`` (one per GPU, stripped comma-separated parts).

    ``device_id`` limits the query to one GPU, ``units=False`` drops units (``nounits``).
    None when nvidia-smi is missing, fails or times out; never raises.
    """
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    fmt = "--format=csv,noheader" if units else "--format=csv,noheader,nounits"
    cmd = [exe] + ([f"--id={device_id}"] if device_id is not None else [])
    try:
        out = subprocess.run(
            [*cmd, f"--query-gpu={fields}", fmt],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return [[p.strip() for p in line.split(",")] for line in out.stdout.strip().splitlines()]


def jetson_model() -> str | None:
    """The board name on a Jetson (L4T has no nvidia-smi), else None."""
    if not Path("/etc/nv_tegra_release").exists():
        return None
    try:
        return Path("/proc/device-tree/model").read_text(errors="replace").strip("\x00 \n")
    except OSError:
        return "NVIDIA Jetson"


def gpu_identity(device_id: int = 0) -> GpuIdentity:
    """Name and compute capability of CUDA device ``device_id``.

    Uses cuda-python when installed (the TensorRT extra), else ``nvidia-smi`` (desktop drivers
    report ``compute_cap``), else the Jetson board name; unknown parts are None.
    """
    try:
        cudart = import_cudart()
        props = cuda_call(cudart, cudart.cudaGetDeviceProperties(device_id))
        return GpuIdentity(_decode(props.name), f"{props.major}.{props.minor}")
    except (MissingDependencyError, ToolkitError) as e:
        log.debug("cuda-python device query failed: %s", e)
    rows = nvidia_smi_query("name,compute_cap", device_id=device_id)
    if rows is not None and len(rows) == 1 and len(rows[0]) == 2:
        return GpuIdentity(rows[0][0], rows[0][1])
    return GpuIdentity(jetson_model(), None)


def cuda_device_count() -> int:
    """CUDA devices cuda-python can see (0 without cuda-python, a driver or a GPU)."""
    try:
        cudart = import_cudart()
        return int(cuda_call(cudart, cudart.cudaGetDeviceCount()))
    except (MissingDependencyError, ToolkitError):
        return 0


def trt_logger(trt: Any) -> Any:
    """A TensorRT logger that forwards to logging and remembers the errors for the message."""

    class _Log(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            sev = trt.ILogger.Severity
            # Errors reach the user inside our one-line message; the rest shows with --verbose.
            if severity in (sev.INTERNAL_ERROR, sev.ERROR):
                self.errors.append(msg)
                log.info("tensorrt error: %s", msg)
            elif severity == sev.WARNING:
                log.info("tensorrt warning: %s", msg)
            else:
                log.debug("tensorrt: %s", msg)

    return _Log()


def no_gpu_message(trt: Any, logger: Any, error: BaseException) -> str:
    """Why TensorRT could not start (no GPU, driver too old, CUDA libraries missing)."""
    why = logger.errors[-1] if getattr(logger, "errors", None) else str(error)
    return f"TensorRT {trt.__version__} could not start: no usable CUDA GPU or driver ({why})"
