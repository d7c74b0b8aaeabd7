"""Every zoo model, exported and run on every ONNX backend that can run here (a contract).

timm's tests/test_models.py pattern: one parametrized test per model (and backend) instead of
a hand-picked few, so that a new zoo entry is covered the day it is registered. Each entry is
built with random weights at a small input (see SMALLEST), exported with
:func:`toolkit.export.export_onnx` (its parity check on), opened with
:func:`toolkit.backends.open_session`, and its outputs compared with PyTorch's.

Random initializations can be nearly constant: some of the zoo's inits make the logits the
head's bias whatever the image (a comparison that then proves nothing). Each model's
batch-norm statistics are therefore set from a random batch first (still random weights, but
activations of unit scale), and a test checks that different images give outputs far further
apart than the tolerance.

The torch backend is the reference itself, and the tensorrt backend runs built engines
(tests/backends/test_tensorrt_session.py); the ONNX Runtime GPU backends skip, with the reason, where they
cannot run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from toolkit.backends import backend_status, open_session
from toolkit.export import ExportReport, export_onnx
from toolkit.loading import LoadedModel
from toolkit.model.modelfile import read_spec
from toolkit.model.spec import ModelSpec
from toolkit.zoo import create_model, get_registry, list_models

ONNX_BACKENDS = ("ort-cpu", "ort-cuda", "ort-trt")
STATUS = backend_status()
# 32x32: LeNet-5's only size, and one cell of the last (stride 32) feature map for the others;
# AlexNet's stride-4 stem and three max-pools need 64.
SMALLEST = {"alexnet": 64}
DEFAULT_SIZE = 32
# torch.export's tracing makes each export cost seconds, more for deep graphs (GoogLeNet,
# MobileNetV2) and large weights (AlexNet, VGG). Every entry but these is marked slow (CI runs
# them all; `pytest -m "not slow"` runs these): a classic net on one channel, a residual
# ImageNet net and both demo models cover each task, output format and channel count.
FAST = ("lenet5", "resnet18", "defect-cls", "defect-det")
# YOLOv8 heads predict at strides 8, 16 and 32: one anchor per cell of each grid.
YOLO_STRIDES = (8, 16, 32)
# Backend against eager PyTorch, relative to the output's scale (max |reference|). The CPU's
# is the export parity check's; the GPUs' allows TF32 (10-bit mantissa) convolution kernels,
# which fp32 files may run on (docs/tensorrt.md).
RTOL = {"ort-cpu": 1e-3, "ort-cuda": 1e-2, "ort-trt": 1e-2}


def _params() -> list[Any]:
    return [
        pytest.param(name, marks=[] if name in FAST else [pytest.mark.slow], id=name)
        for name in list_models()
    ]


@dataclass
class Exported:
    name: str
    size: int
    module: Any
    spec: ModelSpec
    path: Path
    report: ExportReport


def _settle_batch_norm(module: Any, channels: int, size: int) -> None:
    """Batch-norm running statistics from one random batch: each layer normalizes its input."""
    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # a plain average over the batches seen: here, this one
    module.train()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        module(torch.rand(8, channels, size, size, generator=gen))
    module.eval()


@pytest.fixture(scope="module", params=_params())
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    name = request.param
    size = SMALLEST.get(name, DEFAULT_SIZE)
    torch.manual_seed(0)
    module, spec = create_model(name, pretrained=False)
    _settle_batch_norm(module, spec.input.channels, size)
    path = tmp_path_factory.mktemp(name) / f"{name}.onnx"
    report = export_onnx(LoadedModel(module, spec, f"zoo:{name}"), path, imgsz=size)
    return Exported(name, size, module, spec, path, report)


def _expected_shape(name: str, batch: int | None, size: int) -> tuple[int | None, ...]:
    """The output shape the zoo entry's spec promises at this batch and input size."""
    entry = get_registry().get(name)
    if entry.spec.task == "classify":
        return (batch, entry.num_classes)
    assert entry.spec.output.format == "yolov8", f"{name}: no shape rule for this output"
    anchors = sum((size // s) ** 2 for s in YOLO_STRIDES)
    return (batch, 4 + entry.num_classes, anchors)


def test_export_passes_parity_and_records_the_spec(exported: Exported) -> None:
    entry = get_registry().get(exported.name)
    r = exported.report
    assert r.parity.passed and r.parity.status == "passed"
    assert r.parity.batch_sizes == (1, 2, 3, 1)  # the dynamic batch axis really varies
    c, s = entry.spec.input.channels, exported.size
    assert r.dynamic_batch and r.input_shape == [None, c, s, s]
    assert list(r.output_shapes.values()) == [list(_expected_shape(exported.name, None, s))]
    spec = read_spec(exported.path)
    assert spec.source == f"zoo:{exported.name}" and spec.random_weights is True
    assert spec.task == entry.spec.task and spec.output.format == entry.spec.output.format
    assert spec.labels == entry.spec.labels
    assert spec.preprocess == entry.spec.preprocess  # mean/std/resize travel with the file
    assert spec.input.shape == (None, c, s, s)


def test_outputs_depend_on_the_image(exported: Exported) -> None:
    # Else any backend would "agree": outputs of different images must differ by far more
    # than the tightest tolerance.
    c, s = exported.spec.input.channels, exported.size
    x = torch.rand(2, c, s, s, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y = exported.module(x).numpy()
    assert float(np.abs(y[0] - y[1]).max()) > 10 * RTOL["ort-cpu"] * float(np.abs(y).max())


@pytest.mark.parametrize("backend", ONNX_BACKENDS)
def test_backend_matches_torch(exported: Exported, backend: str) -> None:
    if STATUS[backend] is not None:
        pytest.skip(f"{backend}: {STATUS[backend]}")
    c, s = exported.spec.input.channels, exported.size
    rng = np.random.default_rng(2)
    with open_session(exported.path, backend) as session:
        assert session.backend == backend
        for batch in (1, 3):
            x = rng.random((batch, c, s, s), dtype=np.float32)
            got = session.infer(x)
            with torch.no_grad():
                want = exported.module(torch.from_numpy(x)).numpy()
            assert len(got) == 1
            (out,) = got.values()
            assert out.shape == _expected_shape(exported.name, batch, s) == want.shape
            tol = RTOL[backend] * float(np.abs(want).max())
            np.testing.assert_allclose(out, want, rtol=0, atol=tol)
