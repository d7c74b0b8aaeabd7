"""`edgetk build` without a GPU: profile planning, precision detection and the cpu-target
refusal on real ONNX files, the engine sidecar and its compatibility check, the one-line errors.

What needs TensorRT and a GPU (building and running engines) is in test_tensorrt_session.py.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
from _trt_models import make_fp16, make_qdq, with_quantization_target
from typer.testing import CliRunner

from toolkit.build.builder import rebuild_options
from toolkit.build.network import format_parser_errors
from toolkit.build.planning import DEFAULT_MAX_BATCH, BuildOptions, plan_build, plan_profile
from toolkit.build.precision import detect_precision, require_buildable
from toolkit.cli.app import app
from toolkit.cli.cmd_build import parse_size
from toolkit.errors import BadInputError
from toolkit.model.modelfile import graph_io, load_onnx, read_spec
from toolkit.model.sidecar import (
    EngineInfo,
    check_compatible,
    read_sidecar,
    sha256_file,
    sidecar_path,
    spec_from_engine_io,
    write_sidecar,
)
from toolkit.model.spec import SpecOverrides

TENSORRT_INSTALLED = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(scope="module")
def models(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny model in each precision: fp32, fp16, int8 for tensorrt, int8 for the cpu."""
    d = tmp_path_factory.mktemp("precisions")
    return {
        "fp32": tiny_onnx,
        "fp16": make_fp16(tiny_onnx, d / "tiny.fp16.onnx"),
        "trt-int8": make_qdq(tiny_onnx, d / "tiny.trt-int8.onnx", "tensorrt"),
        "cpu-int8": make_qdq(tiny_onnx, d / "tiny.cpu-int8.onnx", "cpu"),
    }


def _build(*args: str):
    return CliRunner().invoke(app, ["build", *args])


# -- profile planning ----------------------------------------------------------------------
def test_profile_from_dynamic_onnx_defaults(tiny_onnx: Path):
    ins, _ = graph_io(load_onnx(tiny_onnx))
    profile = plan_profile(ins, read_spec(tiny_onnx))
    (p,) = profile.inputs
    assert p.name == ins[0][0]
    assert p.min == (1, 3, 32, 32) and p.opt == (1, 3, 32, 32)
    assert p.max == (DEFAULT_MAX_BATCH, 3, 32, 32)
    assert profile.dynamic and profile.batch == (1, 1, DEFAULT_MAX_BATCH)


def test_profile_from_dynamic_onnx_with_flags(tiny_onnx: Path):
    ins, _ = graph_io(load_onnx(tiny_onnx))
    profile = plan_profile(ins, None, min_batch=2, opt_batch=4, max_batch=16)
    assert profile.batch == (2, 4, 16)
    assert profile.to_dict()["inputs"][0]["max"] == [16, 3, 32, 32]
    # only --max-batch: min 1, tuned for 1
    assert plan_profile(ins, None, max_batch=32).batch == (1, 1, 32)
    # only --min-batch above the default max: the max follows
    assert plan_profile(ins, None, min_batch=12).batch == (12, 12, 12)


@pytest.fixture(scope="module")
def static_onnx(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = onnx.load(str(tiny_onnx))
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    dim.Clear()
    dim.dim_value = 2
    out = tmp_path_factory.mktemp("static") / "static.onnx"
    onnx.save(model, str(out))
    return out


def test_profile_from_static_onnx(static_onnx: Path):
    ins, _ = graph_io(load_onnx(static_onnx))
    profile = plan_profile(ins, read_spec(static_onnx))
    assert profile.batch == (2, 2, 2) and not profile.dynamic
    assert plan_profile(ins, None, max_batch=2).batch == (2, 2, 2)  # agreeing flags are fine
    with pytest.raises(BadInputError, match=r"static batch of 2.*--max-batch 8"):
        plan_profile(ins, None, max_batch=8)


@pytest.mark.parametrize(
    ("min_b", "opt_b", "max_b", "error"),
    [
        (4, 2, None, r"--min-batch 4 > --opt-batch 2"),
        (None, 8, 4, r"--opt-batch 8 > --max-batch 4"),
        (4, None, 2, r"--min-batch 4 > --max-batch 2"),
        (0, None, None, r"--min-batch must be >= 1"),
        (None, None, -1, r"--max-batch must be >= 1"),
        (None, 16, None, None),  # opt above the default max: the max follows
    ],
)
def test_profile_batch_ordering(tiny_onnx: Path, min_b, opt_b, max_b, error):
    ins, _ = graph_io(load_onnx(tiny_onnx))
    if error is None:
        lo, opt, hi = plan_profile(
            ins, None, min_batch=min_b, opt_batch=opt_b, max_batch=max_b
        ).batch
        assert lo <= opt <= hi
        return
    with pytest.raises(BadInputError, match=error):
        plan_profile(ins, None, min_batch=min_b, opt_batch=opt_b, max_batch=max_b)


def test_profile_dynamic_image_size_needs_imgsz(tiny_onnx: Path):
    ins = [("images", (None, 3, None, None))]
    with pytest.raises(BadInputError, match=r"dynamic axes \[2, 3\].*--imgsz"):
        plan_profile(ins, None)
    spec = read_spec(tiny_onnx)
    spec = spec.with_changes(input=replace(spec.input, name="images", shape=(None, 3, 48, 64)))
    assert plan_profile(ins, spec).inputs[0].max == (DEFAULT_MAX_BATCH, 3, 48, 64)


def test_cli_wrong_batch_order_is_exit_2_one_line(tiny_onnx: Path, tmp_path: Path):
    out = tmp_path / "x.engine"
    result = _build(str(tiny_onnx), "-o", str(out), "--min-batch", "4", "--opt-batch", "2")
    assert result.exit_code == 2, result.output
    assert "--min-batch <= --opt-batch <= --max-batch" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


# -- precision -----------------------------------------------------------------------------
def test_precision_fp32(models):
    report = detect_precision(models["fp32"])
    assert report.precision == "fp32" and report.target is None and report.buildable


def test_precision_fp16_converted(models):
    report = detect_precision(models["fp16"])
    assert report.precision == "fp16" and report.buildable
    assert report.details["fp16_weights"] > 0 and report.details["fp32_weights"] == 0


def test_precision_qdq_symmetric_int8_is_tensorrt_target(models):
    report = detect_precision(models["trt-int8"])
    assert (report.precision, report.target) == ("int8", "tensorrt")
    assert report.buildable, report.problems
    zps = report.details["zero_points"]
    assert zps["int8"] == report.details["qdq_nodes"] and zps["uint8"] == 0


def test_precision_qdq_uint8_is_cpu_target_and_refused(models):
    report = detect_precision(models["cpu-int8"])
    assert (report.precision, report.target) == ("int8", "cpu")
    assert not report.buildable
    assert any("uint8" in p for p in report.problems)
    with pytest.raises(BadInputError, match=r"made for the cpu target.*uint8.*--target tensorrt"):
        require_buildable(report, models["cpu-int8"], None)


def test_declared_cpu_target_is_refused_even_when_symmetric(models, tmp_path: Path):
    """The quantizer's declaration (spec.extra["quantization"]["target"]) is read."""
    declared = with_quantization_target(models["trt-int8"], tmp_path / "m.onnx", "cpu")
    report = detect_precision(declared)
    assert report.declared_target == "cpu" and report.target == "cpu" and not report.buildable
    with pytest.raises(BadInputError, match=r"cpu target.*edgetk quantize tiny.onnx"):
        require_buildable(report, declared, read_spec(declared))
    ok = with_quantization_target(models["trt-int8"], tmp_path / "t.onnx", "tensorrt")
    assert detect_precision(ok).buildable


def test_cli_refuses_cpu_target_qdq_model(models, tmp_path: Path):
    out = tmp_path / "cpu.engine"
    result = _build(str(models["cpu-int8"]), "-o", str(out))
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "cpu target" in err and "uint8" in err and "--target tensorrt" in err
    assert not out.exists() and not sidecar_path(out).exists()


def test_plan_build_records_the_precision_really_built(models):
    plan = plan_build(models["fp16"], BuildOptions(max_batch=4))
    assert plan.spec.precision == "fp16" and plan.profile.batch == (1, 1, 4)
    with pytest.raises(BadInputError, match="DLA runs fp16 or int8 only"):
        plan_build(models["fp32"], BuildOptions(dla_core=0))
    with pytest.raises(BadInputError, match=r"--opt-level must be 0\.\.5"):
        plan_build(models["fp32"], BuildOptions(opt_level=7))


# -- tensorrt missing ----------------------------------------------------------------------
@pytest.mark.skipif(TENSORRT_INSTALLED, reason="tensorrt is installed here")
def test_cli_without_tensorrt_names_the_extra(tiny_onnx: Path, tmp_path: Path):
    out = tmp_path / "x.engine"
    result = _build(str(tiny_onnx), "-o", str(out))
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1
    assert "tensorrt is not installed" in err and 'pip install "edgetk[tensorrt]"' in err
    assert not out.exists()


def test_cli_existing_output_needs_force(tiny_onnx: Path, tmp_path: Path):
    out = tmp_path / "x.engine"
    out.write_bytes(b"old plan")
    result = _build(str(tiny_onnx), "-o", str(out))
    assert result.exit_code == 2 and "--force" in result.stderr
    assert out.read_bytes() == b"old plan"


def test_cli_rejects_a_non_onnx_model(tmp_path: Path):
    src = tmp_path / "m.pt"
    src.write_bytes(b"x")
    result = _build(str(src), "-o", str(tmp_path / "m.engine"))
    assert result.exit_code == 2 and "takes an .onnx file" in result.stderr


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        ("4", 4 << 30),
        ("4G", 4 << 30),
        ("512M", 512 << 20),
        ("1.5g", 3 << 29),
        ("256MiB", 256 << 20),
    ],
)
def test_workspace_sizes(text: str, nbytes: int):
    assert parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["", "abc", "-1G", "0", "4T"])
def test_workspace_bad_sizes(text: str):
    with pytest.raises(BadInputError, match="--workspace"):
        parse_size(text)


# -- sidecar -------------------------------------------------------------------------------
def _info(tiny_onnx: Path, **changes) -> EngineInfo:
    base = {
        "spec": read_spec(tiny_onnx),
        "tensorrt": "10.3.0.30",
        "gpu": "Orin",
        "compute_capability": "8.7",
        "precision": "int8",
        "onnx": {"path": str(tiny_onnx), "sha256": sha256_file(tiny_onnx)},
        "build": {
            "min_batch": 1,
            "opt_batch": 2,
            "max_batch": 8,
            "opt_level": 3,
            "workspace": None,
            "timing_cache": None,
            "dla_core": None,
        },
    }
    base.update(changes)
    return EngineInfo(**base)


def test_sidecar_round_trip(tiny_onnx: Path, tmp_path: Path):
    engine = tmp_path / "m.engine"
    info = _info(tiny_onnx)
    path = write_sidecar(engine, info)
    assert path == tmp_path / "m.engine.json"
    data = json.loads(path.read_text())
    assert {"spec", "tensorrt", "gpu", "compute_capability", "onnx", "build", "precision"} <= set(
        data
    )
    assert data["onnx"]["sha256"] == sha256_file(tiny_onnx)
    back = read_sidecar(engine)
    assert back is not None
    assert back.spec == info.spec and back.to_dict() == json.loads(path.read_text())
    assert (back.tensorrt, back.gpu, back.compute_capability) == ("10.3.0.30", "Orin", "8.7")
    assert read_sidecar(tmp_path / "none.engine") is None  # an engine built by trtexec


def test_sidecar_corrupt_is_bad_input(tmp_path: Path):
    engine = tmp_path / "m.engine"
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(BadInputError, match="cannot read the engine sidecar"):
        read_sidecar(engine)
    sidecar_path(engine).write_text('{"tensorrt": "10.3"}')
    with pytest.raises(BadInputError, match="invalid engine sidecar"):
        read_sidecar(engine)


def test_compatible_engine_passes(tiny_onnx: Path):
    info = _info(tiny_onnx)
    # Same release, another build number: TensorRT loads it.
    check_compatible("m.engine", info, tensorrt="10.3.0.26", gpu="Orin", compute_capability="8.7")


def test_tensorrt_version_mismatch_names_both_and_rebuild(tiny_onnx: Path):
    info = _info(tiny_onnx)
    with pytest.raises(BadInputError) as e:
        check_compatible(
            "m.engine", info, tensorrt="11.2.0.5", gpu="NVIDIA RTX 4090", compute_capability="8.9"
        )
    msg = str(e.value)
    assert "TensorRT 10.3.0.30 on Orin (compute 8.7)" in msg
    assert "TensorRT 11.2.0.5 on NVIDIA RTX 4090 (compute 8.9)" in msg
    assert "edgetk build --rebuild m.engine" in msg and str(tiny_onnx) in msg


def test_gpu_mismatch_is_refused(tiny_onnx: Path):
    info = _info(tiny_onnx, onnx=None)
    with pytest.raises(
        BadInputError, match=r"built for .*compute 8.7.*compute 8.9.*edgetk build model.onnx"
    ):
        check_compatible(
            "m.engine", info, tensorrt="10.3.0.30", gpu="RTX", compute_capability="8.9"
        )


def test_rebuild_reads_onnx_and_options_from_the_sidecar(tiny_onnx: Path, tmp_path: Path):
    engine = tmp_path / "m.engine"
    write_sidecar(engine, _info(tiny_onnx))
    onnx_path, options = rebuild_options(engine)
    assert onnx_path == tiny_onnx
    assert (options.min_batch, options.opt_batch, options.max_batch) == (1, 2, 8)
    moved = tmp_path / "copied" / "m.engine"  # engine and ONNX copied to another machine
    moved.parent.mkdir()
    (moved.parent / tiny_onnx.name).write_bytes(tiny_onnx.read_bytes())
    write_sidecar(moved, _info(tiny_onnx, onnx={"path": "/elsewhere/" + tiny_onnx.name}))
    assert rebuild_options(moved)[0] == moved.parent / tiny_onnx.name
    write_sidecar(engine, _info(tiny_onnx, onnx={"path": str(tmp_path / "gone.onnx")}))
    with pytest.raises(BadInputError, match="is not there"):
        rebuild_options(engine)
    result = _build("--rebuild", str(tmp_path / "nosidecar.engine"))
    assert result.exit_code == 2 and "has no sidecar" in result.stderr


def test_spec_of_an_engine_without_sidecar_from_its_io():
    spec = spec_from_engine_io([("images", (None, 3, 224, 224))], [("output0", (None, 10))])
    assert (spec.task, spec.output.format, spec.input.shape) == (
        "classify",
        "logits",
        (None, 3, 224, 224),
    )
    det = spec_from_engine_io(
        [("images", (1, 3, 640, 640))],
        [("output0", (1, 84, 8400))],
        SpecOverrides(labels=("a", "b")),
        precision="fp16",
    )
    assert (det.task, det.output.format, det.labels, det.precision) == (
        "detect",
        "yolov8",
        ("a", "b"),
        "fp16",
    )


class _ParserError:
    """The accessors of TensorRT's ParserError (TensorRT itself cannot run here)."""

    def __init__(self, desc: str, node: int, name: str = "", op: str = "") -> None:
        self._d, self._n, self._name, self._op = desc, node, name, op

    def desc(self) -> str:
        return self._d

    def node(self) -> int:
        return self._n

    def node_name(self) -> str:
        return self._name

    def node_operator(self) -> str:
        return self._op


def test_parser_errors_name_the_node_and_operator():
    errors = [
        _ParserError(
            "Assertion failed: zero point must be 0", 3, "/conv/QuantizeLinear", "QuantizeLinear"
        ),
        _ParserError("unsupported", 7),
        _ParserError("x", -1),
        _ParserError("y", -1),
    ]
    text = format_parser_errors(errors)
    assert text.startswith("node '/conv/QuantizeLinear' (QuantizeLinear): Assertion failed")
    assert "node #7: unsupported" in text and text.endswith("and 1 more")
