"""Peak memory of a benchmark row: the process's resident set, and PyTorch's GPU memory.

On Linux the kernel keeps the process's peak resident set (``VmHWM`` in
``/proc/self/status``) and resets it to the current resident set when ``5`` is written to
``/proc/self/clear_refs``. :func:`reset_peak_rss` does that before a row, and
:func:`peak_rss_mb` reads the peak after it. Where the kernel refuses the reset (an old kernel,
a locked-down container), the peak since the reset is not known, and :func:`peak_rss_mb`
says None rather than the process's lifetime peak under another name. The peak is not
sampled by a thread instead: a sampler would miss short peaks and would run beside the timed
calls. Other systems have no ``/proc``: None.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_MB = 1024**2


# None: never reset (VmHWM is the peak since the process started); False: the last reset was
# refused (no peak since then is known); True: VmHWM counts from the last reset.
_reset_ok: bool | None = None


def _status_kb(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmHWM``, ``VmRSS``), None without it."""
    try:
        with _STATUS.open(encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key == field:
                    return int(value.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak_rss() -> None:
    """Start a new peak: the process's peak resident set becomes its current one (Linux)."""
    global _reset_ok
    try:
        with _CLEAR_REFS.open("w", encoding="ascii") as f:
            f.write("5")
    except OSError as e:
        if _status_kb("VmHWM") is not None:  # a Linux kernel that refuses, not another OS
            log.debug("cannot reset the peak resident set (%s): peak RSS not reported", e)
        _reset_ok = False
        return
    _reset_ok = True


def peak_rss_mb() -> float | None:
    """The process's peak resident set in MiB since :func:`reset_peak_rss` (since the start
    of the process before any reset); None where the kernel refused the reset or the system
    does not report it."""
    if _reset_ok is False:
        return None
    kb = _status_kb("VmHWM")
    return None if kb is None else round(kb / 1024, 1)


def _torch_cuda() -> Any:
    """``torch.cuda`` when torch is already imported and has used a CUDA GPU, else None."""
    cuda = getattr(sys.modules.get("torch"), "cuda", None)
    try:
        if cuda is not None and cuda.is_available() and cuda.is_initialized():
            return cuda
    except (RuntimeError, AttributeError) as e:  # a broken CUDA install
        log.debug("no PyTorch GPU memory: %s", e)
    return None


def gpu_memory_mb() -> float | None:
    """PyTorch's peak GPU memory in MiB (``torch.cuda.max_memory_allocated``) since
    :func:`reset_gpu_peak`; None when torch is not imported, has no CUDA, or has not used the
    GPU in this process.

    Only the memory PyTorch allocates is counted (ONNX Runtime and TensorRT allocate their
    own). torch is never imported here: a process that has not imported it has no PyTorch GPU
    memory, and importing it would cost seconds and memory of its own.
    """
    cuda = _torch_cuda()
    return None if cuda is None else round(cuda.max_memory_allocated() / _MB, 1)


def reset_gpu_peak() -> None:
    """Start a new PyTorch GPU peak (``torch.cuda.reset_peak_memory_stats``), where one is kept."""
    cuda = _torch_cuda()
    if cuda is not None:
        cuda.reset_peak_memory_stats()
