"""The cpu target fits the CPU it is for: 7-bit weights without int8 dot products (AVX2).

The model (``saturating_classifier``) is built so that full-range int8 weights overflow the
int16 pair sums of ONNX Runtime's AVX2 u8s8 kernels. Every check runs the real quantizer and
the real ONNX Runtime kernels of the machine running the test, so the tests hold on a VNNI
machine (int32 sums: no saturation) and on an AVX2-only one (where they show the cure works).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _cli import quantize_cli as cli
from _quantize_models import (
    color_classifier,
    color_tensors,
    saturating_classifier,
    saturating_inputs,
    saturating_tensors,
)

from toolkit.platform.cpu import int8_features

HOST_ISA = int8_features()["isa"]
AVX2_ONLY = pytest.mark.skipif(
    HOST_ISA != "avx2",
    reason="this CPU has VNNI: ONNX Runtime accumulates int8 in int32 here"
    if HOST_ISA == "vnni"
    else "this CPU is ARM: ONNX Runtime's NEON kernels accumulate int8 in int32",
)


@pytest.fixture(scope="module")
def sat(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sat")
    return {
        "model": saturating_classifier(root / "sat.onnx"),
        "npz": saturating_tensors(root / "calib.npz", n=100),
    }


def weight_range(model: Path) -> tuple[int, int]:
    """(min, max) over the model's int8 initializers (the weights; zero points are 0)."""
    import onnx
    from onnx import numpy_helper

    values = [numpy_helper.to_array(t) for t in onnx.load(str(model)).graph.initializer
              if t.data_type == onnx.TensorProto.INT8]  # fmt: skip
    assert values, "no int8 weights"
    return int(min(v.min() for v in values)), int(max(v.max() for v in values))


def runs_like_float(model: Path, float_model: Path) -> tuple[float, float]:
    """(top-1 agreement, max abs diff) of ``model`` vs float on fresh inputs, with this CPU's
    own int8 kernels (ONNX Runtime's default session: QDQ fused into int8 ops)."""
    from toolkit.evaluate.agreement import ort_outputs

    x = saturating_inputs(64, seed=7)
    ref = ort_outputs(float_model, x, "images")
    out = ort_outputs(model, x, "images")
    return float(np.mean(ref.argmax(1) == out.argmax(1))), float(np.abs(out - ref).max())


def test_cpu_target_fits_this_machine(sat: dict[str, Path], tmp_path: Path) -> None:
    from toolkit.model.modelfile import read_spec

    out = tmp_path / "m.onnx"
    code, stdout, stderr = cli(sat["model"], "-o", out, "--target", "cpu", "--calib",
                               sat["npz"], "--calib-size", 80, "--json")  # fmt: skip
    assert code == 0, stderr
    reduce = HOST_ISA == "avx2"
    q = read_spec(out).extra["quantization"]
    assert q["cpu_isa"] == HOST_ISA and q["reduce_range"] is reduce
    isa = json.loads(stdout)["isa"]
    assert isa == {"cpu_isa": HOST_ISA, "reduce_range": reduce, "host_isa": HOST_ISA,
                   "chosen_by": "this machine"}  # fmt: skip
    assert f"made for {HOST_ISA} CPUs (this machine)" in stderr
    lo, hi = weight_range(out)
    if reduce:
        assert lo >= -64 and hi <= 64
    else:
        assert hi == 127  # the largest weight of each output channel
    agree, diff = runs_like_float(out, sat["model"])
    assert agree == 1.0 and diff < 0.03  # the class margin is >= 0.067


def test_forced_avx2_gives_7bit_weights_that_match_float(
    sat: dict[str, Path], tmp_path: Path
) -> None:
    from toolkit.model.modelfile import read_spec

    out = tmp_path / "m.avx2.onnx"
    code, stdout, stderr = cli(sat["model"], "-o", out, "--target", "cpu", "--cpu", "avx2",
                               "--calib", sat["npz"], "--calib-size", 80, "--json")  # fmt: skip
    assert code == 0, stderr
    lo, hi = weight_range(out)
    # ORT's reduced int8 range is [-64, 64] (symmetric 7-bit): 2 * 255 * 64 < 32767.
    assert lo >= -64 and 60 <= hi <= 64
    q = read_spec(out).extra["quantization"]
    assert q["cpu_isa"] == "avx2" and q["reduce_range"] is True
    assert json.loads(stdout)["isa"]["chosen_by"] == "--cpu"
    assert "7-bit weights" in stderr
    assert not any("cannot run them exactly" in n for n in json.loads(stdout)["notes"])
    agree, diff = runs_like_float(out, sat["model"])
    assert agree == 1.0 and diff < 0.03


@AVX2_ONLY
def test_full_range_weights_saturate_on_avx2(sat: dict[str, Path]) -> None:
    """The failure the cpu target avoids: this CPU's kernels break 8-bit weights."""
    import onnx

    from toolkit.evaluate.agreement import ort_outputs
    from toolkit.quantize.int8 import Int8Quantizer

    calib = np.load(sat["npz"])["images"]
    proto = onnx.load(str(sat["model"]))
    with Int8Quantizer(proto, calib, "images", target="cpu", reduce_range=False) as q:
        full = q.quantize()
    x = saturating_inputs(64, seed=7)
    ref = ort_outputs(proto, x, "images").argmax(1)
    fused = ort_outputs(full, x, "images").argmax(1)
    emulated = ort_outputs(full, x, "images", emulate=True).argmax(1)
    assert np.mean(emulated == ref) == 1.0  # the int8 model itself is right...
    assert np.mean(fused == ref) < 0.7  # ...the int16 pair sums are not


@AVX2_ONLY
def test_vnni_weights_on_an_avx2_machine_carry_the_note(
    sat: dict[str, Path], tmp_path: Path
) -> None:
    from toolkit.model.modelfile import read_spec

    out = tmp_path / "m.vnni.onnx"
    code, stdout, stderr = cli(sat["model"], "-o", out, "--target", "cpu", "--cpu", "vnni",
                               "--calib", sat["npz"], "--calib-size", 80, "--json")  # fmt: skip
    assert code == 0, stderr  # gated with Q/DQ as float: the int32 sums a VNNI CPU computes
    report = json.loads(stdout)
    assert weight_range(out)[1] == 127
    assert read_spec(out).extra["quantization"]["cpu_isa"] == "vnni"
    assert report["agreement"]["emulated"] is True
    assert any("cannot run them exactly" in n and "--cpu avx2" in n for n in report["notes"])


@pytest.mark.parametrize(
    ("target", "cpu", "host", "isa", "reduce", "noted"),
    [
        ("cpu", None, "avx2", "avx2", True, False),
        ("cpu", None, "vnni", "vnni", False, False),
        ("cpu", "vnni", "avx2", "vnni", False, True),
        ("cpu", "arm", "avx2", "arm", False, True),
        ("cpu", "avx2", "vnni", "avx2", True, False),
        ("tensorrt", None, "avx2", None, False, False),
    ],
)  # fmt: skip
def test_isa_choice_for_any_host(
    target: str, cpu: str | None, host: str, isa: str | None, reduce: bool, noted: bool
) -> None:
    """The choice for a host other than this one (the host is an argument, not a mock)."""
    from toolkit.quantize.int8 import choose_isa

    choice = choose_isa(target, cpu, host_isa=host)
    assert (choice.cpu_isa, choice.reduce_range, choice.host_isa) == (isa, reduce, host)
    assert (choice.note is not None) is noted
    if noted:
        assert "saturate int16 sums" in choice.note and f"{isa.upper()} machine" in choice.note


def test_tensorrt_target_records_no_isa_and_the_emulation(
    sat: dict[str, Path], tmp_path: Path
) -> None:
    from toolkit.model.modelfile import read_spec

    out = tmp_path / "m.trt.onnx"
    code, stdout, stderr = cli(sat["model"], "-o", out, "--target", "tensorrt", "--calib",
                               sat["npz"], "--calib-size", 80, "--json")  # fmt: skip
    assert code == 0, stderr
    report = json.loads(stdout)
    q = read_spec(out).extra["quantization"]
    assert q["cpu_isa"] is None and q["reduce_range"] is False
    assert report["isa"]["cpu_isa"] is None and report["agreement"]["emulated"] is True
    note = "checked with TensorRT int8 semantics on CPU (Q/DQ as float)"
    assert any(note in n for n in report["notes"]) and note in stderr
    assert "TensorRT accumulates int8 in int32" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "cpu", "--cpu", "sse4"], "--cpu must be one of avx2, vnni, arm"),
        (["--target", "tensorrt", "--cpu", "avx2"], "--cpu applies to --target cpu only"),
        (["--precision", "fp16", "--cpu", "avx2"], "--cpu chooses the instruction set"),
    ],
    ids=["unknown-isa", "tensorrt-target", "fp16"],
)
def test_bad_cpu_is_exit_2_and_writes_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    model = color_classifier(tmp_path / "c.onnx")
    npz = color_tensors(tmp_path / "c.npz", n=20)
    out = tmp_path / "o.onnx"
    code, stdout, stderr = cli(model, "-o", out, "--calib", npz, *args)
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1
    assert stdout == "" and not out.exists()
