"""How many CPU cores this process may use, physical and logical.

ONNX Runtime and PyTorch both run fastest with one intra-op thread per *physical* core:
hyperthreads share a core's vector units, so a second thread on the same core adds contention,
not throughput (docs/onnx-runtime.md). The count honours the process's CPU affinity (taskset,
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


# -- int8 instruction sets ---------------------------------------------------------------------
# ONNX Runtime's x86 u8s8 kernels on a CPU without VNNI multiply-add pairs of u8 x s8 products
# into int16 (vpmaddubsw), which saturates with full-range 8-bit weights; VNNI (vpdpbusd)
# and AMX accumulate in int32. ONNX Runtime's quantization guide names the cure: 7-bit weights
# (reduce_range). ARM NEON kernels widen to 16 bits per product and accumulate pairwise into
# 32 bits (with or without the dotprod extension), so they need no reduced range.
INT8_ISAS = ("avx2", "vnni", "arm")
_X86_DOT = ("avx512_vnni", "avx_vnni", "amx_int8")
_ARM_DOT = ("asimddp",)


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags (``flags`` on x86, ``Features`` on ARM, from /proc/cpuinfo)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def int8_features(flags: frozenset[str] | None = None, machine: str | None = None) -> dict:
    """The int8 dot-product features of this CPU and the instruction set int8 models fit.

    ``isa`` is ``vnni`` (x86 with AVX512-VNNI, AVX-VNNI or AMX: int32 accumulation),
    ``avx2`` (x86 without them: int16 pair sums, needs 7-bit weights), or ``arm``.
    """
    import platform

    flags = cpu_flags() if flags is None else flags
    machine = (machine or platform.machine()).lower()
    if machine in ("aarch64", "arm64") or machine.startswith("arm"):
        return {"isa": "arm", "dot_product": [f for f in _ARM_DOT if f in flags]}
    dot = [f for f in _X86_DOT if f in flags]
    return {"isa": "vnni" if dot else "avx2", "dot_product": dot, "avx2": "avx2" in flags}


def needs_reduce_range(isa: str) -> bool:
    """Whether int8 weights must be 7-bit for ONNX Runtime to compute them exactly on ``isa``."""
    if isa not in INT8_ISAS:
        raise ValueError(f"unknown int8 instruction set '{isa}' (expected {', '.join(INT8_ISAS)})")
    return isa == "avx2"
