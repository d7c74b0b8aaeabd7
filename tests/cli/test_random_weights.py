"""Random weights are announced: the spec records them, export/predict/benchmark print a note."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from toolkit.cli.app import app
from toolkit.loading import has_random_weights, load_model
from toolkit.model.modelfile import read_spec
from toolkit.model.spec import ModelSpec

NOTE = "note: zoo:lenet5 has no shipped weights; using random initialization (pass --weights)"


def _cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def lenet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """zoo:lenet5 (no shipped weights) exported through the CLI, with the CLI's result."""
    out = tmp_path_factory.mktemp("rw") / "lenet.onnx"
    return out, _cli("export", "zoo:lenet5", "-o", out, "--no-simplify")


def test_export_records_random_weights_and_says_so(lenet) -> None:
    out, result = lenet
    assert result.exit_code == 0, result.stderr
    assert read_spec(out).random_weights is True
    assert NOTE in result.stdout
    assert result.stdout.count("note:") == 1


def test_export_json_keeps_the_note_off_stdout(lenet, tmp_path: Path) -> None:
    out = tmp_path / "j.onnx"
    result = _cli("export", "zoo:lenet5", "-o", out, "--no-simplify", "--no-check", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["spec"]["random_weights"] is True
    assert NOTE in result.stderr


def test_predict_on_an_onnx_file_with_random_weights(lenet, tmp_path: Path) -> None:
    out, _ = lenet
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.full((40, 40, 3), 128, np.uint8))
    result = _cli("predict", out, img, "--backend", "ort-cpu")
    assert result.exit_code == 0, result.stderr
    assert "note: lenet.onnx was exported with random weights (zoo:lenet5 has no shipped" in (
        result.stdout
    )


def test_predict_and_benchmark_of_a_zoo_reference(tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.full((40, 40, 3), 128, np.uint8))
    result = _cli("predict", "zoo:lenet5", img, "--backend", "torch")
    assert result.exit_code == 0, result.stderr
    assert NOTE in result.stdout
    bench = ("benchmark", "zoo:lenet5", "--backend", "torch", "--iters", 2, "--warmup", 0)
    result = _cli(*bench)
    assert result.exit_code == 0, result.stderr
    assert NOTE in result.stdout


def test_given_weights_are_not_random(tmp_path: Path) -> None:
    import torch

    weights = tmp_path / "w.pt"
    torch.save(load_model("zoo:lenet5").module.state_dict(), weights)
    assert load_model("zoo:lenet5", weights=str(weights)).spec.random_weights is False
    assert has_random_weights("zoo:lenet5", str(weights)) is False
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.full((40, 40, 3), 128, np.uint8))
    result = _cli("predict", "zoo:lenet5", img, "--backend", "torch", "--weights", weights)
    assert result.exit_code == 0, result.stderr
    assert "note:" not in result.stdout + result.stderr


def test_what_is_known_about_each_reference_form(tmp_path: Path) -> None:
    assert load_model("zoo:lenet5").spec.random_weights is True
    assert load_model("zoo:defect-det").spec.random_weights is False  # shipped in the package
    assert has_random_weights("zoo:lenet5") is True
    assert has_random_weights("zoo:defect-det") is False
    py = tmp_path / "net.py"
    py.write_text("from torch import nn\n\ndef build():\n    return nn.Conv2d(3, 2, 1)\n")
    assert load_model(f"{py}:build").spec.random_weights is None  # its own code may load them
    assert has_random_weights(f"{py}:build") is None
    assert has_random_weights("zoo:no-such-model") is None  # the command reports that


def test_old_files_without_the_field_read_as_unknown() -> None:
    d = ModelSpec(source="zoo:lenet5").to_dict()
    del d["random_weights"]
    assert ModelSpec.from_dict(d).random_weights is None
    assert ModelSpec.from_dict({**d, "random_weights": True}).random_weights is True
    with pytest.raises(Exception, match="random_weights"):
        ModelSpec.from_dict({**d, "random_weights": "yes"})


@pytest.mark.slow
def test_shipped_weights_export_prints_no_note(tmp_path: Path) -> None:
    out = tmp_path / "det.onnx"
    result = _cli("export", "zoo:defect-det", "-o", out, "--no-simplify", "--no-check")
    assert result.exit_code == 0, result.stderr
    assert read_spec(out).random_weights is False
    assert "note:" not in result.stdout + result.stderr
