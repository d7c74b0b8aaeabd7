"""A --target tensorrt int8 file checked on the CPU computes what TensorRT computes.

ONNX Runtime's CPU kernels fuse Q/DQ into their own int8 arithmetic; TensorRT does not compute
that (int32 sums, float bias, exact dequantization). ``ort-cpu`` runs each Q/DQ pair of a
tensorrt-target file as float instead (``session.disable_quant_qdq``), and every command says
so. Real models quantized by edgetk, real ONNX Runtime sessions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from _quantize_models import color_images, save_with_spec
from typer.testing import CliRunner

from toolkit.backends import Session, open_session
from toolkit.backends.ort import open_ort
from toolkit.backends.ort_options import EMULATED_TRT, EMULATION_NOTE
from toolkit.cli.app import app
from toolkit.errors import BadInputError

SIZE = 8
NO_FUSION = "session.disable_quant_qdq"


def prior_head_classifier(path: Path) -> Path:
    """A 3-class classifier whose last class is a learned prior: a zero weight row plus a bias.

    Why it tells fused from TensorRT on any CPU: the fused QGemm folds the float bias into
    int32 at (input scale x weight scale), and a zero weight row gets weight scale 1, so the
    prior is rounded to a step of ~0.01 while the output's own int8 step is ~0.0006. TensorRT
    (and Q/DQ run as float) adds the bias in float. On a CPU without VNNI the fused kernels
    also saturate their int16 pair sums; that is not needed here (this machine has VNNI).
    """
    import torch
    from torch import nn

    from toolkit.model.spec import InputSpec, OutputSpec, PreprocessSpec

    conv, fc = nn.Conv2d(3, 3, 1), nn.Linear(3, 3)
    with torch.no_grad():
        conv.weight.copy_(4 * torch.eye(3)[:, :, None, None])
        conv.bias.zero_()
        fc.weight.copy_(torch.tensor([[0.02, 0.0, 0.0], [0.0, 0.02, 0.0], [0.0, 0.0, 0.0]]))
        fc.bias.copy_(torch.tensor([0.0, 0.0, 0.07]))
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc).eval()
    return save_with_spec(
        model, torch.randn(2, 3, SIZE, SIZE), path, "input",
        input=InputSpec(shape=(None, 3, SIZE, SIZE)),
        preprocess=PreprocessSpec(resize="stretch", mean=(0.5,) * 3, std=(0.25,) * 3),
        labels=("red", "green", "blue"),
        output=OutputSpec(format="logits"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The float file, its tensorrt-target and cpu-target int8 files, a held-out input set."""
    from toolkit import quantize_model

    root = tmp_path_factory.mktemp("trt_semantics")
    float_onnx = prior_head_classifier(root / "prior.onnx")
    rng = np.random.default_rng(0)
    calib = root / "calib.npz"
    np.savez(calib, images=rng.standard_normal((64, 3, SIZE, SIZE)).astype(np.float32))
    out = {"float": float_onnx, "calib": calib}
    for target in ("tensorrt", "cpu"):
        out[target] = root / f"prior.{target}.onnx"
        quantize_model(float_onnx, out[target], target=target, calib=calib, calib_size=64)
    return out


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((32, 3, SIZE, SIZE)).astype(np.float32)


def _first(session: Session, x: np.ndarray) -> np.ndarray:
    with session as s:
        return next(iter(s.infer(x).values()))


def _fusion_off(session: Any) -> bool:
    """The ORT session's own option (ORT raises for a key that was never set)."""
    try:
        return session._sess.get_session_options().get_session_config_entry(NO_FUSION) == "1"
    except RuntimeError:
        return False


def test_tensorrt_target_is_emulated_and_closer_to_float(
    models: dict[str, Path], inputs: np.ndarray
) -> None:
    with open_session(models["tensorrt"], "ort-cpu") as s:
        assert s.emulated == EMULATED_TRT and _fusion_off(s)  # the real ORT option
        assert s.describe()["emulated"] == EMULATED_TRT and s.precision == "int8"
        emulated = next(iter(s.infer(inputs).values()))
    with open_ort("ort-cpu", models["tensorrt"], emulate=False) as s:
        assert s.emulated is None and not _fusion_off(s)
        fused = next(iter(s.infer(inputs).values()))
    ref = _first(open_session(models["float"], "ort-cpu"), inputs)

    assert np.max(np.abs(fused - emulated)) > 0
    assert np.mean(np.abs(emulated - ref)) < np.mean(np.abs(fused - ref))
    # Emulated = the file's Q/DQ graph computed node by node as written (no optimizer at all).
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    plain = ort.InferenceSession(str(models["tensorrt"]), so, providers=["CPUExecutionProvider"])
    as_written = plain.run(None, {plain.get_inputs()[0].name: inputs})[0]
    np.testing.assert_allclose(emulated, as_written, rtol=0, atol=1e-6)


@pytest.mark.parametrize("which", ["cpu", "float"])
def test_cpu_target_and_float_files_are_not_emulated(models: dict[str, Path], which: str) -> None:
    with open_session(models[which], "ort-cpu") as s:
        assert s.emulated is None and not _fusion_off(s)
        assert s.describe()["emulated"] is None


def test_gpu_providers_never_emulate() -> None:
    from toolkit.backends.ort import OrtCudaSession, OrtTrtSession

    for cls in (OrtCudaSession, OrtTrtSession):
        session = cls.__new__(cls)  # the decision alone: no GPU needed to ask it
        assert session._emulation(None) is None
        with pytest.raises(BadInputError, match="only ort-cpu emulates"):
            session._emulation(True)


def test_ort_outputs_is_the_emulated_session(models: dict[str, Path], inputs: np.ndarray) -> None:
    from toolkit.evaluate.agreement import agreement, ort_outputs

    emulated = _first(open_session(models["tensorrt"], "ort-cpu"), inputs)
    fused = _first(open_ort("ort-cpu", models["tensorrt"], emulate=False), inputs)
    name = onnx.load(str(models["tensorrt"]), load_external_data=False).graph.input[0].name
    for model in (models["tensorrt"], str(models["tensorrt"]), onnx.load(str(models["tensorrt"]))):
        got = ort_outputs(model, inputs, name, batch=5)  # 5: chunks, the last one short
        np.testing.assert_array_equal(got, emulated)
        assert not np.array_equal(got, fused)
    np.testing.assert_array_equal(
        ort_outputs(models["tensorrt"], inputs, name, emulate=False), fused
    )
    # A bare candidate graph (no spec) is fused unless told: the gate passes ``emulate``.
    bare = onnx.load(str(models["tensorrt"]))
    del bare.metadata_props[:]
    np.testing.assert_array_equal(ort_outputs(bare, inputs, name), fused)
    np.testing.assert_array_equal(ort_outputs(bare, inputs, name, emulate=True), emulated)
    ref = ort_outputs(models["float"], inputs, name)
    assert (
        agreement(ref, ort_outputs(models["tensorrt"], inputs, name))["max_abs_diff"]
        < (agreement(ref, fused)["max_abs_diff"])
    )


def test_ort_outputs_keeps_a_static_batch(
    models: dict[str, Path], inputs: np.ndarray, tmp_path: Path
) -> None:
    from toolkit.evaluate.agreement import ort_outputs

    proto = onnx.load(str(models["tensorrt"]))
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 4  # batch fixed to 4
    static = tmp_path / "static.onnx"
    onnx.save(proto, str(static))
    name = proto.graph.input[0].name
    got = ort_outputs(static, inputs[:10], name)  # 4 + 4 + 2 padded to 4
    np.testing.assert_array_equal(got, ort_outputs(models["tensorrt"], inputs[:10], name))


def test_evaluate_reports_the_emulation(models: dict[str, Path], tmp_path: Path) -> None:
    from toolkit.evaluate.agreement import evaluate

    data = color_images(tmp_path / "set", n_per_class=2)
    assert evaluate(models["tensorrt"], data)["emulated"] == EMULATED_TRT
    assert evaluate(models["tensorrt"], data, emulate=False)["emulated"] is None
    assert evaluate(models["float"], data)["emulated"] is None


# -- commands --------------------------------------------------------------------------------


def _cli(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def color_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return color_images(tmp_path_factory.mktemp("val") / "set", n_per_class=2)


def test_val_prints_the_emulation_note(models: dict[str, Path], color_set: Path) -> None:
    note = f"note: {EMULATION_NOTE}"
    assert note == "note: emulated: TensorRT int8 semantics on CPU (Q/DQ run as float)"
    code, out, _ = _cli("val", models["tensorrt"], color_set, "--backend", "ort-cpu")
    assert code == 0, out
    assert out.count(note) == 1 and "top-1" in out
    code, out, err = _cli("val", models["tensorrt"], color_set, "--json")
    assert code == 0, out
    doc = json.loads(out)  # the note is on stderr, stdout holds the JSON alone
    assert doc["emulated"] == EMULATED_TRT and doc["n"] == 6 and note in err
    code, out, err = _cli("val", models["float"], color_set, "--json")
    assert code == 0 and json.loads(out)["emulated"] is None and "emulated" not in err


def test_predict_json_carries_the_emulation(models: dict[str, Path], color_set: Path) -> None:
    code, out, err = _cli("predict", models["tensorrt"], color_set, "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["emulated"] == EMULATED_TRT and doc["count"] == 6
    assert f"note: {EMULATION_NOTE}" in err
    code, out, _ = _cli("predict", models["cpu"], color_set, "--json")
    assert code == 0 and json.loads(out)["emulated"] is None


def test_benchmark_marks_the_emulated_row(models: dict[str, Path]) -> None:
    from toolkit.bench.runner import EMULATED_STATUS

    args = ["benchmark", models["tensorrt"], models["float"], "--backend", "ort-cpu",
            "--iters", 3, "--warmup", 1]  # fmt: skip
    code, out, _ = _cli(*args, "--json")
    assert code == 0, out
    rows = {Path(r["model"]).name: r for r in json.loads(out)["results"]}
    trt, flt = rows[models["tensorrt"].name], rows[models["float"].name]
    assert trt["precision"] == "int8" and trt["emulated"] == EMULATED_TRT
    assert trt["status"] == EMULATED_STATUS == "ok (emulated: latency is not int8 latency)"
    assert trt["latency_ms"]["mean"] > 0 and trt["iters"] == 3  # measured, just not int8's
    assert flt["status"] == "ok" and "emulated" not in flt  # other rows keep the SPEC keys
    code, out, _ = _cli(*args[:2], *args[3:])  # one model: no model column at 80 columns
    assert code == 0, out
    row = next(line for line in out.splitlines()
               if line.split()[1:2] and line.split()[1].startswith("ort-"))  # after "#"
    assert "int8*" in row and "base" not in row  # 80 columns: the status may read "emula…"
    note = " ".join(out.split())  # the footnote, however rich wraps it
    assert f"* ort-cpu: {EMULATION_NOTE}; the latency is not int8 latency" in note


def test_emulated_row_gets_no_speedup_and_is_nobody_s_base() -> None:
    from rich.console import Console

    from toolkit.bench.report import render_table, speedups, to_markdown
    from toolkit.bench.runner import EMULATED_STATUS, BenchReport, BenchResult

    lat = {"mean": 10.0, "p50": 10.0, "p90": 11.0, "p99": 12.0, "min": 9.0, "max": 12.0,
           "std": 0.5}  # fmt: skip
    report = BenchReport(
        machine={"cpu": "Test CPU", "cores": 2, "gpu": None, "versions": {}},
        results=[
            BenchResult(
                "m.onnx",
                "ort-cpu",
                "int8",
                1,
                {**lat, "mean": 40.0},
                25.0,
                10,
                2,
                EMULATED_STATUS,
                emulated=EMULATED_TRT,
            ),
            BenchResult("m.onnx", "ort-cuda", "int8", 1, lat, 100.0, 10, 2, "ok"),
        ],
    )
    # Had the emulated row been the base, ort-cuda would read "4.00x" (an int8 speed-up).
    assert speedups(report.results) == [None, 1.0]
    console = Console(record=True, width=160)
    console.print(render_table(report))
    text = console.export_text()
    assert "4.00x" not in text and "latency is not int8 latency" in text
    row = next(line for line in text.splitlines() if "ort-cpu" in line and "40.00" in line)
    assert "int8*" in row and "emulated" in row and "base" not in row
    md = to_markdown(report)
    assert "| m.onnx | ort-cpu | int8 (emulated) | 1 | 40.00 |" in md and "4.00x" not in md
    assert report.to_dict()["results"][0]["emulated"] == EMULATED_TRT
