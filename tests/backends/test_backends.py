"""Sessions: ONNX Runtime (CPU here; CUDA/TensorRT where a GPU is lent) and PyTorch eager."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from _backend_models import make_sourced_onnx
from _probes import needs_tensorrt, without_tensorrt

from toolkit.backends import AUTO_ORDER, BACKENDS, backend_status, open_session
from toolkit.backends.ort import trt_profile_shapes
from toolkit.errors import BackendUnavailableError, BadInputError
from toolkit.model.spec import InputSpec, ModelSpec, SpecOverrides
from toolkit.platform.cpu import logical_cores, physical_cores

AVAILABLE = ort.get_available_providers()


def _nvidia_smi_works() -> bool:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    try:
        return subprocess.run([exe, "-L"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


HAS_CUDA = "CUDAExecutionProvider" in AVAILABLE and _nvidia_smi_works()
HAS_ORT_TRT = HAS_CUDA and "TensorrtExecutionProvider" in AVAILABLE
no_cuda_provider = pytest.mark.skipif(
    "CUDAExecutionProvider" in AVAILABLE, reason="onnxruntime-gpu is installed here"
)


@pytest.fixture(scope="module")
def sourced(tmp_path_factory: pytest.TempPathFactory):
    return make_sourced_onnx(tmp_path_factory.mktemp("sourced"))


@pytest.fixture()
def foreign_onnx(tiny_onnx: Path, tmp_path: Path) -> Path:
    """tiny_onnx without edgetk metadata: a foreign file."""
    proto = onnx.load(str(tiny_onnx))
    del proto.metadata_props[:]
    out = tmp_path / "foreign.onnx"
    onnx.save(proto, str(out))
    return out


# -- ort-cpu ---------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 5])
def test_ort_cpu_infers_the_right_shapes(tiny_onnx: Path, rng: np.random.Generator, batch: int):
    with open_session(tiny_onnx, "ort-cpu") as s:
        assert s.backend == "ort-cpu"
        assert s.inputs[0].shape == (None, 3, 32, 32)
        assert s.inputs[0].dtype == np.float32
        x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
        out = s.infer(x)
    assert list(out) == [s.outputs[0].name]
    assert out[s.outputs[0].name].shape == (batch, 3)


def test_ort_cpu_matches_plain_onnxruntime(tiny_onnx: Path, rng: np.random.Generator):
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    plain = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    want = plain.run(None, {plain.get_inputs()[0].name: x})[0]
    with open_session(tiny_onnx, "ort-cpu") as s:
        got = next(iter(s.infer(x).values()))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_describe_reports_the_providers_really_used(tiny_onnx: Path):
    with open_session(tiny_onnx, "ort-cpu", threads=1, spinning=True) as s:
        d = s.describe()
        assert d["providers"] == s._sess.get_providers() == ["CPUExecutionProvider"]
    assert d["backend"] == "ort-cpu" and d["device"] == "cpu" and d["precision"] == "fp32"
    assert d["threads"] == 1 and d["spinning"] is True


def test_default_threads_are_physical_cores(tiny_onnx: Path):
    assert 1 <= physical_cores() <= logical_cores()
    with open_session(tiny_onnx, "ort-cpu") as s:
        assert s.describe()["threads"] == physical_cores()
        assert s.describe()["spinning"] is False  # the live loop's default


def test_spec_comes_from_the_file(tiny_onnx: Path):
    with open_session(tiny_onnx, "ort-cpu") as s:
        assert s.spec.labels == ("ok", "scratch", "spot")
        assert s.spec.input.shape == (None, 3, 32, 32)


@pytest.mark.parametrize(
    ("shape", "dtype", "match"),
    [
        ((1, 3, 32), np.float32, "must be 4-D"),
        ((1, 1, 32, 32), np.float32, "axis 1 must be 3"),
        ((2, 3, 16, 32), np.float32, "axis 2 must be 32"),
        ((1, 3, 32, 32), np.str_, "numeric"),
    ],
)
def test_bad_input_is_a_clear_error(tiny_onnx: Path, shape, dtype, match: str):
    x = np.zeros(shape, dtype=dtype)
    with open_session(tiny_onnx, "ort-cpu") as s, pytest.raises(BadInputError, match=match):
        s.infer(x)


def test_wrong_input_name_is_a_clear_error(tiny_onnx: Path):
    with open_session(tiny_onnx, "ort-cpu") as s, pytest.raises(BadInputError, match="names"):
        s.infer({"nope": np.zeros((1, 3, 32, 32), np.float32)})


def test_float64_input_is_cast(tiny_onnx: Path, rng: np.random.Generator):
    x = rng.standard_normal((1, 3, 32, 32))
    with open_session(tiny_onnx, "ort-cpu") as s:
        a = s.infer(x)
        b = s.infer(x.astype(np.float32))
    np.testing.assert_array_equal(next(iter(a.values())), next(iter(b.values())))


def test_float16_io_model(tiny_onnx: Path, tmp_path: Path, rng: np.random.Generator):
    from onnxconverter_common import float16

    half = float16.convert_float_to_float16(onnx.load(str(tiny_onnx)), keep_io_types=False)
    path = tmp_path / "half.onnx"
    onnx.save(half, str(path))
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    with open_session(tiny_onnx, "ort-cpu") as s32, open_session(path, "ort-cpu") as s16:
        assert s16.inputs[0].dtype == np.float16 and s16.outputs[0].dtype == np.float16
        y16 = next(iter(s16.infer(x).values()))
        y32 = next(iter(s32.infer(x).values()))
    assert y16.dtype == np.float16
    np.testing.assert_allclose(y16.astype(np.float32), y32, atol=2e-2)


def test_corrupt_onnx_is_one_line_bad_input(tmp_path: Path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf" * 50)
    with pytest.raises(BadInputError) as e:
        open_session(bad, "ort-cpu")
    assert "\n" not in str(e.value)


def test_graph_onnxruntime_rejects_is_bad_input(tmp_path: Path):
    """A valid protobuf with an op ORT does not know: ORT's error becomes one BadInputError."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"])], "g", [x], [y])
    path = tmp_path / "unknown_op.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(BadInputError, match="ONNX Runtime cannot load") as e:
        open_session(path, "ort-cpu")
    assert "\n" not in str(e.value)


def test_missing_model_is_bad_input(tmp_path: Path):
    with pytest.raises(BadInputError, match="not found"):
        open_session(tmp_path / "nope.onnx", "ort-cpu")


def test_imgsz_that_does_not_fit_a_static_model(tiny_onnx: Path):
    with pytest.raises(BadInputError, match="height 32"):
        open_session(tiny_onnx, "ort-cpu", overrides=SpecOverrides(imgsz=(64, 64)))


def test_zero_threads_rejected(tiny_onnx: Path):
    with pytest.raises(BadInputError, match="threads"):
        open_session(tiny_onnx, "ort-cpu", threads=0)


# -- names, status, auto ---------------------------------------------------------------------


def test_unknown_backend_lists_the_valid_names(tiny_onnx: Path):
    with pytest.raises(BadInputError) as e:
        open_session(tiny_onnx, "onnx-gpu")
    for name in ("auto", *BACKENDS):
        assert name in str(e.value)


def test_backend_status_never_raises_and_covers_all():
    status = backend_status()
    assert set(status) == set(BACKENDS)
    assert status["ort-cpu"] is None
    assert status["torch"] is None


@without_tensorrt
def test_backend_status_says_why_tensorrt_cannot_run():
    assert "tensorrt" in (backend_status()["tensorrt"] or "")  # never faked as available


@pytest.mark.tensorrt
@needs_tensorrt
def test_backend_status_lists_tensorrt_where_it_runs():
    assert backend_status()["tensorrt"] is None


@no_cuda_provider
@pytest.mark.parametrize("backend", ["ort-cuda", "ort-trt"])
def test_gpu_backend_without_gpu_names_what_is_missing(tiny_onnx: Path, backend: str):
    with pytest.raises(BackendUnavailableError) as e:
        open_session(tiny_onnx, backend)
    msg = str(e.value)
    assert "onnxruntime-gpu" in msg and "edgetk[gpu]" in msg
    assert "CPUExecutionProvider" in msg  # lists what is available
    assert backend_status()[backend] is not None


def test_tensorrt_backend_is_unavailable_not_faked(tiny_onnx: Path):
    with pytest.raises(BackendUnavailableError, match=r"(?i)tensorrt"):
        open_session(tiny_onnx, "tensorrt")


def test_auto_picks_the_best_available(tiny_onnx: Path):
    status = backend_status()
    # tensorrt runs built engines only: auto never opens an ONNX file with it
    want = next(n for n in AUTO_ORDER if n != "tensorrt" and status[n] is None)
    with open_session(tiny_onnx, "auto") as s:
        assert s.backend == want
    if not HAS_CUDA:
        assert want == "ort-cpu"


def test_ort_backend_on_a_pytorch_reference_says_export_first(sourced):
    with pytest.raises(BadInputError, match="export"):
        open_session(sourced.ref, "ort-cpu")


# -- torch -----------------------------------------------------------------------------------


def test_torch_backend_on_a_foreign_onnx_is_unavailable(foreign_onnx: Path):
    with pytest.raises(BackendUnavailableError, match="no PyTorch source"):
        open_session(foreign_onnx, "torch")


def test_torch_backend_runs_the_model_source_named(sourced, rng: np.random.Generator):
    """The recorded file.py source is not run; --model-source (with --weights) names it."""
    with pytest.raises(BackendUnavailableError, match="--model-source"):
        open_session(sourced.onnx, "torch")
    x = rng.standard_normal((3, 3, 24, 24)).astype(np.float32)
    named = {"model_source": sourced.ref, "weights": str(sourced.weights)}
    with (
        open_session(sourced.onnx, "ort-cpu") as o,
        open_session(sourced.onnx, "torch", **named) as t,
    ):
        assert [i.name for i in t.inputs] == [i.name for i in o.inputs]
        assert [i.name for i in t.outputs] == [i.name for i in o.outputs]
        assert t.describe()["source"] == sourced.ref
        assert t.describe()["weights"] == str(sourced.weights)  # --weights loaded
        yo, yt = o.infer(x), t.infer(x)
    assert set(yo) == set(yt)
    for name in yo:
        assert yt[name].shape == (3, 4)
        np.testing.assert_allclose(yt[name], yo[name], rtol=1e-4, atol=1e-5)


def test_torch_backend_loads_the_weights_given(sourced, rng: np.random.Generator):
    """With --model-source, --weights is the checkpoint: all-zero weights, all-zero logits."""
    import torch

    fresh = sourced.weights.with_name("zeros.pt")
    state = {
        k: torch.zeros_like(v) for k, v in torch.load(sourced.weights, weights_only=True).items()
    }
    torch.save(state, fresh)
    x = rng.standard_normal((1, 3, 24, 24)).astype(np.float32)
    with open_session(sourced.onnx, "torch", weights=str(fresh), model_source=sourced.ref) as t:
        y = next(iter(t.infer(x).values()))
    np.testing.assert_array_equal(y, np.zeros_like(y))


def test_torch_backend_source_file_moved_is_unavailable(sourced, tmp_path: Path):
    gone = str(tmp_path / "gone.py") + ":TinyNet"
    with pytest.raises(BackendUnavailableError, match="cannot load"):
        open_session(sourced.onnx, "torch", model_source=gone)


def test_torch_backend_relative_source_beside_the_onnx_is_not_run(
    sourced, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A recorded `model.py:Name` beside the file is not run; named as typed from here, it is."""
    from toolkit.model.modelfile import spec_from_onnx, write_spec

    moved = tmp_path / "shipped"
    moved.mkdir()
    shutil.copy(sourced.py, moved / "tinynet.py")
    shutil.copy(sourced.weights, moved / "tinynet.pt")
    proto = onnx.load(str(sourced.onnx))
    spec = spec_from_onnx(proto)
    write_spec(
        proto, spec.with_changes(source="tinynet.py:TinyNet", extra={"weights": "tinynet.pt"})
    )
    onnx.save(proto, str(moved / "m.onnx"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BackendUnavailableError, match="--model-source"):
        open_session(moved / "m.onnx", "torch")
    x = np.ones((1, 3, 24, 24), np.float32)
    named = {"model_source": "shipped/tinynet.py:TinyNet", "weights": "shipped/tinynet.pt"}
    with (
        open_session(moved / "m.onnx", "torch", **named) as t,
        open_session(moved / "m.onnx", "ort-cpu") as o,
    ):
        np.testing.assert_allclose(
            next(iter(t.infer(x).values())), next(iter(o.infer(x).values())), rtol=1e-4, atol=1e-5
        )


def test_torch_backend_on_a_pytorch_reference(sourced, rng: np.random.Generator):
    size = SpecOverrides(imgsz=(24, 24))  # a .py reference brings no input size of its own
    with open_session(sourced.ref, "torch", weights=str(sourced.weights), overrides=size) as t:
        assert t.backend == "torch"
        assert t.inputs[0].shape == (None, 3, 24, 24)
        assert t.outputs[0].shape == (None, 4)  # learnt from one forward pass
        y = t.infer(rng.standard_normal((2, 3, 24, 24)).astype(np.float32))
    assert next(iter(y.values())).shape == (2, 4)
    with open_session(sourced.ref, "auto", weights=str(sourced.weights)) as s:
        assert s.backend == "torch"  # auto for a PyTorch reference


# -- TensorRT profile (pure logic, checked without a GPU) ------------------------------------


def test_trt_profile_shapes_span_the_batch():
    spec = ModelSpec(input=InputSpec(name="images", shape=(None, 3, 224, 224)))
    got = trt_profile_shapes([("images", (None, 3, None, None))], spec, opt_batch=8, max_batch=16)
    assert got == {
        "trt_profile_min_shapes": "images:1x3x224x224",
        "trt_profile_opt_shapes": "images:8x3x224x224",
        "trt_profile_max_shapes": "images:16x3x224x224",
    }
    assert trt_profile_shapes([("images", (4, 3, 224, 224))], spec) == {}  # all static
    unknown = ModelSpec(input=InputSpec(name="other", shape=(None, 3, 224, 224)))
    assert trt_profile_shapes([("images", (None, 3, None, None))], unknown) == {}


# -- GPU (only where one is lent; skipped by a probe, never faked) ---------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu and a working nvidia-smi")
def test_ort_cuda_runs_on_the_gpu(tiny_onnx: Path, rng: np.random.Generator):
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    with open_session(tiny_onnx, "ort-cuda") as g, open_session(tiny_onnx, "ort-cpu") as c:
        assert g.describe()["providers"][0] == "CUDAExecutionProvider"
        assert g.device == "cuda:0"
        yg, yc = g.infer(x), c.infer(x)
    for name in yc:
        np.testing.assert_allclose(yg[name], yc[name], rtol=1e-3, atol=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_ORT_TRT, reason="needs onnxruntime-gpu with TensorRT and a GPU")
def test_ort_trt_runs_and_caches_beside_the_model(tiny_onnx: Path, tmp_path: Path, rng):
    model = tmp_path / "m.onnx"
    shutil.copy(tiny_onnx, model)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    try:
        session = open_session(model, "ort-trt", opt_batch=2)
    except BackendUnavailableError as e:  # TensorRT libraries missing: said, not faked
        pytest.skip(str(e))
    with session as t, open_session(tiny_onnx, "ort-cpu") as c:
        assert t.describe()["providers"][0] == "TensorrtExecutionProvider"
        yt, yc = t.infer(x), c.infer(x)
    for name in yc:
        np.testing.assert_allclose(yt[name], yc[name], rtol=1e-3, atol=1e-3)
    assert (tmp_path / "m.trt_cache").is_dir()
