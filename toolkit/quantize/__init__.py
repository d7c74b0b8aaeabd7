"""fp16 and int8 (QDQ) quantization of ONNX models, with calibration, checks and a gate.

Example:
    >>> from toolkit.quantize import quantize_model
    >>> report = quantize_model("m.onnx", "m.int8.onnx", target="cpu", calib="synthetic")
    >>> report.passed, report.agreement["top1_agreement"]
"""

from __future__ import annotations

from toolkit.quantize.api import quantize_model
from toolkit.quantize.report import QuantizeReport
from toolkit.quantize.trtcheck import TrtCheck, check_tensorrt

__all__ = ["QuantizeReport", "TrtCheck", "check_tensorrt", "quantize_model"]
