"""What machine a benchmark ran on: CPU, cores, memory, GPU and library versions.

Everything here is best effort and never raises: a missing ``nvidia-smi``, an unreadable
``/proc`` or a library that is not installed gives ``None``, not a crash.
"""

from __future__ import annotations

import importlib
import os
import platform
from pathlib import Path
from typing import Any

from toolkit._version import __version__
from toolkit.platform.cpu import logical_cores, physical_cores
from toolkit.platform.gpu import jetson_model, nvidia_smi_query

# module name -> how to read its version (the module attribute).
_VERSIONED = {
    "torch": "torch",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "opencv": "cv2",
    "numpy": "numpy",
}


def cpu_name() -> str:
    """The CPU model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            # "model name" on x86, "Model"/"Hardware" on some ARM boards (Jetson, Raspberry Pi).
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def memory_gb() -> float | None:
    """Total RAM in GiB (``/proc/meminfo``)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def nvidia_gpus(timeout: float = 5.0) -> list[dict[str, Any]] | None:
    """GPUs from ``nvidia-smi`` (name, driver, memory_mb), or None without it or a GPU."""
    rows = nvidia_smi_query("name,driver_version,memory.total", units=False, timeout=timeout)
    if rows is None:
        return None
    gpus = []
    for parts in rows:
        if len(parts) != 3:
            continue
        mem = int(parts[2]) if parts[2].isdigit() else None
        gpus.append({"name": parts[0], "driver": parts[1], "memory_mb": mem})
    return gpus or None


def gpu_name() -> str | None:
    """The first GPU's name (nvidia-smi, else the Jetson board), or None."""
    gpus = nvidia_gpus()
    if gpus:
        return str(gpus[0]["name"])
    return jetson_model()


def module_version(module: str) -> str | None:
    """``module.__version__`` if it imports, else None (it is not installed or broken)."""
    try:
        mod = importlib.import_module(module)
    except (ImportError, OSError, RuntimeError):  # missing, or its native libraries are
        return None
    version = getattr(mod, "__version__", None)
    return str(version) if version is not None else None


def library_versions() -> dict[str, str | None]:
    """Versions of Python, edgetk and the libraries a benchmark number depends on."""
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "edgetk": __version__,
    }
    for key, module in _VERSIONED.items():
        versions[key] = module_version(module)
    return versions


def machine_info() -> dict[str, Any]:
    """The benchmark report's ``machine`` object (SPEC "Benchmark report").

    ``cores`` is physical cores (what the CPU backends use by default), ``logical_cores``
    counts hyperthreads; both honour this process's CPU affinity.
    """
    return {
        "cpu": cpu_name(),
        "cores": physical_cores(),
        "logical_cores": logical_cores(),
        "memory_gb": memory_gb(),
        "gpu": gpu_name(),
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "versions": library_versions(),
    }


def cache_home() -> Path:
    """``$XDG_CACHE_HOME/edgetk`` (``~/.cache/edgetk`` when it is unset or empty): where
    edgetk keeps what it can make again (exports, the GEMM floor, compiled OpenVINO models)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgetk"
