"""A model file never runs code: the torch backend imports only what the user or the zoo names.

An edgetk ONNX file records the PyTorch reference it was exported from (``spec.source``). That
text comes from the file, so it may name anything (``payload.py:Net``, ``os:getcwd``,
``this:s``): the torch backend runs it only for ``zoo:`` references, and otherwise asks for
``--model-source``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from _backend_models import make_sourced_onnx
from typer.testing import CliRunner

from toolkit.backends import open_session
from toolkit.cli.app import app
from toolkit.errors import BackendUnavailableError
from toolkit.model.modelfile import read_spec

# Its module body leaves a marker beside it: the proof that it was imported.
PAYLOAD = """
from pathlib import Path

Path(__file__).with_name("PWNED").write_text("PWNED")

from torch import nn


class Net(nn.Module):
    def forward(self, x):
        return x
"""

# A harmless model of tiny_onnx's shape (3x32x32 -> 3 classes), for --model-source.
FREE_NET = """
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(4, num_classes),
        )

    def forward(self, x):
        return self.body(x)
"""

SOURCES = ["payload.py:Net", "os:getcwd", "this:s"]
BENCH = ("--backend", "torch", "--json", "--iters", "1", "--warmup", "0")


def _cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def _with_source(tiny_onnx: Path, folder: Path, source: str, **extra: object) -> Path:
    """A copy of tiny_onnx in ``folder`` whose spec records ``source`` (and ``extra``)."""
    proto = onnx.load(str(tiny_onnx))
    (prop,) = [p for p in proto.metadata_props if p.key == "edgetk"]
    data = json.loads(prop.value)
    data["source"] = source
    data["extra"] = {**data.get("extra", {}), **extra}
    prop.value = json.dumps(data)
    out = folder / "m.onnx"
    onnx.save(proto, str(out))
    return out


@pytest.fixture()
def planted(tmp_path: Path, tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch):
    """A folder with payload.py and an image; the caller picks the recorded source."""
    (tmp_path / "payload.py").write_text(PAYLOAD, encoding="utf-8")
    (tmp_path / "free_net.py").write_text(FREE_NET, encoding="utf-8")
    cv2.imwrite(str(tmp_path / "img.png"), np.full((40, 40, 3), 128, np.uint8))
    monkeypatch.chdir(tmp_path)
    # `import this` prints only the first time in a process: make a second import visible.
    monkeypatch.delitem(sys.modules, "this", raising=False)

    def make(source: str) -> Path:
        return _with_source(tiny_onnx, tmp_path, source)

    return tmp_path, make


@pytest.mark.parametrize("source", SOURCES)
def test_benchmark_does_not_run_a_recorded_source(planted, source: str) -> None:
    folder, make = planted
    model = make(source)
    result = _cli("benchmark", model, *BENCH)
    assert result.exit_code == 0, result.stderr
    assert not (folder / "PWNED").exists()
    assert "Zen of Python" not in result.stdout + result.stderr
    (row,) = json.loads(result.stdout)["results"]  # stdout holds the JSON document alone
    assert row["status"].startswith("unavailable:")
    assert "--model-source" in row["status"]


@pytest.mark.parametrize("source", SOURCES)
def test_predict_does_not_run_a_recorded_source(planted, source: str) -> None:
    folder, make = planted
    model = make(source)
    result = _cli("predict", model, folder / "img.png", "--backend", "torch")
    assert result.exit_code == 2
    assert not (folder / "PWNED").exists()
    assert "Zen of Python" not in result.stdout + result.stderr
    assert "pass --model-source to run the PyTorch model it came from" in result.stderr


def test_model_source_runs_the_named_file_only(planted) -> None:
    folder, make = planted
    model = make("payload.py:Net")
    result = _cli("benchmark", model, *BENCH, "--model-source", "free_net.py:Net")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)["results"]
    assert row["status"] == "ok" and row["iters"] == 1
    result = _cli(
        "predict", model, folder / "img.png", "--backend", "torch", "--json",
        "--model-source", "free_net.py:Net",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["backend"] == "torch"
    result = _cli(
        "run", model, "--source", folder / "img.png", "--backend", "torch", "--headless",
        "--json", "--model-source", "free_net.py:Net",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["frames"] == 1
    assert not (folder / "PWNED").exists()  # the recorded payload.py stayed unread


def test_model_source_needs_the_torch_backend(planted) -> None:
    folder, make = planted
    model = make("payload.py:Net")
    args = ("predict", model, folder / "img.png", "--model-source", "free_net.py:Net")
    result = _cli(*args, "--backend", "ort-cpu")
    assert result.exit_code == 2
    assert "--model-source is used by --backend torch only" in result.stderr
    result = _cli("benchmark", model, "--backend", "ort-cpu", "--model-source", "free_net.py:Net")
    assert result.exit_code == 2
    assert "--model-source is used by --backend torch only" in result.stderr


def test_recorded_weights_are_not_read_for_a_named_source(tmp_path: Path) -> None:
    """With --model-source, the checkpoint is --weights; the file's recorded path is unread."""
    sourced = make_sourced_onnx(tmp_path / "s")
    with open_session(sourced.onnx, "torch", model_source=sourced.ref) as t:
        assert t.describe()["weights"] is None
    with open_session(
        sourced.onnx, "torch", model_source=sourced.ref, weights=str(sourced.weights)
    ) as t:
        assert t.describe()["weights"] == str(sourced.weights)


def test_a_recorded_zoo_source_runs_with_its_recorded_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """zoo: is the toolkit's own code: it runs, with the weights recorded beside the file."""
    import torch

    from toolkit.export import export_onnx
    from toolkit.zoo import create_model

    a = tmp_path / "A"
    a.mkdir()
    monkeypatch.chdir(a)
    module, _ = create_model("zoo:lenet5", pretrained=False)
    torch.manual_seed(3)
    with torch.no_grad():  # far from a fresh init: ignoring them would not match ORT
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    torch.save(module.state_dict(), a / "w.pt")
    export_onnx("zoo:lenet5", "out/m.onnx", weights="w.pt", simplify=False)
    assert read_spec(a / "out" / "m.onnx").extra["weights"] == "../w.pt"

    b = tmp_path / "B"
    shutil.move(a, b)
    monkeypatch.chdir(tmp_path)
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    model = b / "out" / "m.onnx"
    with open_session(model, "torch") as t, open_session(model, "ort-cpu") as o:
        assert t.describe()["weights"] == str(b / "w.pt")
        yt, yo = next(iter(t.infer(x).values())), next(iter(o.infer(x).values()))
    np.testing.assert_allclose(yt, yo, rtol=1e-4, atol=1e-5)


def test_api_error_names_the_flag(tiny_onnx: Path, tmp_path: Path) -> None:
    model = _with_source(tiny_onnx, tmp_path, "os:getcwd")
    with pytest.raises(BackendUnavailableError, match="pass --model-source"):
        open_session(model, "torch")


def test_run_and_val_take_model_source(planted) -> None:
    folder, make = planted
    model = make("payload.py:Net")
    live = ("run", model, "--source", "synthetic", "--max-frames", "2", "--headless", "--json",
            "--backend", "torch")  # fmt: skip
    result = _cli(*live)
    assert result.exit_code == 2
    assert "pass --model-source" in result.stderr
    result = _cli(*live, "--model-source", "free_net.py:Net")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["frames"] == 2
    data = folder / "data"
    for label in ("ok", "scratch", "spot"):
        (data / label).mkdir(parents=True)
        cv2.imwrite(str(data / label / "a.png"), np.full((40, 40, 3), 100, np.uint8))
    result = _cli("val", model, data, "--backend", "torch")
    assert result.exit_code == 2
    assert "pass --model-source" in result.stderr
    result = _cli("val", model, data, "--backend", "torch", "--model-source", "free_net.py:Net")
    assert result.exit_code == 0, result.stderr
    assert not (folder / "PWNED").exists()
