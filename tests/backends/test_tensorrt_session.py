"""The tensorrt backend.

Without TensorRT (every CI and developer machine): the backend reports itself unavailable
with the extra to install, never faked; the benchmark reports it as unavailable, not as an
error. With TensorRT and a CUDA device (marker ``tensorrt``, skipped by a capability probe):
engines built from each precision of the tiny model run through the session and agree with
ONNX Runtime on the same ONNX file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _probes import (
    needs_tensorrt,
    without_tensorrt_installed,
)
from _trt_models import make_fp16, make_qdq
from typer.testing import CliRunner

from toolkit.backends import backend_status, open_session
from toolkit.backends.base import Session, TensorInfo
from toolkit.cli.app import app
from toolkit.errors import BackendUnavailableError, BadInputError, MissingDependencyError
from toolkit.model.modelfile import read_spec
from toolkit.model.sidecar import EngineInfo, sidecar_path, write_sidecar

HINT = 'pip install "edgetk[tensorrt]"'


@pytest.fixture()
def fake_engine(tiny_onnx: Path, tmp_path: Path) -> Path:
    """An engine file (not a real plan) with its sidecar: enough for the paths before TensorRT."""
    engine = tmp_path / "x.engine"
    engine.write_bytes(b"not a plan")
    write_sidecar(
        engine,
        EngineInfo(
            spec=read_spec(tiny_onnx).with_changes(precision="int8"),
            tensorrt="10.3.0",
            gpu="Orin",
            compute_capability="8.7",
            precision="int8",
        ),
    )
    return engine


# -- without TensorRT ----------------------------------------------------------------------
@without_tensorrt_installed
def test_status_names_the_extra():
    assert backend_status()["tensorrt"] == f"tensorrt is not installed ({HINT})"


@without_tensorrt_installed
@pytest.mark.parametrize("backend", ["tensorrt", "auto"])
def test_open_engine_without_tensorrt_is_unavailable(fake_engine: Path, backend: str):
    with pytest.raises(
        BackendUnavailableError, match=r"tensorrt is not installed.*edgetk\[tensorrt\]"
    ):
        open_session(fake_engine, backend)


@without_tensorrt_installed
def test_session_without_tensorrt_is_missing_dependency(fake_engine: Path):
    from toolkit.backends.tensorrt import TensorRTSession

    with pytest.raises(MissingDependencyError, match=r"tensorrt is not installed") as e:
        TensorRTSession(fake_engine)
    assert e.value.extra == "tensorrt" and e.value.exit_code == 2


def test_engine_on_another_backend_is_unavailable(fake_engine: Path):
    with pytest.raises(BackendUnavailableError, match="TensorRT engine: only the tensorrt backend"):
        open_session(fake_engine, "ort-cpu")


@without_tensorrt_installed
def test_benchmark_engine_reports_tensorrt_unavailable(fake_engine: Path):
    result = CliRunner().invoke(
        app,
        ["benchmark", str(fake_engine), "--backend", "tensorrt,ort-cpu", "--iters", "2", "--json"],
    )
    assert result.exit_code == 0, result.output
    rows = {r["backend"]: r for r in json.loads(result.stdout)["results"]}
    trt = rows["tensorrt"]
    assert trt["status"].startswith("unavailable: tensorrt is not installed")
    assert "edgetk[tensorrt]" in trt["status"]
    assert trt["precision"] == "int8"  # from the sidecar
    assert trt["latency_ms"] is None
    assert rows["ort-cpu"]["status"].startswith("unavailable: ")


class _TimedSession(Session):
    """A session that reports CUDA-event style timings, as the tensorrt session does."""

    backend = "tensorrt"

    def __init__(self, spec) -> None:
        self.spec = spec
        self.inputs = [TensorInfo("images", (None, 3, 32, 32), np.dtype(np.float32))]
        self.outputs = [TensorInfo("logits", (None, 3), np.dtype(np.float32))]
        self.calls = 0
        self.last_timing: dict[str, float | None] = {}

    def _infer(self, inputs):
        self.calls += 1
        compute = 1.0 + self.calls % 2  # 2, 1, 2, 1 ... ms
        self.last_timing = {"latency_ms": compute + 0.5, "gpu_compute_ms": compute,
                            "h2d_ms": 0.3, "d2h_ms": 0.2}  # fmt: skip
        return {"logits": np.zeros((inputs["images"].shape[0], 3), np.float32)}


def test_benchmark_rows_carry_trtexec_gpu_times(tiny_onnx: Path):
    """Latency incl. copies vs GPU compute time: additive keys next to the SPEC's."""
    from toolkit.bench.runner import BenchResult, _Run

    session = _TimedSession(read_spec(tiny_onnx))
    run = _Run(
        result=BenchResult("m.engine", "tensorrt", "int8", 1),
        session=session,
        feed={"images": np.zeros((1, 3, 32, 32), np.float32)},
    )
    run.call(4)
    gpu = run.gpu_stats()
    assert gpu is not None and set(gpu) == {"latency", "gpu_compute", "h2d", "d2h"}
    assert gpu["gpu_compute"]["mean"] == pytest.approx(1.5)
    assert gpu["latency"]["mean"] == pytest.approx(2.0) and gpu["h2d"]["max"] == pytest.approx(0.3)
    run.result.gpu_ms = gpu
    row = run.result.to_dict()
    assert row["gpu_ms"]["gpu_compute"]["p50"] == pytest.approx(1.5)
    assert "gpu_ms" not in BenchResult("m.onnx", "ort-cpu", "fp32", 1).to_dict()


# -- with TensorRT and a GPU ---------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_models(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("trt-models")
    return {
        "fp32": tiny_onnx,
        "fp16": make_fp16(tiny_onnx, d / "tiny.fp16.onnx"),
        "int8": make_qdq(tiny_onnx, d / "tiny.trt-int8.onnx", "tensorrt"),
    }


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    with open_session(path, "ort-cpu") as s:
        return next(iter(s.infer(x).values()))


# (precision, absolute tolerance on the logits vs ONNX Runtime on the same file)
TOLERANCE = {"fp32": 1e-3, "fp16": 3e-2, "int8": 1e-1}


@pytest.mark.tensorrt
@needs_tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_engine_matches_onnxruntime(onnx_models, precision: str, tmp_path: Path):
    from toolkit.backends.tensorrt import TensorRTSession
    from toolkit.build.builder import BuildOptions, build_engine

    src = onnx_models[precision]
    engine = tmp_path / f"tiny.{precision}.engine"
    cache = tmp_path / "trt.cache"
    report = build_engine(src, engine, BuildOptions(max_batch=4, timing_cache=str(cache)))
    assert engine.is_file() and sidecar_path(engine).is_file() and cache.is_file()
    assert report.precision == precision
    side = json.loads(sidecar_path(engine).read_text())
    assert side["precision"] == precision and side["build"]["max_batch"] == 4
    assert engine.read_bytes()[:4] != b"{" and report.size_bytes == engine.stat().st_size

    rng = np.random.default_rng(0)
    with TensorRTSession(engine) as s:
        assert s.precision == precision and s.max_batch == 4
        name = s.inputs[0].name
        for batch in (1, 4, 2):  # grow, then reuse the larger buffers
            x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
            got = s.infer({name: x})
            out = next(iter(got.values()))
            assert out.dtype == np.float32 and out.shape == (batch, 3)
            np.testing.assert_allclose(out, _ort(src, x), atol=TOLERANCE[precision], rtol=0)
            timing = s.last_timing
            assert timing["gpu_compute_ms"] is not None
            assert timing["latency_ms"] >= timing["gpu_compute_ms"] > 0
        capacity = s._buffers[name].capacity
        s.infer({name: rng.standard_normal((3, 3, 32, 32)).astype(np.float32)})
        assert s._buffers[name].capacity == capacity  # no new allocation below the high mark
        with pytest.raises(BadInputError, match="outside the engine's profile"):
            s.infer({name: np.zeros((5, 3, 32, 32), np.float32)})


@pytest.mark.tensorrt
@needs_tensorrt
def test_cuda_graph_gives_the_same_outputs(onnx_models, tmp_path: Path):
    from toolkit.backends.tensorrt import TensorRTSession
    from toolkit.build.builder import BuildOptions, build_engine

    engine = tmp_path / "g.engine"
    build_engine(onnx_models["fp32"], engine, BuildOptions(max_batch=2))
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with TensorRTSession(engine) as plain, TensorRTSession(engine, cuda_graph=True) as graphed:
        want = plain.infer(x)
        for _ in range(3):  # run, capture, replay
            got = graphed.infer(x)
            for k in want:
                np.testing.assert_allclose(got[k], want[k], atol=1e-5)
        assert graphed.last_timing.get("cuda_graph") is True


@pytest.mark.tensorrt
@needs_tensorrt
def test_engine_sidecar_mismatch_and_no_sidecar(onnx_models, tmp_path: Path):
    from toolkit.backends.tensorrt import TensorRTSession
    from toolkit.build.builder import BuildOptions, build_engine

    engine = tmp_path / "m.engine"
    build_engine(onnx_models["fp32"], engine, BuildOptions(max_batch=2))
    side = sidecar_path(engine)
    data = json.loads(side.read_text())
    data["tensorrt"] = "9.0.0"
    side.write_text(json.dumps(data))
    with pytest.raises(BadInputError, match=r"TensorRT 9\.0\.0.*edgetk build --rebuild"):
        TensorRTSession(engine)
    side.unlink()  # as if trtexec had built it: flags fill the spec
    with open_session(engine, "tensorrt") as s:
        assert s.spec.task == "classify" and s.spec.input.shape[1:] == (3, 32, 32)
        assert s.infer(np.zeros((1, 3, 32, 32), np.float32))


@pytest.mark.tensorrt
@needs_tensorrt
def test_benchmark_engine_reports_gpu_compute(onnx_models, tmp_path: Path):
    from toolkit.bench.runner import benchmark
    from toolkit.build.builder import BuildOptions, build_engine

    engine = tmp_path / "b.engine"
    build_engine(onnx_models["fp16"], engine, BuildOptions(max_batch=4))
    report = benchmark([engine], ["tensorrt"], [1, 4, 8], warmup=2, iters=5)
    rows = {r.batch: r for r in report.results}
    assert rows[1].ok and rows[4].ok and rows[1].precision == "fp16"
    gpu = rows[4].to_dict()["gpu_ms"]
    assert gpu["latency"]["mean"] >= gpu["gpu_compute"]["mean"] > 0
    assert rows[8].status.startswith("unavailable: the engine's profile allows batch <= 4")
