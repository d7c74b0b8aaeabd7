"""A PyTorch model in a .py file, its weights and its edgetk ONNX export (spec.source names it).

The torch backend must rebuild the model from the spec's ``source`` and load
``spec.extra["weights"]``: the saved weights differ from a fresh instance's, so a backend that
ignored them would not match ONNX Runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODEL_PY = """
import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.features(x))
"""


@dataclass(frozen=True)
class SourcedModel:
    onnx: Path
    py: Path
    weights: Path
    ref: str


def make_sourced_onnx(folder: Path) -> SourcedModel:
    """Write ``tinynet.py``, ``tinynet.pt`` (non-default weights) and ``tinynet.onnx``."""
    import importlib.util

    import onnx
    import torch

    from toolkit.model.modelfile import write_spec
    from toolkit.model.spec import InputSpec, ModelSpec, OutputSpec, PreprocessSpec

    folder.mkdir(parents=True, exist_ok=True)
    py = folder / "tinynet.py"
    py.write_text(MODEL_PY)
    spec_ = importlib.util.spec_from_file_location("tinynet_for_test", py)
    assert spec_ is not None and spec_.loader is not None
    mod = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(mod)

    torch.manual_seed(123)
    model = mod.TinyNet().eval()
    with torch.no_grad():
        for p in model.parameters():  # far from the default init
            p.copy_(torch.randn_like(p) * 0.5)
    weights = folder / "tinynet.pt"
    torch.save(model.state_dict(), weights)

    out = folder / "tinynet.onnx"
    torch.onnx.export(
        model,
        (torch.randn(1, 3, 24, 24),),
        str(out),
        input_names=["images"],
        output_names=["logits"],
        dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=64)}},
        external_data=False,
        dynamo=True,
        verbose=False,
    )
    proto = onnx.load(str(out))
    ref = f"{py}:TinyNet"
    spec = ModelSpec(
        task="classify",
        input=InputSpec(name=proto.graph.input[0].name, shape=(None, 3, 24, 24)),
        preprocess=PreprocessSpec(resize="stretch"),
        labels=("a", "b", "c", "d"),
        output=OutputSpec(format="logits", name=proto.graph.output[0].name),
        source=ref,
        extra={"weights": str(weights)},
    )
    write_spec(proto, spec)
    onnx.save(proto, str(out))
    return SourcedModel(onnx=out, py=py, weights=weights, ref=ref)
