"""How many CPU cores this process may use, physical and logical.

ONNX Runtime and PyTorch both run fastest with one intra-op thread per *physical* core:
hyperthreads share a core's vector units, so a second thread on the same core adds contention,
not throughput (notes/ONNX_CPU.md). The count honours the process's CPU affinity (taskset,
containers with cpusets), which ``os.cpu_count()`` ignores.
"""

from __future__ import annotations

import os
from pathlib import Path

_SYS_CPU = Path("/sys/devices/system/cpu")


def _allowed_cpus() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def logical_cores() -> int:
    """The logical CPUs (hardware threads) this process may run on."""
    return max(1, len(_allowed_cpus()))


def physical_cores() -> int:
    """The physical cores under this process's affinity mask (hyperthread siblings count once).

    Reads the Linux topology in sysfs; elsewhere (or when sysfs is hidden) it falls back to
    the logical count, which is right on machines without SMT.
    """
    cores: set[tuple[str, str]] = set()
    for cpu in _allowed_cpus():
        topo = _SYS_CPU / f"cpu{cpu}" / "topology"
        try:
            package = (topo / "physical_package_id").read_text().strip()
            core = (topo / "core_id").read_text().strip()
        except OSError:
            return logical_cores()
        cores.add((package, core))
    return max(1, len(cores))


def default_threads() -> int:
    """The intra-op thread count every CPU backend uses unless told otherwise."""
    return physical_cores()
