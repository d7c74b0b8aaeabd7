"""The openvino backends: devices, cache, hints, and parity with ONNX Runtime (zoo models)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from toolkit.backends import backend_status, open_session
from toolkit.errors import BackendUnavailableError, BadInputError

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None, reason='openvino is not installed ("[openvino]")'
)


def _devices() -> list[str]:
    import openvino as ov

    return list(ov.Core().available_devices)


def _out(session, x: np.ndarray) -> np.ndarray:
    (y,) = session.infer(x).values()
    return y


@pytest.mark.parametrize("batch", [1, 5])
def test_cpu_matches_ort(tiny_onnx: Path, rng: np.random.Generator, batch: int):
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    with open_session(tiny_onnx, "ort-cpu") as ref, open_session(tiny_onnx, "openvino:CPU") as s:
        assert s.backend == "openvino:CPU" and s.device == "cpu"
        assert s.inputs[0].shape == (None, 3, 32, 32) and s.inputs[0].dtype == np.float32
        assert [t.name for t in s.outputs] == [t.name for t in ref.outputs]
        np.testing.assert_allclose(_out(s, x), _out(ref, x), rtol=1e-4, atol=1e-5)
        assert s.spec.labels == ("ok", "scratch", "spot")  # the spec comes from the file


def test_auto_device_and_describe(tiny_onnx: Path):
    with open_session(tiny_onnx, "OpenVINO", threads=1) as s:
        d = s.describe()
    assert d["backend"] == "openvino" and d["device"] == "auto"
    assert d["hint"] == "latency" and d["infer_requests"] == 1 and d["threads"] == 1
    assert set(d["execution_devices"]) <= set(_devices())


def test_compiled_model_cache_is_under_the_cache_home(tiny_onnx: Path):
    import os

    with open_session(tiny_onnx, "openvino:CPU") as s:
        cache = Path(s.describe()["cache_dir"])
    assert cache == Path(os.environ["XDG_CACHE_HOME"]) / "edgetk" / "openvino"
    assert any(cache.iterdir())  # a compiled blob: a restart does not recompile


def test_throughput_hint_splits_a_batch_over_requests(tiny_onnx: Path, rng: np.random.Generator):
    x = rng.standard_normal((7, 3, 32, 32)).astype(np.float32)
    with (
        open_session(tiny_onnx, "openvino:CPU") as lat,
        open_session(tiny_onnx, "openvino:CPU", hint="throughput") as thr,
    ):
        assert thr.describe()["hint"] == "throughput" and thr.nireq >= 1
        np.testing.assert_allclose(_out(thr, x), _out(lat, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", ["GPU", "NPU"])
def test_absent_device_is_unavailable_with_the_reason(tiny_onnx: Path, device: str):
    if device in {d.split(".")[0] for d in _devices()}:
        pytest.skip(f"OpenVINO has a {device} here")
    reason = backend_status()[f"openvino:{device}"]
    assert reason is not None and "OpenVINO sees" in reason
    with pytest.raises(BackendUnavailableError, match=f"openvino:{device} needs"):
        open_session(tiny_onnx, f"openvino:{device.lower()}")


@pytest.mark.parametrize(
    ("backend", "kwargs", "match"),
    [
        ("openvino:TPU", {}, "unknown OpenVINO device"),
        ("openvino:CPU", {"hint": "fast"}, "hint must be one of"),
        ("ort-cpu", {"hint": "latency"}, "openvino backends only"),
    ],
)
def test_bad_names_and_hints(tiny_onnx: Path, backend: str, kwargs: dict, match: str):
    with pytest.raises(BadInputError, match=match):
        open_session(tiny_onnx, backend, **kwargs)


def test_auto_never_picks_openvino_on_a_cpu_alone(tiny_onnx: Path):
    if {"GPU", "NPU"} & {d.split(".")[0] for d in _devices()}:
        pytest.skip("OpenVINO has an accelerator here")
    with open_session(tiny_onnx, "auto") as s:
        assert not s.backend.startswith("openvino")


def test_int8_qdq_file_runs_as_it_is(tiny_onnx: Path, tmp_path: Path, rng: np.random.Generator):
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"images": rng.random((1, 3, 32, 32), dtype=np.float32)}] * 4)

        def get_next(self):
            return next(self.it, None)

    q = tmp_path / "q.onnx"
    quantize_static(str(tiny_onnx), str(q), Reader(), activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True)  # fmt: skip
    x = rng.random((2, 3, 32, 32), dtype=np.float32)
    with open_session(q, "ort-cpu") as ref, open_session(q, "openvino:CPU") as s:
        a, b = _out(ref, x), _out(s, x)
    assert np.abs(a - b).max() <= 0.05 * np.abs(a).max() + 1e-3


# -- parity on zoo models, as the zoo contract test runs them (tests/zoo; ~5-10 s each) ------
ZOO = [
    pytest.param("defect-det", id="defect-det", marks=pytest.mark.slow),
    pytest.param("resnet18", id="resnet18", marks=pytest.mark.slow),
    pytest.param("defect-cls", id="defect-cls", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_matches_ort(name: str, tmp_path: Path):
    import torch

    from toolkit.export import export_onnx
    from toolkit.loading import LoadedModel
    from toolkit.zoo import create_model

    torch.manual_seed(0)
    module, spec = create_model(name, pretrained=False)
    path = tmp_path / f"{name}.onnx"
    export_onnx(LoadedModel(module, spec, f"zoo:{name}"), path, imgsz=32)
    x = np.random.default_rng(2).random((3, spec.input.channels, 32, 32), dtype=np.float32)
    with open_session(path, "ort-cpu") as ref, open_session(path, "openvino:CPU") as s:
        want, got = _out(ref, x), _out(s, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-3 * float(np.abs(want).max()))
