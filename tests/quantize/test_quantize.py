"""edgetk quantize: real fp16/int8 conversions of tiny models, the TensorRT check, bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from _cli import quantize_cli as cli
from _quantize_models import color_classifier, color_tensors, write_video


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def color_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return color_classifier(tmp_path_factory.mktemp("q") / "color.onnx")


@pytest.fixture(scope="module")
def color_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return color_tensors(tmp_path_factory.mktemp("q") / "calib.npz")


def test_tensorrt_target_passes_the_check_and_records_the_target(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    from toolkit.model.modelfile import read_spec
    from toolkit.quantize import check_tensorrt

    out = tmp_path / "m.trt.onnx"
    # --min-agreement 0: the random-weight model's near-tied logits flip under int8 on a few
    # held-out frames, and the label-free gate would keep layers float (its own tests:
    # test_quantize_label_free.py); this test is about the all-int8 layout.
    code, stdout, _ = cli(tiny_onnx, "-o", out, "--target", "tensorrt", "--calib", "synthetic",
                          "--calib-size", 16, "--min-agreement", 0, "--json")  # fmt: skip
    assert code == 0, stdout
    report = json.loads(stdout)
    assert report["tensorrt_check"]["passed"] is True
    assert report["tensorrt_check"]["counts"]["per_channel_weights"] == 3  # 2 Conv + Gemm
    assert report["calibration_count"] == 16
    assert any("only 16 calibration samples" in w for w in report["calibration"]["warnings"])
    agreement = report["agreement"]
    # Held-out samples (about a fifth, at least 4), run on the CPU as TensorRT computes them.
    assert agreement["samples"] == 4 and agreement["emulated"] is True
    # The error relative to how much the float outputs vary across samples: an int8 model
    # whose outputs collapse or are mis-scaled scores about 1; this one scores under 0.1
    # (its near-tied top-1 on 4 samples says little, as noted above).
    assert agreement["relative_error"] < 0.3
    check = check_tensorrt(out)
    assert check.passed and check.qdq
    spec = read_spec(out)
    assert spec.precision == "int8"
    q = spec.extra["quantization"]
    assert q["target"] == "tensorrt" and q["method"] == "minmax"
    assert q["calibration_count"] == 16 and q["kept_float"] == []
    assert q["source_model"] == tiny_onnx.name
    assert spec.labels == ("ok", "scratch", "spot")


def test_cpu_target_fails_the_check_with_reasons(tiny_onnx: Path, tmp_path: Path) -> None:
    from toolkit.quantize import check_tensorrt

    out = tmp_path / "m.cpu.onnx"
    code, stdout, _ = cli(tiny_onnx, "-o", out, "--target", "cpu", "--calib", "synthetic",
                          "--calib-size", 16, "--json")  # fmt: skip
    assert code == 0
    assert json.loads(stdout)["tensorrt_check"]["passed"] is False
    check = check_tensorrt(out)
    assert not check.passed
    text = " ".join(check.problems)
    assert "uint8" in text and "int32" in text
    # --check-only: the same verdict on its own, exit 1 for the cpu file, 0 for a float one.
    code, stdout, _ = cli("--check-only", out, "--json")
    assert code == 1 and json.loads(stdout)["tensorrt_check"]["passed"] is False
    code, stdout, _ = cli("--check-only", tiny_onnx, "--json")
    assert code == 0 and json.loads(stdout)["tensorrt_check"]["qdq"] is False


def test_check_catches_wrong_weight_axis_and_nonzero_zero_point(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    import onnx
    from onnx import numpy_helper

    from toolkit.quantize import check_tensorrt

    out = tmp_path / "m.onnx"
    assert cli(tiny_onnx, "-o", out, "--calib", "synthetic", "--calib-size", 8)[0] == 0
    proto = onnx.load(str(out))
    weight_dq = next(n for n in proto.graph.node
                     if n.op_type == "DequantizeLinear" and n.input[0].endswith("weight_quantized"))  # fmt: skip
    for attr in weight_dq.attribute:
        if attr.name == "axis":
            attr.i = 1
    zp = next(t for t in proto.graph.initializer if t.name == "images_zero_point")
    zp.CopyFrom(numpy_helper.from_array(np.array(3, np.int8), zp.name))
    problems = " ".join(check_tensorrt(proto).problems)
    assert "axis 1 instead of the output-channel axis 0" in problems
    assert "zero points are not 0" in problems


def test_fp16_runs_and_reports_parity(tiny_onnx: Path, tmp_path: Path) -> None:
    import onnx

    from toolkit.model.modelfile import read_spec

    out = tmp_path / "m.fp16.onnx"
    code, stdout, stderr = cli(tiny_onnx, "--precision", "fp16", "-o", out, "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["precision"] == "fp16" and report["target"] is None
    assert report["agreement"]["top1_agreement"] == 1.0
    assert 0 < report["agreement"]["max_abs_diff"] < 1e-2
    assert any("GPU format" in n for n in report["notes"])
    assert "GPU format" in stderr
    proto = onnx.load(str(out))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # kept I/O
    assert read_spec(out).precision == "fp16"
    assert report["sizes"]["quantized_bytes"] < report["sizes"]["float_bytes"]


def test_video_and_npz_calibration_sources(color_onnx: Path, tmp_path: Path) -> None:
    from toolkit.model.modelfile import read_spec
    from toolkit.quantize.calibration import load_calibration

    spec = read_spec(color_onnx)
    video = write_video(tmp_path / "line.avi", frames=30)
    cal = load_calibration(video, spec, size=10, holdout=2)
    assert cal.kind == "video" and cal.count == 10 and cal.holdout.shape == (2, 3, 16, 16)
    # Frames are sampled across the whole file: first and last colors both present.
    red = cal.calib[:, 0].mean(axis=(1, 2))
    assert red.max() - red.min() > 1.0
    npz = color_tensors(tmp_path / "c.npz", n=20)
    cal = load_calibration(npz, spec, size=100)
    assert cal.kind == "npz" and cal.count + cal.holdout.shape[0] == 20
    assert cal.warnings and "100" in cal.warnings[0]


def test_npz_of_the_wrong_shape_is_bad_input(color_onnx: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((4, 3, 8, 8), np.float32))
    code, _, stderr = cli(color_onnx, "-o", tmp_path / "o.onnx", "--calib", bad)
    assert code == 2 and "[N, 3, 16, 16]" in stderr
    assert not (tmp_path / "o.onnx").exists()


@pytest.mark.parametrize(
    ("make_source", "message"),
    [
        (lambda d: d / "nowhere", "calibration source not found"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "no images in calibration folder"),
        (lambda d: (d / "bad.mp4").write_bytes(b"not a video" * 100) and d / "bad.mp4",
         "cannot open video"),
    ],
    ids=["missing-folder", "empty-folder", "unreadable-video"],
)  # fmt: skip
def test_bad_calibration_is_exit_2_and_leaves_the_model_alone(
    color_onnx: Path, tmp_path: Path, make_source: object, message: str
) -> None:
    before = digest(color_onnx)
    source = make_source(tmp_path)  # type: ignore[operator]
    out = tmp_path / "new" / "out.onnx"
    code, stdout, stderr = cli(color_onnx, "-o", out, "--calib", source)
    assert code == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1
    assert stdout == ""
    assert digest(color_onnx) == before
    assert not out.parent.exists()  # not even the output folder


def test_bad_usage_errors(color_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.onnx"
    code, _, stderr = cli(tmp_path / "missing.onnx", "-o", out, "--calib", "synthetic")
    assert code == 2 and "model file not found" in stderr
    code, _, stderr = cli(color_onnx, "-o", out)
    assert code == 2 and "--calib" in stderr
    code, _, stderr = cli(color_onnx, "-o", out, "--calib", "synthetic", "--target", "gpu")
    assert code == 2 and "--target" in stderr
    code, _, stderr = cli(color_onnx, "-o", out, "--calib", "synthetic", "--eval", tmp_path / "x")
    assert code == 2 and "--eval data set not found" in stderr
    code, _, stderr = cli(color_onnx, "-o", color_onnx, "--calib", "synthetic", "--force")
    assert code == 2 and "output is the input" in stderr
    assert not out.exists()


def test_existing_output_needs_force(color_onnx: Path, color_npz: Path, tmp_path: Path) -> None:
    from toolkit.model.modelfile import read_spec

    out = tmp_path / "o.onnx"
    out.write_bytes(b"keep me")
    code, _, stderr = cli(color_onnx, "-o", out, "--calib", color_npz, "--calib-size", 20)
    assert code == 2 and "--force" in stderr
    assert out.read_bytes() == b"keep me"
    code, _, _ = cli(color_onnx, "-o", out, "--calib", color_npz, "--calib-size", 20, "--force")
    assert code == 0
    assert read_spec(out).precision == "int8"


def test_quantized_model_is_refused_as_input(
    color_onnx: Path, color_npz: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o.onnx"
    assert cli(color_onnx, "-o", out, "--calib", color_npz, "--calib-size", 20)[0] == 0
    code, _, stderr = cli(out, "-o", tmp_path / "o2.onnx", "--calib", color_npz)
    assert code == 2 and "already int8" in stderr


def test_external_data_pair_is_one_artifact(tiny_onnx: Path, tmp_path: Path) -> None:
    import onnx

    src = tmp_path / "m.onnx"
    onnx.save_model(onnx.load(str(tiny_onnx)), str(src), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="m.onnx.data", size_threshold=0)  # fmt: skip
    data = tmp_path / "m.onnx.data"
    before = (digest(src), digest(data))
    out = tmp_path / "q.onnx"
    code, stdout, _ = cli(src, "-o", out, "--calib", "synthetic", "--calib-size", 8, "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["sizes"]["float_bytes"] == src.stat().st_size + data.stat().st_size
    assert (digest(src), digest(data)) == before
    # Self-contained: no tensor refers to a companion file, and none was written beside it.
    proto = onnx.load(str(out), load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data", "q.onnx"]
    assert any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    assert report["agreement"]["relative_error"] < 0.3  # the weights really were read


def test_synthetic_calibration_is_deterministic_and_split_evenly(color_onnx: Path) -> None:
    from toolkit.model.modelfile import read_spec
    from toolkit.quantize.calibration import load_calibration

    spec = read_spec(color_onnx)
    a = load_calibration("synthetic", spec, size=12, holdout=4, seed=3)
    b = load_calibration("synthetic", spec, size=12, holdout=4, seed=3)
    c = load_calibration("synthetic", spec, size=12, holdout=4, seed=4)
    assert a.calib.shape == (12, 3, 16, 16) and a.holdout.shape == (4, 3, 16, 16)
    assert np.array_equal(a.calib, b.calib) and np.array_equal(a.holdout, b.holdout)
    assert not np.array_equal(a.calib, c.calib)
    # Preprocessed with the model's spec: (x / 255 - 0.5) / 0.25 spans [-2, 2].
    assert a.calib.min() >= -2.0 and a.calib.max() <= 2.0 and a.calib.std() > 0.1
