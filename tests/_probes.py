"""Capability probes shared by the tests: what this machine can run, decided once."""

from __future__ import annotations

import importlib.util

import pytest

TENSORRT_INSTALLED = importlib.util.find_spec("tensorrt") is not None


def _tensorrt_ready() -> bool:
    """TensorRT imports and cuda-python sees a CUDA device."""
    try:
        import tensorrt  # noqa: F401
    except (ImportError, OSError):
        return False
    from toolkit.platform.gpu import cuda_device_count

    return cuda_device_count() > 0


TENSORRT_READY = _tensorrt_ready()
# The capability probes of every test that depends on TensorRT's presence: one needs the tensorrt backend to run, the other tests what a
# machine where it cannot run reports, or what it says is missing to install.
needs_tensorrt = pytest.mark.skipif(
    not TENSORRT_READY, reason="needs TensorRT, cuda-python and a CUDA device"
)
without_tensorrt = pytest.mark.skipif(
    TENSORRT_READY, reason="TensorRT and a CUDA device are usable here"
)
without_tensorrt_installed = pytest.mark.skipif(
    TENSORRT_INSTALLED, reason="tensorrt is installed here"
)
