"""A spec's files (``source``, weights) are relative to the model file: the pair can move."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from toolkit.backends import open_session
from toolkit.errors import BackendUnavailableError
from toolkit.export import export_onnx
from toolkit.model.modelfile import read_spec
from toolkit.model.paths import portable_ref, resolve_ref
from toolkit.model.spec import ModelSpec, portable_spec

NET_PY = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.head(self.conv(x).mean((2, 3)))
"""


def test_export_records_relative_paths_and_torch_runs_after_a_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    a = tmp_path / "A"
    a.mkdir()
    (a / "net.py").write_text(NET_PY, encoding="utf-8")
    monkeypatch.chdir(a)
    # Weights far from a fresh init: a torch side that ignored them would not match ORT.
    torch.manual_seed(7)
    state = {
        "conv.weight": torch.randn(4, 3, 3, 3),
        "conv.bias": torch.randn(4),
        "head.weight": torch.randn(3, 4),
        "head.bias": torch.randn(3),
    }
    torch.save(state, a / "w.pt")
    export_onnx("net.py:Net", "out/m.onnx", weights="w.pt", imgsz=16, simplify=False)
    spec = read_spec(a / "out" / "m.onnx")
    assert spec.source == "../net.py:Net"  # relative to out/, not to where export ran
    assert spec.extra["weights"] == "../w.pt"

    b = tmp_path / "elsewhere" / "B"
    b.parent.mkdir()
    shutil.move(a, b)
    unrelated = tmp_path / "unrelated"
    unrelated.mkdir()
    monkeypatch.chdir(unrelated)
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    model = b / "out" / "m.onnx"
    # The recorded net.py is not run on the file's word (only zoo: sources are): the user
    # names it, and its weights, with --model-source / --weights.
    with pytest.raises(BackendUnavailableError, match="--model-source"):
        open_session(model, "torch")
    named = {"model_source": f"{b / 'net.py'}:Net", "weights": str(b / "w.pt")}
    with open_session(model, "torch", **named) as t, open_session(model, "ort-cpu") as o:
        assert Path(t.describe()["source"].rpartition(":")[0]) == b / "net.py"
        yt, yo = next(iter(t.infer(x).values())), next(iter(o.infer(x).values()))
    np.testing.assert_allclose(yt, yo, rtol=1e-4, atol=1e-5)


def test_named_references_are_kept(tmp_path: Path) -> None:
    for ref in ("zoo:resnet18", "torchvision:resnet18", "timm:x", "pkg.mod:Net", "package:a.pt"):
        assert portable_ref(ref, tmp_path) == ref
        assert resolve_ref(ref, tmp_path) == ref
    assert portable_ref("package:defect-det.pt", tmp_path, any_file=True) == "package:defect-det.pt"


def test_file_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert portable_ref("src/net.py:Net", tmp_path / "out") == "../src/net.py:Net"
    assert portable_ref(str(tmp_path / "m.ts"), tmp_path) == "m.ts"
    assert portable_ref("w.safetensors", tmp_path / "o", any_file=True) == "../w.safetensors"
    assert not portable_ref(str(tmp_path / "x.py") + ":N", tmp_path / "a" / "b").startswith("/")
    # Read back: relative to the model's folder, wherever the working folder is.
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "net.py").write_text("")
    monkeypatch.chdir(tmp_path / "m")
    assert resolve_ref("net.py:Net", tmp_path / "m" / "out") == "net.py:Net"  # old file: cwd
    assert resolve_ref("../net.py:Net", tmp_path / "m" / "out") == f"{tmp_path / 'm'}/net.py:Net"
    absolute = f"{tmp_path}/gone.py:Net"
    assert resolve_ref(absolute, tmp_path / "m") == absolute


def test_portable_spec_rebases_between_folders(tmp_path: Path) -> None:
    """Quantize writes beside another folder: paths move from the input's folder to the output's."""
    spec = ModelSpec(source="../net.py:Net", extra={"weights": "../w.pt"})
    (tmp_path / "net.py").write_text("")
    (tmp_path / "w.pt").write_text("")
    moved = portable_spec(spec, tmp_path / "q" / "int8", read_from=tmp_path / "fp32")
    assert moved.source == "../../net.py:Net"
    assert moved.extra["weights"] == "../../w.pt"
    assert portable_spec(ModelSpec(), tmp_path) == ModelSpec()  # nothing recorded: unchanged
