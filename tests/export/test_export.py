"""PyTorch -> ONNX export: dynamic/static batch, checks, parity, spec, atomic writes, CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from _export_models import write_models
from typer.testing import CliRunner

from toolkit.cli.app import app
from toolkit.errors import BadInputError, OutputExistsError, ParityError
from toolkit.export import ExportError, ExportReport, export_onnx
from toolkit.loading import load_model
from toolkit.model.modelfile import graph_io, read_spec
from toolkit.model.spec import SpecOverrides


@dataclass(frozen=True)
class Exported:
    models_py: Path
    ref: str
    path: Path
    report: ExportReport


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """TinyNet exported once with a dynamic batch, labels and custom normalization."""
    root = tmp_path_factory.mktemp("export")
    models_py = write_models(root / "src")
    ref = f"{models_py}:build"
    overrides = SpecOverrides(labels=("ok", "scratch", "spot"), mean=(0.5,) * 3, std=(0.25,) * 3)
    path = root / "tiny.onnx"
    report = export_onnx(ref, path, imgsz=32, overrides=overrides)
    return Exported(models_py, ref, path, report)


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _batch_dim(path: Path) -> onnx.TensorShapeProto.Dimension:
    return onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0]


def test_dynamic_batch_is_symbolic_and_runs(exported: Exported) -> None:
    assert _batch_dim(exported.path).dim_param == "batch"
    session = _session(exported.path)
    module = load_model(exported.ref).module
    for n in (1, 3):
        x = np.random.default_rng(n).standard_normal((n, 3, 32, 32)).astype(np.float32)
        (got,) = session.run(None, {"images": x})
        with torch.no_grad():
            want = module(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_report_parity_numbers(exported: Exported) -> None:
    r = exported.report
    p = r.parity
    assert p.passed and p.status == "passed"
    assert p.max_abs_diff is not None and p.max_abs_diff < 1e-4
    assert p.rel_error is not None and p.rel_error < 1e-4
    assert p.top1_agreement == 1.0
    assert p.batch_sizes == (1, 2, 3, 1) and p.rows == 7
    assert r.dynamic_batch and r.input_shape == [None, 3, 32, 32]
    assert r.output_shapes == {"logits": [None, 3]}
    assert r.exporter == "dynamo" and r.opset >= 18
    assert r.file_size_bytes == exported.path.stat().st_size
    assert r.nodes_after <= r.nodes_before
    doc = json.loads(json.dumps(r.to_dict()))
    assert doc["parity"]["max_abs_diff"] == p.max_abs_diff


def test_spec_is_embedded(exported: Exported) -> None:
    spec = read_spec(exported.path)
    assert spec.source == "src/tiny_models.py:build"  # relative to the ONNX file's folder
    assert spec.random_weights is None  # a file.py model may load weights of its own
    assert spec.labels == ("ok", "scratch", "spot")
    assert spec.input.name == "images" and spec.input.shape == (None, 3, 32, 32)
    assert spec.preprocess.mean == (0.5, 0.5, 0.5) and spec.preprocess.std == (0.25, 0.25, 0.25)
    assert spec.output.name == "logits" and spec.output.format == "logits"
    assert spec.task == "classify" and spec.precision == "fp32"
    ins, outs = graph_io(onnx.load(str(exported.path)))
    assert [n for n, _ in ins] == ["images"] and [n for n, _ in outs] == ["logits"]


def test_static_batch_without_simplify(exported: Exported, tmp_path: Path) -> None:
    out = tmp_path / "static.onnx"
    report = export_onnx(exported.ref, out, imgsz=32, batch=2, simplify=False)
    assert _batch_dim(out).dim_value == 2
    assert report.input_shape == [2, 3, 32, 32] and not report.dynamic_batch
    assert not report.simplified and report.nodes_before == report.nodes_after
    assert report.parity.batch_sizes == (2, 2, 2, 2) and report.parity.passed
    assert read_spec(out).input.shape == (2, 3, 32, 32)


def test_existing_output_is_untouched_without_force(exported: Exported, tmp_path: Path) -> None:
    out = tmp_path / "taken.onnx"
    out.write_bytes(b"keep me")
    # Checked first: even a reference that does not exist reports the existing output.
    with pytest.raises(OutputExistsError, match="--force"):
        export_onnx(str(tmp_path / "nowhere.py:Net"), out)
    assert out.read_bytes() == b"keep me"
    report = export_onnx(f"{exported.models_py}:TinyNet", out, imgsz=16, force=True)
    assert report.parity.passed
    assert read_spec(out).input.shape == (None, 3, 16, 16)
    assert [p.name for p in tmp_path.iterdir()] == ["taken.onnx"]  # no temp files left


def test_specialized_batch_is_an_error(exported: Exported, tmp_path: Path) -> None:
    out = tmp_path / "pair.onnx"
    with pytest.raises(ExportError, match=r"fixes its batch size to 2.*--batch 2"):
        export_onnx(f"{exported.models_py}:PairOnly", out, imgsz=8)
    assert not out.exists()


def test_batch_one_model_suggests_static_batch(exported: Exported, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="--batch 1"):
        export_onnx(f"{exported.models_py}:BatchOne", tmp_path / "one.onnx", imgsz=8)
    report = export_onnx(f"{exported.models_py}:BatchOne", tmp_path / "one.onnx", imgsz=8, batch=1)
    assert report.parity.passed


def test_ignored_opset_is_an_error(exported: Exported, tmp_path: Path) -> None:
    # torch 2.13 exports opset >= 18 and only logs when down-conversion fails.
    out = tmp_path / "o17.onnx"
    with pytest.raises(ExportError, match=r"--opset 17 was requested but the exporter produced"):
        export_onnx(exported.ref, out, imgsz=32, opset=17)
    assert not out.exists()


def test_parity_failure(exported: Exported, tmp_path: Path) -> None:
    ref = f"{exported.models_py}:Counter"
    out = tmp_path / "counter.onnx"
    with pytest.raises(ParityError, match="not written"):
        export_onnx(ref, out, imgsz=8)
    assert not out.exists()
    report = export_onnx(ref, out, imgsz=8, check=False)
    assert out.exists()
    assert report.parity.status == "failed" and not report.parity.passed


def test_wrong_input_size_fails_before_export(exported: Exported, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"fails on a 2x3x20x20 input.*--imgsz"):
        export_onnx(f"{exported.models_py}:Flat", tmp_path / "flat.onnx", imgsz=20)


def test_labels_must_match_classes(exported: Exported, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="2 labels given but the model outputs 3 classes"):
        export_onnx(
            exported.ref, tmp_path / "x.onnx", imgsz=32, overrides=SpecOverrides(labels=("a", "b"))
        )


def _cli(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["export", *[str(a) for a in args]])
    return result.exit_code, result.stdout, result.stderr


def test_cli_json(exported: Exported, tmp_path: Path) -> None:
    out = tmp_path / "cli.onnx"
    code, stdout, stderr = _cli(exported.ref, "-o", out, "--imgsz", "24", "--json")
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert doc["output"] == str(out) and doc["input_shape"] == [None, 3, 24, 24]
    assert doc["parity"]["passed"] and doc["parity"]["max_abs_diff"] < 1e-4
    recorded, _, name = doc["spec"]["source"].rpartition(":")
    assert (out.parent / recorded).resolve() == exported.models_py.resolve() and name == "build"
    assert read_spec(out).input.shape == (None, 3, 24, 24)


def test_cli_human_table(exported: Exported, tmp_path: Path) -> None:
    out = tmp_path / "human.onnx"
    code, stdout, stderr = _cli(exported.ref, "-o", out, "--imgsz", "24", "--batch", "1")
    assert code == 0, stderr
    assert stderr == ""
    text = " ".join(stdout.split())
    assert "images [1, 3, 24, 24]" in text and "max abs diff" in text and "top-1" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{dir}/missing.py:Net"], "model file not found"),
        (["{py}:Nope"], "no 'Nope' in"),
        (["zoo:no-such-net"], "unknown zoo model"),
        (["{py}:TinyNet", "--weights", "{dir}/five.pt"], "do not fit"),
        (["{py}:TinyNet", "--weights", "{dir}/none.pt"], "weights file not found"),
        (["{py}:TinyNet", "--imgsz", "big"], "--imgsz expects"),
        (["{py}:TinyNet", "--batch", "0"], "--batch must be at least 1"),
        (["{py}:TinyNet", "--batch", "2", "--dynamic"], "exclude each other"),
        (["{py}:TinyNet", "--opset", "99"], "--opset must be between"),
        (["{py}:TinyNet", "-o", "{dir}/taken.onnx"], "output exists"),
    ],
)
def test_cli_bad_input_exits_2(
    exported: Exported, tmp_path: Path, args: list, message: str
) -> None:
    torch.save(
        load_model(f"{exported.models_py}:TinyNet", num_classes=5).module.state_dict(),
        tmp_path / "five.pt",
    )
    (tmp_path / "taken.onnx").write_bytes(b"keep")
    filled = [a.format(py=exported.models_py, dir=tmp_path) for a in args]
    if "-o" not in filled:
        filled += ["-o", str(tmp_path / "out.onnx")]
    code, stdout, stderr = _cli(*filled)
    assert code == 2, stderr
    assert stdout == ""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    assert message in lines[0]
    assert not (tmp_path / "out.onnx").exists()
    assert (tmp_path / "taken.onnx").read_bytes() == b"keep"


def test_cli_requires_output(exported: Exported) -> None:
    code, _, stderr = _cli(exported.ref)
    assert code == 2 and "--output" in stderr


@pytest.mark.slow
def test_zoo_resnet18_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "r18.onnx"
    code, stdout, stderr = _cli("zoo:resnet18", "-o", out, "--json")
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert doc["parity"]["passed"] and doc["parity"]["max_abs_diff"] < 1e-4
    assert doc["parity"]["top1_agreement"] == 1.0
    assert doc["output_shapes"] == {"logits": [None, 1000]}
    spec = read_spec(out)
    assert spec.source == "zoo:resnet18" and spec.input.shape == (None, 3, 224, 224)
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    assert _session(out).run(None, {"images": x})[0].shape == (2, 1000)
