"""FP16 conversion of an ONNX model (a GPU format: ONNX Runtime on a CPU runs it at fp32 speed).

onnxconverter-common's ``convert_float_to_float16`` with ``keep_io_types=True``: the inputs and
outputs stay float32 (so the same preprocessing feeds it), constants are clamped to +-1e4 and
ops that must stay float32 (Resize, TopK, NMS...) are kept there (docs/tensorrt.md).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from toolkit.errors import MissingDependencyError, ToolkitError

log = logging.getLogger(__name__)

GPU_NOTE = (
    "fp16 is a GPU format (TensorRT, ORT CUDA): ONNX Runtime on a CPU casts back and runs it "
    "at fp32 speed"
)


def convert_fp16(model: Any) -> Any:
    """Return an fp16 copy of ``model`` (float32 inputs and outputs kept).

    Raises:
        MissingDependencyError: onnxconverter-common is not installed.
        ToolkitError: the converter failed.
    """
    try:
        from onnxconverter_common import float16
    except ImportError as e:
        raise MissingDependencyError("onnxconverter-common", None, "fp16 conversion") from e
    try:
        with warnings.catch_warnings():
            # The converter warns once per clamped constant: summarised by the parity report.
            warnings.simplefilter("ignore")
            return float16.convert_float_to_float16(model, keep_io_types=True)
    except (ValueError, RuntimeError, TypeError, KeyError) as e:
        raise ToolkitError(f"fp16 conversion failed: {type(e).__name__}: {e}") from e
