"""ONNX files of each precision for the build and TensorRT tests, made from the tiny model.

- fp16: onnxconverter-common's ``convert_float_to_float16(keep_io_types=True)``;
- int8 for TensorRT: ``quantize_static`` with the symmetric int8, per-channel settings of
  shared/notes/TENSORRT.md (what NVIDIA ModelOpt passes to ONNX Runtime);
- int8 for the CPU: ``quantize_static`` defaults (uint8 activations), which TensorRT refuses.

Calibration data is random (seeded): the tests check graph structure and parity with ONNX
Runtime on the same file, not accuracy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np


class _RandomReader:
    def __init__(self, name: str, n: int = 8, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self._items = iter(
            [{name: rng.standard_normal((1, 3, 32, 32)).astype(np.float32)} for _ in range(n)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def _input_name(path: Path) -> str:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


def make_fp16(src: Path, dst: Path) -> Path:
    import onnx
    from onnxconverter_common import float16

    model = onnx.load(str(src))
    onnx.save(float16.convert_float_to_float16(model, keep_io_types=True), str(dst))
    return dst


def make_qdq(src: Path, dst: Path, target: str) -> Path:
    """int8 QDQ for ``target`` "tensorrt" (symmetric int8) or "cpu" (uint8 activations)."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    tmp_src = dst.with_name(dst.stem + ".src.onnx")
    shutil.copy(src, tmp_src)
    reader = _RandomReader(_input_name(src))
    if target == "tensorrt":
        quantize_static(
            str(tmp_src),
            str(dst),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "QuantizeBias": False,
                "DedicatedQDQPair": False,
                "QDQKeepRemovableActivations": True,
                "QDQOpTypePerChannelSupportToAxis": {"Conv": 0, "ConvTranspose": 1},
            },
        )
    else:
        quantize_static(
            str(tmp_src),
            str(dst),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    tmp_src.unlink(missing_ok=True)
    return dst


def with_quantization_target(src: Path, dst: Path, target: str) -> Path:
    """A copy of ``src`` whose spec declares ``extra["quantization"]["target"]``."""
    import onnx

    from toolkit.model.modelfile import spec_from_onnx, write_spec

    model = onnx.load(str(src))
    spec = spec_from_onnx(model)
    extra = {**spec.extra, "quantization": {"target": target, "method": "minmax",
                                            "source_model": "tiny.onnx"}}  # fmt: skip
    write_spec(model, spec.with_changes(precision="int8", extra=extra))
    onnx.save(model, str(dst))
    return dst
