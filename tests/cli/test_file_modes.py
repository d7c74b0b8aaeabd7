"""Artifacts get the user's umask: temp files (0600) and folders (0700) are not left private.

Each case runs under two umasks, so a hard-coded 0644 / 0755 fails the second one.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from toolkit.fileio import apply_umask, atomic_write_text, current_umask, save_onnx


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _file_mode(mask: int) -> int:
    return 0o666 & ~mask


def _dir_mode(mask: int) -> int:
    return 0o777 & ~mask


def test_current_umask_reads_without_changing(umask: int) -> None:
    assert current_umask() == umask
    assert current_umask() == umask  # reading did not change it


def test_apply_umask_on_a_private_temp_file_and_folder(umask: int, tmp_path: Path) -> None:
    f, d = tmp_path / "f", tmp_path / "d"
    f.touch()
    d.mkdir()
    os.chmod(f, 0o600)  # what mkstemp / mkdtemp give
    os.chmod(d, 0o700)
    apply_umask(f)
    apply_umask(d)
    assert (_mode(f), _mode(d)) == (_file_mode(umask), _dir_mode(umask))


def test_atomic_text_write(umask: int, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    atomic_write_text(out, "{}\n")
    assert _mode(out) == _file_mode(umask)
    atomic_write_text(out, "{}\n")  # a replaced file too
    assert _mode(out) == _file_mode(umask)


def _identity_model() -> object:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    return helper.make_model(graph)


def test_save_onnx(umask: int, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    save_onnx(_identity_model(), out)
    assert _mode(out) == _file_mode(umask)


def test_save_onnx_with_external_data(umask: int, tmp_path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper

    model = _identity_model()
    weight = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")
    model.graph.initializer.append(weight)  # type: ignore[attr-defined]
    model.graph.output.append(  # type: ignore[attr-defined]
        helper.make_tensor_value_info("w", TensorProto.FLOAT, [64, 64])
    )
    out = tmp_path / "big.onnx"
    save_onnx(model, out, external_threshold=1)  # as a >2 GB model would be saved
    data = out.with_name("big.onnx.data")
    assert data.is_file()
    assert (_mode(out), _mode(data)) == (_file_mode(umask), _file_mode(umask))


def test_video_sink(umask: int, tmp_path: Path) -> None:
    from toolkit.live.sinks import VideoSink

    out = tmp_path / "out.mp4"
    sink = VideoSink(out, fps=10.0)
    for i in range(3):
        event = {"ts": f"2026-12-01T00:00:0{i}.000Z", "frame": i, "verdict": "OK"}
        sink.write(event, np.full((32, 48, 3), i * 40, np.uint8))
    sink.close()
    assert out.stat().st_size > 0
    assert _mode(out) == _file_mode(umask)


def test_synthetic_classification_set(umask: int, tmp_path: Path) -> None:
    from toolkit.data.synthetic import make_classification_set

    root = tmp_path / "set"
    make_classification_set(root, n_per_class=1, size=16, classes=("ok",), splits={"": 1.0})
    assert _mode(root) == _dir_mode(umask)  # the renamed mkdtemp folder
    assert _mode(root / "ok") == _dir_mode(umask)
    assert _mode(root / "dataset.json") == _file_mode(umask)


def test_synthetic_detection_set(umask: int, tmp_path: Path) -> None:
    from toolkit.data.synthetic_det import make_detection_set

    root = tmp_path / "det"
    make_detection_set(root, n_train=1, n_val=0, size=64)
    assert _mode(root) == _dir_mode(umask)
    assert _mode(root / "data.yaml") == _file_mode(umask)
