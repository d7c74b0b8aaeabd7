"""`edgetk inspect`: per-layer shapes, parameters and MACs for PyTorch modules and ONNX files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.errors import BadInputError
from toolkit.model.spec import SpecOverrides
from toolkit.summary import summarize, summarize_module, summarize_onnx

VGG16_MACS = 15_470_264_320  # the usual figure (convs + FC, no bias adds)


def _lecture_cnn():
    """The CNN of the seed lecture's Keras example, in PyTorch.

    input 1x28x28; Conv 25 3x3; MaxPool 2; Conv 50 3x3; MaxPool 2; Flatten; Dense 100; Dense 10.
    """
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 25, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(25, 50, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1250, 100),
        nn.ReLU(),
        nn.Linear(100, 10),
    ).eval()


def _run(*args: str):
    from typer.testing import CliRunner

    from toolkit.cli.app import app

    return CliRunner().invoke(app, list(args))


def test_lecture_cnn_shapes_and_params() -> None:
    s = summarize_module(_lecture_cnn(), (1, 1, 28, 28))
    convs = [r for r in s.layers if r.op == "Conv2d"]
    pools = [r for r in s.layers if r.op == "MaxPool2d"]
    assert [c.output_shape[1:] for c in convs] == [(25, 26, 26), (50, 11, 11)]
    assert [p.output_shape[1:] for p in pools] == [(25, 13, 13), (50, 5, 5)]
    assert s.layer("6").op == "Flatten"
    assert s.layer("6").output_shape == (1, 1250)
    # 9 weights per filter (+1 bias) in the first conv, 225 (= 25 x 3 x 3) in the second.
    assert convs[0].params == 25 * (9 + 1) == 250
    assert convs[1].params == 50 * (225 + 1) == 11_300
    assert s.layer("7").params == 1250 * 100 + 100
    assert s.layer("9").output_shape == (1, 10)
    assert s.total_params == 250 + 11_300 + 125_100 + 1_010
    assert s.trainable_params == s.total_params
    assert sum(r.params for r in s.layers) == s.total_params
    # MACs: output elements x (in_ch/groups x kh x kw); Linear in x out.
    assert convs[0].macs == 25 * 26 * 26 * 9
    assert convs[1].macs == 50 * 11 * 11 * 225
    assert s.layer("7").macs == 1250 * 100
    assert s.total_macs == sum(r.macs for r in s.layers)


def test_trainable_counts_frozen_layers_out() -> None:
    model = _lecture_cnn()
    for p in model[0].parameters():
        p.requires_grad_(False)
    s = summarize_module(model, (1, 1, 28, 28))
    assert s.trainable_params == s.total_params - 250


def test_lecture_cnn_onnx_matches_torch(tmp_path: Path) -> None:
    import torch

    model = _lecture_cnn()
    path = tmp_path / "lecture.onnx"
    torch.onnx.export(
        model, (torch.zeros(1, 1, 28, 28),), str(path), external_data=False, dynamo=True
    )
    t = summarize_module(model, (1, 1, 28, 28))
    o = summarize_onnx(path)
    assert o.input_shape == (1, 1, 28, 28)
    convs = [r for r in o.layers if r.op == "Conv"]
    assert [c.output_shape for c in convs] == [(1, 25, 26, 26), (1, 50, 11, 11)]
    assert [c.params for c in convs] == [250, 11_300]
    assert [r.output_shape for r in o.layers if r.op == "MaxPool"] == [
        (1, 25, 13, 13),
        (1, 50, 5, 5),
    ]
    assert o.total_params == t.total_params
    assert o.total_macs == t.total_macs
    assert o.layers[-1].output_shape == (1, 10)


def test_tiny_onnx_per_node_shapes_and_totals(tiny_onnx: Path, tiny_cnn) -> None:
    import onnx

    s = summarize_onnx(tiny_onnx)
    assert s.framework == "onnx"
    assert s.input_shape == (1, 3, 32, 32)  # the dynamic batch is fixed to 1
    convs = [r for r in s.layers if r.op == "Conv"]
    assert [c.output_shape for c in convs] == [(1, 8, 32, 32), (1, 16, 16, 16)]
    assert s.layers[-1].output_shape == (1, 3)
    assert all(r.output_shape and None not in r.output_shape for r in s.layers)

    model = tiny_cnn()
    t = summarize_module(model, (1, 3, 32, 32))
    # The exporter may fold BatchNorm into the conv before it (same conv size, BN gone);
    # an unfolded BatchNormalization node counts scale and bias but not the running stats.
    ops = {n.op_type for n in onnx.load(str(tiny_onnx)).graph.node}
    bn_params = sum(p.numel() for p in model[1].parameters())
    expected = t.total_params - (0 if "BatchNormalization" in ops else bn_params)
    assert s.total_params == expected
    assert s.total_macs == t.total_macs


def test_onnx_dynamic_image_size(tiny_onnx: Path) -> None:
    import onnx

    proto = onnx.load(str(tiny_onnx))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    # Without --imgsz the size comes from the file's spec (32); with it, from the flag.
    assert summarize_onnx(proto).layers[0].output_shape == (1, 8, 32, 32)
    s = summarize_onnx(proto, imgsz=(64, 48))
    assert s.input_shape == (1, 3, 64, 48)
    assert s.layers[0].output_shape == (1, 8, 64, 48)
    assert s.layers[-1].output_shape == (1, 3)
    # the caller's proto is left as it was
    assert proto.graph.input[0].type.tensor_type.shape.dim[2].dim_param == "height"


def test_onnx_fixed_size_conflict_is_bad_input(tiny_onnx: Path) -> None:
    with pytest.raises(BadInputError, match="fixed size 32"):
        summarize_onnx(tiny_onnx, imgsz=(64, 64))


def test_resnet18_rows_sum_to_totals() -> None:
    # ResNet's blocks call one ReLU twice: its params must not count twice, its MACs per call.
    s = summarize("zoo:resnet18", overrides=SpecOverrides(imgsz=(64, 64)))
    assert s.total_params == 11_689_512
    assert sum(r.params for r in s.layers) == s.total_params
    assert sum(r.macs for r in s.layers) == s.total_macs
    assert s.layer("fc").output_shape == (1, 1000)
    grouped = summarize("zoo:resnet18", overrides=SpecOverrides(imgsz=(64, 64)), depth=1)
    assert [r.name for r in grouped.layers][4:8] == ["layer1", "layer2", "layer3", "layer4"]
    assert grouped.layer("layer4").output_shape == (1, 512, 2, 2)
    assert sum(r.params for r in grouped.layers) == s.total_params
    assert sum(r.macs for r in grouped.layers) == s.total_macs


def test_cli_inspect_vgg16_json() -> None:
    result = _run("inspect", "zoo:vgg16", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["model"] == "zoo:vgg16"
    assert data["input_shape"] == [1, 3, 224, 224]
    assert data["total_params"] == 138_357_544
    assert data["trainable_params"] == 138_357_544
    assert data["total_macs"] == pytest.approx(VGG16_MACS, rel=0.01)
    first = data["layers"][0]
    assert set(first) == {"name", "op", "output_shape", "params", "macs"}
    assert first["output_shape"] == [1, 64, 224, 224]
    assert first["params"] == 64 * 27 + 64
    assert data["layers"][-1]["output_shape"] == [1, 1000]


def test_cli_inspect_onnx_and_table(tiny_onnx: Path) -> None:
    result = _run("inspect", str(tiny_onnx), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["total_params"] == summarize_onnx(tiny_onnx).total_params
    assert data["input_shape"] == [1, 3, 32, 32]

    table = _run("inspect", "zoo:lenet5", "--imgsz", "32")
    assert table.exit_code == 0, table.output
    assert "61,706" in table.stdout
    assert "1x120x1x1" in table.stdout
    assert table.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["zoo:lenet5", "--imgsz", "64"], "forward pass failed for input 1x1x64x64"),
        (["zoo:resnet9"], "unknown zoo model 'resnet9'"),
        (["missing.onnx"], "model file not found"),
        (["zoo:lenet5", "--depth", "0"], "--depth must be at least 1"),
    ],
)
def test_cli_inspect_bad_input(args: list[str], message: str) -> None:
    result = _run("inspect", *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())


def test_cli_inspect_python_file_reference(tmp_path: Path) -> None:
    src = tmp_path / "my_cnn.py"
    src.write_text(
        "from torch import nn\n\n\n"
        "def Net():\n"
        "    return nn.Sequential(\n"
        "        nn.Conv2d(1, 25, 3), nn.MaxPool2d(2), nn.Conv2d(25, 50, 3), nn.MaxPool2d(2),\n"
        "        nn.Flatten(), nn.Linear(1250, 100), nn.ReLU(), nn.Linear(100, 10),\n"
        "    )\n"
    )
    result = _run("inspect", f"{src}:Net", "--imgsz", "28", "--channels", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["input_shape"] == [1, 1, 28, 28]
    assert [row["output_shape"] for row in data["layers"][:4]] == [
        [1, 25, 26, 26],
        [1, 25, 13, 13],
        [1, 50, 11, 11],
        [1, 50, 5, 5],
    ]
    assert data["total_params"] == 137_660


def test_torchscript_module_is_refused_with_the_way_out() -> None:
    import torch

    scripted = torch.jit.script(_lecture_cnn())
    with pytest.raises(BadInputError, match="ONNX export instead"):
        summarize_module(scripted, (1, 1, 28, 28))


def test_container_with_its_own_parameter_keeps_rows_summing_to_totals() -> None:
    import torch
    from torch import nn

    class WithToken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.token = nn.Parameter(torch.zeros(1, 8))
            self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
            self.head = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x) + self.token)

    for depth in (None, 1):
        s = summarize_module(WithToken(), (1, 4), depth=depth)
        assert s.layer("model").params == 8  # the root's own parameter
        assert sum(r.params for r in s.layers) == s.total_params == 8 + 40 + 18
        assert sum(r.macs for r in s.layers) == s.total_macs == 4 * 8 + 8 * 2


def test_int8_qdq_model_counts_the_same_weights(tiny_onnx: Path, tmp_path: Path) -> None:
    import numpy as np
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self._batches = iter(
                [{"images": rng.random((1, 3, 32, 32), dtype=np.float32)} for _ in range(2)]
            )

        def get_next(self) -> dict | None:
            return next(self._batches, None)

    out = tmp_path / "tiny_int8.onnx"
    quantize_static(
        str(tiny_onnx),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        weight_type=QuantType.QInt8,
    )
    fp32, int8 = summarize_onnx(tiny_onnx), summarize_onnx(out)
    assert any(r.op == "DequantizeLinear" for r in int8.layers)
    # int8 weights and int32 biases are the same parameters; scales/zero points are not.
    assert int8.total_params == fp32.total_params
    assert int8.total_macs == fp32.total_macs
