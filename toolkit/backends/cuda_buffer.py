"""A CUDA device buffer and its pinned host twin (cuda-python), grown only when needed.

The tensorrt backend keeps one per engine input and output, reused across calls: a bigger
batch reallocates both, and says so, because the engine's tensor addresses must then be set
again.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from toolkit.platform.gpu import cuda_call


class HostDeviceBuffer:
    """A device buffer and its pinned host twin, grown on demand."""

    def __init__(self, cudart: Any, dtype: np.dtype) -> None:
        self.cudart = cudart
        self.dtype = dtype
        self.capacity = 0
        self.device = 0
        self.host = 0

    def ensure(self, nbytes: int) -> bool:
        """Make room for ``nbytes``; True when the buffers moved (addresses must be re-set)."""
        if nbytes <= self.capacity:
            return False
        self.free()
        size = max(nbytes, 1)
        self.device = int(cuda_call(self.cudart, self.cudart.cudaMalloc(size)))
        self.host = int(cuda_call(self.cudart, self.cudart.cudaMallocHost(size)))
        self.capacity = size
        return True

    def host_array(self, shape: tuple[int, ...]) -> np.ndarray:
        """A numpy view of the pinned host memory (no copy)."""
        count = int(np.prod(shape)) if shape else 1
        raw = (ctypes.c_byte * (count * self.dtype.itemsize)).from_address(self.host)
        return np.frombuffer(raw, dtype=self.dtype, count=count).reshape(shape)

    def free(self) -> None:
        if self.device:
            self.cudart.cudaFree(self.device)
        if self.host:
            self.cudart.cudaFreeHost(self.host)
        self.device = self.host = self.capacity = 0
