"""The lecture's other two views: the first layer's raw kernels, and one image's feature maps
after each conv / pool stage, labelled with their shapes ("25x26x26 -> 25x13x13")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.explain.grid import stack, stretch_contrast, tile
from toolkit.explain.source import conv_layers, get_layer, import_torch

STAGES = ("Conv2d", "MaxPool2d", "AvgPool2d")


@dataclass(frozen=True)
class Stage:
    """One conv or pool layer's output for one image."""

    name: str
    kind: str
    in_shape: tuple[int, ...]  # C, H, W
    out_shape: tuple[int, ...]
    maps: np.ndarray  # float32 [C, H, W]

    @property
    def label(self) -> str:
        def fmt(s: tuple[int, ...]) -> str:
            return "x".join(str(v) for v in s)

        return f"{self.name} ({self.kind}): {fmt(self.in_shape)} -> {fmt(self.out_shape)}"

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.name, "kind": self.kind, "in": list(self.in_shape),
                "out": list(self.out_shape)}  # fmt: skip


def kernels_sheet(module: Any, layer: str | None = None, cell: int = 48) -> np.ndarray:
    """The raw weights of the first conv layer (or ``layer``) as a grid of small images: RGB
    kernels in color, others as the mean over input channels; each scaled to its own range."""
    names = conv_layers(module)
    if not names:
        raise BadInputError("the model has no Conv2d layer to show kernels of")
    name = layer or names[0]
    w = get_layer(module, name).weight.detach().float().numpy()  # [K, C, kh, kw]
    tiles = []
    for k in w:
        img = k[::-1].transpose(1, 2, 0) if k.shape[0] == 3 else k.mean(0)  # RGB -> BGR
        tiles.append(stretch_contrast(img, pct=0.0))
    k, c, kh, kw = w.shape
    return tile(tiles, cols=min(16, k), cell=cell,
                title=f"{name}: {k} kernels of {c}x{kh}x{kw}")  # fmt: skip


def feature_stages(module: Any, x: np.ndarray, limit: int = 12) -> list[Stage]:
    """The outputs of the first ``limit`` conv / pool layers for one input ``[1, C, H, W]``."""
    torch = import_torch()
    stages: list[Stage] = []
    hooks = []
    for name, sub in module.named_modules():
        kind = type(sub).__name__
        if kind not in STAGES:
            continue

        def hook(_m: Any, inp: Any, out: Any, name: str = name, kind: str = kind) -> None:
            if len(stages) < limit and isinstance(out, torch.Tensor) and out.ndim == 4:
                stages.append(Stage(name, kind, tuple(inp[0].shape[1:]), tuple(out.shape[1:]),
                                    out[0].detach().float().numpy()))  # fmt: skip

        hooks.append(sub.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
    finally:
        for h in hooks:
            h.remove()
    if not stages:
        raise BadInputError("the model has no conv or pool layer to show feature maps of")
    return stages


def maps_sheet(stages: list[Stage], per_stage: int = 8, cell: int = 64) -> np.ndarray:
    """One row per stage: its first ``per_stage`` channels (the most active first), titled
    with the stage's shapes."""
    rows = []
    for st in stages:
        energy = np.abs(st.maps).reshape(len(st.maps), -1).mean(1)
        order = np.argsort(-energy, kind="stable")[:per_stage]
        tiles = [stretch_contrast(st.maps[i], pct=0.5) for i in order]
        rows.append(tile(tiles, [f"ch {i}" for i in order], cols=per_stage, cell=cell,
                         title=st.label))  # fmt: skip
    return stack(rows)
