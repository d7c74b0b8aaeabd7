"""Model summaries for ``edgetk inspect``: per-layer output shape, parameters and MACs.

PyTorch modules are traced with forward hooks (:func:`summarize_module`); ONNX graphs with
ONNX shape inference (:func:`summarize_onnx`); :func:`summarize` takes any model reference.
Nothing heavy is imported until a function runs.
"""

from __future__ import annotations

from toolkit.summary.api import summarize
from toolkit.summary.onnx_summary import summarize_onnx
from toolkit.summary.torch_summary import summarize_module
from toolkit.summary.types import LayerInfo, ModelSummary, format_count, format_shape

__all__ = [
    "LayerInfo",
    "ModelSummary",
    "format_count",
    "format_shape",
    "summarize",
    "summarize_module",
    "summarize_onnx",
]
