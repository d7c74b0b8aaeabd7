"""The result of ``edgetk inspect``: one row per layer (or ONNX node) and the totals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# One tensor's shape (None: unknown), or several for a layer with several outputs.
Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class LayerInfo:
    """One row: a module call (PyTorch) or a node (ONNX).

    ``params`` counts a module's parameters at its first call only (a module called twice,
    such as a shared ReLU, shows 0 the second time), so the column sums to the total.
    """

    name: str
    op: str
    output_shape: Shape | tuple[Shape, ...]
    params: int
    macs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op": self.op,
            "output_shape": _shape_json(self.output_shape),
            "params": self.params,
            "macs": self.macs,
        }


@dataclass(frozen=True)
class ModelSummary:
    """Per-layer rows and totals; ``to_dict`` is the ``--json`` document."""

    model: str
    input_shape: Shape
    layers: tuple[LayerInfo, ...]
    total_params: int
    trainable_params: int
    total_macs: int
    framework: str  # "torch" or "onnx"

    def layer(self, name: str) -> LayerInfo:
        """The first row named ``name`` (KeyError when there is none)."""
        for row in self.layers:
            if row.name == name:
                return row
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "framework": self.framework,
            "input_shape": list(self.input_shape),
            "layers": [row.to_dict() for row in self.layers],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "total_macs": self.total_macs,
        }


def is_multi(shape: Shape | tuple[Shape, ...]) -> bool:
    """True when ``shape`` holds several output shapes."""
    return bool(shape) and all(isinstance(s, tuple) for s in shape)


def _shape_json(shape: Shape | tuple[Shape, ...]) -> list[Any]:
    if is_multi(shape):
        return [list(s) for s in shape]  # type: ignore[arg-type]
    return list(shape)


def format_shape(shape: Shape | tuple[Shape, ...]) -> str:
    """``(1, 25, 26, 26)`` -> ``1x25x26x26``; unknown dims as ``?``; several joined by ``, ``."""
    if is_multi(shape):
        return ", ".join(format_shape(s) for s in shape)  # type: ignore[arg-type]
    if not shape:
        return "scalar"
    return "x".join("?" if d is None else str(d) for d in shape)  # type: ignore[misc]


def format_count(n: int) -> str:
    """A large count in short form: ``15.47G``, ``138.36M``, ``61.7K``."""
    for unit, size in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)
