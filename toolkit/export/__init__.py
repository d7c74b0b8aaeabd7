"""PyTorch -> ONNX export with graph checks, simplification and a parity check.

Example:
    >>> from toolkit.export import export_onnx
    >>> report = export_onnx("zoo:resnet18", "r18.onnx")
    >>> report.parity.passed, report.nodes_after
"""

from __future__ import annotations

from toolkit.export.checks import ExportError
from toolkit.export.onnx_export import ExportReport, export_onnx
from toolkit.export.parity import ParityReport

__all__ = ["ExportError", "ExportReport", "ParityReport", "export_onnx"]
