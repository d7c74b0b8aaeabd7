"""Quantize leaves nothing behind in the working folder: not after success, a failure, a
rejected gate or Ctrl-C.

ONNX Runtime's symbolic shape inference gives up on an upsampled branch concatenated with its
source (the batch dim becomes ``floor(1.0*batch)`` on one side, ``batch`` on the other), and
then saves ``sym_shape_infer_temp.onnx`` plus a ``<uuid>.data`` file into the *working
folder*. The model here has exactly that shape (and a weight over 1 kB, so the ``.data`` file
is written too). A user's own ``sym_shape_infer_temp.onnx`` placed there must survive as is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from _classify_models import write_image
from _cli import edgetk_script
from _quantize_models import SIZE, color_images, color_tensors
from typer.testing import CliRunner

from toolkit.cli.app import app

USER_FILE = b"the user's own file, not ONNX Runtime's\n"


def upsample_classifier(path: Path, outlier: float = 0.0, depth: int = 0) -> Path:
    """A 3-class colour classifier with an upsample + concat that ORT's symbolic shape
    inference cannot finish. ``outlier`` > 0 adds a huge constant channel that per-tensor
    int8 crushes the colours with (all-int8 then fails any gate); ``depth`` pass-through
    3x3 convs make calibration take a while (something to interrupt)."""
    import onnx
    import torch
    from torch import nn

    from toolkit.model.modelfile import write_spec
    from toolkit.model.spec import InputSpec, ModelSpec, PreprocessSpec

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.pool = nn.Conv2d(3, 4, 1), nn.MaxPool2d(2)
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.conv2, self.conv3 = nn.Conv2d(8, 16, 3, padding=1), nn.Conv2d(16, 3, 1)
            self.mid = nn.Sequential(*[nn.Conv2d(16, 16, 3, padding=1) for _ in range(depth)])
            with torch.no_grad():
                for conv in (self.conv1, self.conv2, self.conv3, *self.mid):
                    conv.weight.zero_()
                    conv.bias.zero_()
                for conv in self.mid:
                    conv.weight[:6, :6, 1, 1] = torch.eye(6)
                self.conv1.weight[:3, :, 0, 0] = torch.eye(3)
                self.conv1.bias[3] = outlier
                self.conv2.weight[:3, :3, 1, 1] = torch.eye(3)  # 1152 weights: a .data file
                self.conv2.weight[3:6, 4:7, 1, 1] = torch.eye(3)
                self.conv3.weight[:, :3, 0, 0] = torch.eye(3)
                self.conv3.weight[:, 3:6, 0, 0] = torch.eye(3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv1(x)
            y = torch.cat([y, self.up(self.pool(y))], 1)
            return self.conv3(self.mid(self.conv2(y))).mean((2, 3))

    torch.onnx.export(
        Net().eval(), (torch.randn(2, 3, SIZE, SIZE),), str(path), input_names=["images"],
        output_names=["logits"], dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}},
        external_data=False, dynamo=True, verbose=False,
    )  # fmt: skip
    proto = onnx.load(str(path))
    spec = ModelSpec(
        input=InputSpec(name=proto.graph.input[0].name, shape=(None, 3, SIZE, SIZE)),
        preprocess=PreprocessSpec(resize="stretch", mean=(0.5,) * 3, std=(0.25,) * 3),
        labels=("red", "green", "blue"),
    )
    write_spec(proto, spec)
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("qclean")
    return {
        "model": upsample_classifier(root / "up.onnx"),
        "sensitive": upsample_classifier(root / "up_outlier.onnx", outlier=5000.0),
        "deep": upsample_classifier(root / "up_deep.onnx", depth=12),
        "images": color_images(root / "imgs", n_per_class=4),
        "npz": color_tensors(root / "calib.npz", n=80),
        "big_npz": color_tensors(root / "big.npz", n=3000),
    }


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working folder of the run, holding a user's own sym_shape_infer_temp.onnx."""
    wd = tmp_path / "work"
    wd.mkdir()
    (wd / "sym_shape_infer_temp.onnx").write_bytes(USER_FILE)
    (wd / "notes.txt").write_text("mine\n")
    monkeypatch.chdir(wd)
    return wd


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _quantize(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["quantize", *[str(a) for a in args]])
    return result.exit_code, result.stdout, result.stderr


def test_success_leaves_the_working_folder_as_it_was(
    data: dict[str, Path], workdir: Path, tmp_path: Path
) -> None:
    before = _listing(workdir)
    out = tmp_path / "out" / "up.int8.onnx"
    code, stdout, stderr = _quantize(data["model"], "--calib", data["images"], "--calib-size", 8,
                                     "-o", out, "--json")  # fmt: skip
    assert code == 0, stderr
    # ORT's symbolic shape inference did give up on this model (so it wrote its temp files).
    assert json.loads(stdout)["preprocessing"] != "full"
    assert out.is_file()
    assert _listing(workdir) == before


@pytest.mark.parametrize("case", ["too few images", "corrupt model"])
def test_failure_leaves_the_working_folder_as_it_was(
    data: dict[str, Path], workdir: Path, tmp_path: Path, case: str
) -> None:
    model, calib = data["model"], tmp_path / "calib"
    if case == "too few images":
        for i, colour in enumerate(((0, 0, 255), (0, 255, 0), (255, 0, 0))):
            write_image(calib / f"{i}.png", np.full((20, 20, 3), colour, np.uint8))
        (calib / "zz.png").write_bytes((calib / "0.png").read_bytes()[:40])  # truncated
        message = "calibration needs at least 8 readable images"
    else:
        calib = data["images"]
        model = tmp_path / "corrupt.onnx"
        model.write_bytes(b"\x08\x07" + os.urandom(300))
        message = "not a valid ONNX file"
    before = _listing(workdir)
    code, _, stderr = _quantize(model, "--calib", calib, "-o", tmp_path / "q.onnx")
    assert code == 2 and message in stderr, stderr
    assert _listing(workdir) == before
    assert not (tmp_path / "q.onnx").exists()


def test_rejected_gate_leaves_the_working_folder_as_it_was(
    data: dict[str, Path], workdir: Path, tmp_path: Path
) -> None:
    before = _listing(workdir)
    out = tmp_path / "q.onnx"
    code, stdout, stderr = _quantize(data["sensitive"], "--calib", data["npz"], "--calib-size", 60,
                                     "--max-drop", 0, "--max-fallback", 0, "-o", out)  # fmt: skip
    assert code == 1, stderr
    assert "rejected" in stdout and not out.exists()
    assert _listing(workdir) == before


def test_ctrl_c_while_calibrating_leaves_nothing(
    data: dict[str, Path], workdir: Path, tmp_path: Path
) -> None:
    tmpdir = tmp_path / "tmpdir"  # where the run's private folders go: watched, then checked
    tmpdir.mkdir()
    before = _listing(workdir)
    proc = subprocess.Popen(
        [edgetk_script(), "quantize", str(data["deep"]), "--calib", str(data["big_npz"]),
         "--calib-size", "2900", "-o", str(tmp_path / "q.onnx")],
        cwd=workdir, env={**os.environ, "TMPDIR": str(tmpdir)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # The prepared model exists once pre-processing is done: calibration runs next.
        deadline = time.monotonic() + 120
        while not list(tmpdir.glob("edgetk-quant-*/prepared.onnx")):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "calibration never started"
            time.sleep(0.02)
        time.sleep(0.3)  # calibrating 2900 samples takes some seconds more
        assert proc.poll() is None, "quantize ended before the signal"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert _listing(workdir) == before
    assert not (tmp_path / "q.onnx").exists()
    assert not [p.name for p in tmpdir.iterdir() if p.name.startswith(("edgetk-", "pre.quant"))]
