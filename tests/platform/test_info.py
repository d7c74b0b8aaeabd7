"""`edgetk info`: versions, backends, GPU/CUDA/TensorRT, OpenCV video support, Jetson."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import onnxruntime as ort
import pytest
from _probes import needs_tensorrt, without_tensorrt, without_tensorrt_installed
from typer.testing import CliRunner

from toolkit.backends import BACKENDS
from toolkit.cli.app import app
from toolkit.info import collect_info, jetson_info, opencv_build_flags

KEYS = {
    "edgetk",
    "python",
    "platform",
    "cpu",
    "memory_gb",
    "torch",
    "onnx",
    "onnxruntime",
    "opencv",
    "numpy",
    "backends",
    "openvino",
    "gpu",
    "cuda",
    "tensorrt",
    "cuda_python",
    "jetson",
}


def test_collect_info_has_every_key_and_real_values():
    info = collect_info()
    assert set(info) == KEYS
    assert info["onnxruntime"]["version"] == ort.__version__
    assert "CPUExecutionProvider" in info["onnxruntime"]["providers"]
    assert info["opencv"]["version"] == cv2.__version__
    assert set(info["backends"]) == set(BACKENDS)
    assert info["backends"]["ort-cpu"] == {"available": True, "reason": None}
    assert info["cpu"]["cores"] >= 1
    assert set(info["cuda"]) == {"version", "available", "devices"}


def test_cli_info_json():
    result = CliRunner().invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == KEYS
    assert "CPUExecutionProvider" in data["onnxruntime"]["providers"]


def test_cli_info_human():
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # human output goes to stdout
    assert "onnxruntime" in result.stdout and "ort-cpu" in result.stdout
    assert "available" in result.stdout  # the backends table


@without_tensorrt
def test_tensorrt_backend_is_unavailable_without_it():
    tensorrt = collect_info()["backends"]["tensorrt"]
    assert tensorrt["available"] is False and tensorrt["reason"]  # never faked as available


@pytest.mark.tensorrt
@needs_tensorrt
def test_tensorrt_backend_is_available_where_it_runs():
    assert collect_info()["backends"]["tensorrt"] == {"available": True, "reason": None}


@without_tensorrt_installed
def test_cli_info_human_names_the_tensorrt_extra():
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "edgetk[tensorrt]" in result.stdout  # brackets not eaten by rich markup


def test_opencv_build_flags_parse():
    text = """
  Video I/O:
    FFMPEG:                      YES
      avcodec:                   YES (62.28.101)
    GStreamer:                   YES (1.20.3)
    v4l/v4l2:                    NO
"""
    assert opencv_build_flags(text) == {"gstreamer": True, "v4l2": False, "ffmpeg": True}
    assert opencv_build_flags("") == {"gstreamer": False, "v4l2": False, "ffmpeg": False}
    assert set(opencv_build_flags(cv2.getBuildInformation())) == {"gstreamer", "v4l2", "ffmpeg"}


def test_jetson_release_parse(tmp_path: Path):
    f = tmp_path / "nv_tegra_release"
    f.write_text("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n")
    got = jetson_info(f)
    assert got is not None and got["l4t"] == "36.4.3"
    assert got["release"].startswith("R36 (release)")
    assert jetson_info(tmp_path / "absent") is None


def test_jetpack_release_from_l4t(tmp_path: Path):
    from toolkit.info import jetpack_release

    f = tmp_path / "nv_tegra_release"
    f.write_text("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n")
    got = jetson_info(f)
    assert got is not None and got["jetpack"] == "6.2"
    assert jetpack_release("36.4.0") == "6.1" and jetpack_release("35.4.1") == "5.1.2"
    assert jetpack_release("36.9.9") == "6.x" and jetpack_release(None) is None
