"""The CPU's int8 instruction set: what decides 7-bit vs 8-bit weights for the cpu target."""

from __future__ import annotations

import pytest

from toolkit.platform.cpu import cpu_flags, int8_features, needs_reduce_range

ZEN3 = "processor : 0\nflags : fpu sse2 avx avx2 fma bmi2\n"
ICELAKE = "processor : 0\nflags : avx2 avx512f avx512_vnni\n"
ALDERLAKE = "processor : 0\nflags : avx2 avx_vnni\n"
GRAVITON2 = "processor : 0\nFeatures : fp asimd evtstrm aes asimddp\n"


@pytest.mark.parametrize(
    ("cpuinfo", "machine", "isa", "dot", "reduce"),
    [
        (ZEN3, "x86_64", "avx2", [], True),
        (ICELAKE, "x86_64", "vnni", ["avx512_vnni"], False),
        (ALDERLAKE, "x86_64", "vnni", ["avx_vnni"], False),
        (GRAVITON2, "aarch64", "arm", ["asimddp"], False),
        ("Features : fp asimd\n", "aarch64", "arm", [], False),
    ],
    ids=["zen3-avx2", "icelake-avx512vnni", "alderlake-avxvnni", "arm-dotprod", "arm-plain"],
)
def test_int8_isa_from_cpuinfo(cpuinfo: str, machine: str, isa: str, dot: list, reduce: bool) -> None:
    feats = int8_features(cpu_flags(cpuinfo), machine)
    assert feats["isa"] == isa and feats["dot_product"] == dot
    assert needs_reduce_range(feats["isa"]) is reduce


def test_this_machine_is_classified() -> None:
    feats = int8_features()
    assert feats["isa"] in ("avx2", "vnni", "arm")


def test_unknown_isa_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown int8 instruction set"):
        needs_reduce_range("sse2")
