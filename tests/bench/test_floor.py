"""The floor: the machine's GEMM rate (measured once, cached), MACs, plain ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from toolkit.bench import floor
from toolkit.bench.floor import gemm_rate, model_macs, plain_ort_latency

SMALL = 128  # a GEMM size that keeps the tests fast (the real default is larger)
CONV_MACS = 8 * 32 * 32 * 3 * 3 * 3  # Conv 3->8, 3x3, 32x32 output, batch 1


def _conv_onnx(path: Path, batch: int | str = "batch") -> Path:
    """One Conv 3->8, 3x3, padding 1, on a 3x32x32 input (dynamic batch by default)."""
    w = numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 8, 32, 32])],
        initializer=[w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _no_measuring(*args: object) -> tuple[float, int]:
    raise AssertionError("measured again instead of reading the cache")


def test_gemm_rate_is_positive_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = gemm_rate(1, cache_dir=tmp_path, size=SMALL)
    assert first["gflops"] > 0
    assert first["threads"] == 1
    assert first["cached"] is False
    assert f"{SMALL}x{SMALL}" in first["how"] and "1 thread," in first["how"]
    assert len(list(tmp_path.glob("*.json"))) == 1

    monkeypatch.setattr(floor, "_measure_gemm", _no_measuring)
    second = gemm_rate(1, cache_dir=tmp_path, size=SMALL)
    assert second == {**first, "cached": True}


def test_gemm_cache_is_keyed_by_threads_and_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int]] = []

    def fake(threads: int, size: int) -> tuple[float, int]:
        calls.append((threads, size))
        return 10.0 * threads, 5

    monkeypatch.setattr(floor, "_measure_gemm", fake)
    assert gemm_rate(1, cache_dir=tmp_path, size=SMALL)["gflops"] == 10.0
    assert gemm_rate(2, cache_dir=tmp_path, size=SMALL)["gflops"] == 20.0
    assert gemm_rate(1, cache_dir=tmp_path, size=2 * SMALL)["cached"] is False
    assert gemm_rate(2, cache_dir=tmp_path, size=SMALL)["cached"] is True
    assert calls == [(1, SMALL), (2, SMALL), (1, 2 * SMALL)]


def test_gemm_default_threads_and_cache_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from toolkit.platform.cpu import default_threads

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(floor, "_measure_gemm", lambda threads, size: (5.0, 5))
    rate = gemm_rate(size=SMALL)
    assert rate["threads"] == default_threads()
    assert len(list((tmp_path / "edgetk" / "floor").glob("gemm-*.json"))) == 1


@pytest.mark.parametrize("junk", ["{not json", "[]", '{"gflops": "fast"}', ""])
def test_corrupt_gemm_cache_is_measured_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, junk: str
) -> None:
    monkeypatch.setattr(floor, "_measure_gemm", lambda threads, size: (7.0, 5))
    gemm_rate(1, cache_dir=tmp_path, size=SMALL)
    (cache,) = tmp_path.glob("*.json")
    cache.write_text(junk)

    monkeypatch.setattr(floor, "_measure_gemm", lambda threads, size: (9.0, 5))
    again = gemm_rate(1, cache_dir=tmp_path, size=SMALL)
    assert again["cached"] is False and again["gflops"] == 9.0
    assert json.loads(cache.read_text())["gflops"] == 9.0  # replaced by the new measurement
    assert gemm_rate(1, cache_dir=tmp_path, size=SMALL)["cached"] is True


def test_gemm_rate_without_a_writable_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(floor, "_measure_gemm", lambda threads, size: (3.0, 5))
    rate = gemm_rate(1, cache_dir=blocker / "floor", size=SMALL)
    assert rate["gflops"] == 3.0 and rate["cached"] is False


def test_model_macs_of_one_conv_scale_with_batch(tmp_path: Path) -> None:
    path = _conv_onnx(tmp_path / "conv.onnx")
    assert model_macs(path) == CONV_MACS
    assert model_macs(str(path), batch=4) == 4 * CONV_MACS


def test_model_macs_of_a_static_batch_file_are_per_input(tmp_path: Path) -> None:
    path = _conv_onnx(tmp_path / "conv4.onnx", batch=4)
    assert model_macs(path, batch=4) == 4 * CONV_MACS
    assert model_macs(path, batch=1) == CONV_MACS


def test_model_macs_of_a_pytorch_reference() -> None:
    from toolkit.summary import summarize

    total = summarize("zoo:resnet18").total_macs
    assert model_macs("zoo:resnet18", batch=2) == 2 * total


def test_model_macs_none_when_not_countable(tmp_path: Path) -> None:
    relu = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(relu, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert model_macs(path) is None  # no Conv, Gemm or MatMul
    assert model_macs(tmp_path / "model.engine") is None
    assert model_macs(tmp_path / "missing.onnx") is None


def test_plain_ort_latency(tmp_path: Path) -> None:
    path = _conv_onnx(tmp_path / "conv.onnx")
    result = plain_ort_latency(path, batch=2, threads=1, iters=5)
    assert result is not None
    assert result["p50_ms"] > 0
    settings = result["settings"]
    assert settings["intra_op_num_threads"] == 1
    assert settings["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert settings["execution_mode"] == "ORT_SEQUENTIAL"
    assert isinstance(settings["allow_spinning"], bool)


def test_plain_ort_latency_of_an_edgetk_file(tiny_onnx: Path) -> None:
    from toolkit.platform.cpu import default_threads

    result = plain_ort_latency(tiny_onnx, batch=1, threads=None, iters=3)
    assert result is not None and result["p50_ms"] > 0
    assert result["settings"]["intra_op_num_threads"] == default_threads()


def test_plain_ort_latency_none_when_it_cannot_run(tmp_path: Path) -> None:
    static = _conv_onnx(tmp_path / "conv4.onnx", batch=4)
    assert plain_ort_latency(static, batch=2, threads=1, iters=3) is None
    assert plain_ort_latency(static, batch=4, threads=1, iters=3) is not None
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    assert plain_ort_latency(broken, batch=1, threads=1, iters=3) is None
