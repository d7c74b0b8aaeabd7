"""What this machine can run: versions, backends, GPUs, CUDA, TensorRT, camera support.

:func:`collect_info` never raises: every missing or broken piece becomes ``None`` (or a reason
string), because ``edgetk info`` is what a user runs when something is missing.
"""

from __future__ import annotations

import importlib
import platform
import re
from pathlib import Path
from typing import Any

from toolkit._version import __version__
from toolkit.platform.cpu import int8_features, logical_cores, physical_cores
from toolkit.platform.gpu import jetson_model
from toolkit.platform.machine import cpu_name, memory_gb, module_version, nvidia_gpus

# cv2.getBuildInformation() "Video I/O" entries -> our keys.
_OPENCV_IO = {"gstreamer": "GStreamer", "v4l2": "v4l/v4l2", "ffmpeg": "FFMPEG"}
_IMPORT_ERRORS = (ImportError, OSError, RuntimeError)


def _import(module: str) -> Any | None:
    try:
        return importlib.import_module(module)
    except _IMPORT_ERRORS:  # not installed, or its native libraries are missing
        return None


def opencv_build_flags(build_info: str) -> dict[str, bool]:
    """``{"gstreamer", "v4l2", "ffmpeg"}`` -> whether OpenCV was built with them."""
    flags = {}
    for key, label in _OPENCV_IO.items():
        m = re.search(rf"^\s*{re.escape(label)}:\s*(\S+)", build_info, re.IGNORECASE | re.MULTILINE)
        flags[key] = bool(m and m.group(1).upper().startswith("YES"))
    return flags


def _opencv() -> dict[str, Any] | None:
    cv2 = _import("cv2")
    if cv2 is None:
        return None
    return {"version": cv2.__version__, **opencv_build_flags(cv2.getBuildInformation())}


def _onnxruntime() -> dict[str, Any] | None:
    ort = _import("onnxruntime")
    if ort is None:
        return None
    return {
        "version": ort.__version__,
        "providers": list(ort.get_available_providers()),
        "device": ort.get_device(),
    }


def _openvino() -> dict[str, Any] | None:
    """OpenVINO's version and devices (``{"CPU": "Intel(R) Core(TM) ..."}``), None if absent."""
    from toolkit.backends.openvino import openvino_devices

    devices = openvino_devices()
    if devices is None:
        return None
    return {"version": module_version("openvino"), "devices": devices}


def _torch() -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(torch info, CUDA info as PyTorch sees it)."""
    torch = _import("torch")
    if torch is None:
        return None, {"version": None, "available": False, "devices": []}
    available = bool(torch.cuda.is_available())
    devices = []
    if available:
        for i in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(i)
            devices.append(
                {"name": torch.cuda.get_device_name(i), "capability": f"{major}.{minor}"}
            )
    info = {"version": torch.__version__, "threads": torch.get_num_threads()}
    return info, {"version": torch.version.cuda, "available": available, "devices": devices}


def _cuda_python() -> str | None:
    # cuda-python 12.x/13.x: the package is cuda.bindings; older ones exposed cuda.__version__.
    return module_version("cuda.bindings") or module_version("cuda")


# L4T release -> JetPack release (NVIDIA's JetPack archive). JetPack 6.1/6.2 is the target:
# TensorRT 10.3, CUDA 12.6.
_JETPACK = {
    "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2",
    "35.5.0": "5.1.3", "35.6.0": "5.1.4", "35.6.1": "5.1.5", "36.2.0": "6.0 DP",
    "36.3.0": "6.0", "36.4.0": "6.1", "36.4.3": "6.2", "36.4.4": "6.2.1",
    "38.2.0": "7.0",
}  # fmt: skip
_JETPACK_MAJOR = {"35": "5.x", "36": "6.x", "38": "7.x"}


def jetpack_release(l4t: str | None) -> str | None:
    """The JetPack release of an L4T version (``36.4.3`` -> ``6.2``); ``6.x`` when unlisted."""
    if not l4t:
        return None
    return _JETPACK.get(l4t) or _JETPACK_MAJOR.get(l4t.split(".")[0])


def jetson_info(path: str | Path = "/etc/nv_tegra_release") -> dict[str, Any] | None:
    """L4T release from ``/etc/nv_tegra_release`` (``# R36 (release), REVISION: 4.3, ...``)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return None
    first = text.strip().splitlines()[0] if text.strip() else ""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", first)
    l4t = f"{m.group(1)}.{m.group(2)}" if m else None
    return {
        "l4t": l4t,
        "jetpack": jetpack_release(l4t),
        "release": first.lstrip("# ").strip(),
        "model": jetson_model(),
    }


def _backends() -> dict[str, dict[str, Any]]:
    from toolkit.backends import backend_status

    return {
        name: {"available": reason is None, "reason": reason}
        for name, reason in backend_status().items()
    }


def collect_info() -> dict[str, Any]:
    """Everything ``edgetk info`` shows, as JSON-ready data (None for what is missing)."""
    torch_info, cuda_info = _torch()
    return {
        "edgetk": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": {
            "name": cpu_name(),
            "cores": physical_cores(),
            "logical_cores": logical_cores(),
            "int8": int8_features(),
        },
        "memory_gb": memory_gb(),
        "torch": torch_info,
        "onnx": module_version("onnx"),
        "onnxruntime": _onnxruntime(),
        "openvino": _openvino(),
        "opencv": _opencv(),
        "numpy": module_version("numpy"),
        "backends": _backends(),
        "gpu": nvidia_gpus(),
        "cuda": cuda_info,
        "tensorrt": module_version("tensorrt"),
        "cuda_python": _cuda_python(),
        "jetson": jetson_info(),
    }
