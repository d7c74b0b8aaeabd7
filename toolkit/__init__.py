"""edgetk: take vision models from PyTorch to the edge.

The public API is re-exported here and loaded lazily, so ``import toolkit`` stays light
(no torch, onnxruntime or TensorRT import until a function that needs them is used).

Example:
    >>> import toolkit
    >>> report = toolkit.export_onnx("zoo:resnet18", "r18.onnx")
    >>> with toolkit.open_session("r18.onnx") as session:
    ...     outputs = session.infer(x)
"""

from __future__ import annotations

import importlib
from typing import Any

from toolkit._version import __version__
from toolkit.errors import BadInputError, ToolkitError
from toolkit.model.spec import ModelSpec

# name -> module that defines it; resolved on first attribute access.
_LAZY: dict[str, str] = {
    "predict": "toolkit.tasks.predict",
    "validate": "toolkit.evaluate.val",
    "preprocess": "toolkit.tasks.preprocess",
    "FrameMeta": "toolkit.tasks.preprocess",
    "Session": "toolkit.backends.base",
    "open_session": "toolkit.backends",
    "backend_status": "toolkit.backends",
    "benchmark": "toolkit.bench.runner",
    "export_onnx": "toolkit.export",
    "load_model": "toolkit.loading",
    "create_model": "toolkit.zoo",
    "list_models": "toolkit.zoo",
    "make_task": "toolkit.tasks.base",
    "run_task": "toolkit.tasks.base",
    "ClassifyTask": "toolkit.tasks.classify",
    "Classification": "toolkit.tasks.classify",
    "DetectTask": "toolkit.tasks.detect",
    "Detections": "toolkit.tasks.detect",
    "iter_images": "toolkit.data.images",
    "validate_classifier": "toolkit.evaluate.classify",
    "validate_detector": "toolkit.evaluate.detect",
    "quantize_model": "toolkit.quantize.api",
    "check_tensorrt": "toolkit.quantize",
    "build_engine": "toolkit.build.builder",
    "run_live": "toolkit.live.run",
    "train_classifier": "toolkit.train",
    "train_detector": "toolkit.train.detect",
    "run_demo": "toolkit.demo.run",
}

__all__ = ["BadInputError", "ModelSpec", "ToolkitError", "__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'toolkit' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
