"""Per-layer summary of an ``nn.Module``: forward hooks on every module, batch 1.

MACs (multiply-accumulates) are counted for convolutions (output elements x in_ch/groups x
kernel area; transposed: input elements x out_ch/groups x kernel area) and linear layers
(output elements x in_features); other layers count 0. Bias additions are not counted, which
gives the usual figures (VGG-16: 15.47 G).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from toolkit.errors import BadInputError
from toolkit.summary.types import LayerInfo, ModelSummary, Shape

_OPAQUE = (
    "cannot list the layers of {kind}: inspect the Python model (file.py:Name) or its "
    "ONNX export instead"
)


@dataclass
class _Call:
    """One module call in progress or done."""

    order: int
    name: str
    module: Any
    macs: int = 0  # this call's own MACs plus those of the module calls inside it
    own_macs: int = 0
    output_shape: Shape | tuple[Shape, ...] = ()


def summarize_module(
    module: Any,
    input_shape: tuple[int, ...],
    *,
    model_name: str = "model",
    depth: int | None = None,
) -> ModelSummary:
    """Run one forward pass with hooks and tabulate each layer.

    Args:
        module: The ``nn.Module``. Its device is used for the input: a model built on the
            ``meta`` device gives shapes, parameters and MACs without allocating weights.
        input_shape: The input tensor shape, e.g. ``(1, 3, 224, 224)``.
        model_name: Shown as the summary's ``model``.
        depth: ``None`` lists every leaf layer; ``N`` groups rows at module depth N
            (``1``: the top-level children), each with its subtree's parameters and MACs.

    Raises:
        BadInputError: the forward pass fails for this input (the message names the layer).

    Example:
        >>> s = summarize_module(net, (1, 1, 28, 28))
        >>> s.layers[0].output_shape
        (1, 25, 26, 26)
    """
    import torch

    if depth is not None and depth < 1:
        raise BadInputError(f"--depth must be at least 1, got {depth}")
    if isinstance(module, torch.jit.ScriptModule):
        raise BadInputError(_OPAQUE.format(kind="a TorchScript module"))
    names = {m: n for n, m in module.named_modules()}
    leaves = {m for m in names if _is_row_module(m)}
    tracer = _Tracer(names, leaves)
    with tracer.attached():
        _forward(module, input_shape, tracer.stack)
    done = tracer.done
    ran_weights = any(
        c.module in leaves and next(iter(c.module.parameters()), None) is not None for c in done
    )
    if not ran_weights and next(iter(module.parameters()), None) is not None:
        # TorchScript / torch.export programs use their weights without calling submodules.
        raise BadInputError(_OPAQUE.format(kind="this model (its layers never ran as modules)"))
    total = sum(c.own_macs for c in done)
    rows = _rows(done, leaves, depth)
    params = list(module.parameters())
    return ModelSummary(
        model=model_name,
        input_shape=tuple(int(d) for d in input_shape),
        layers=tuple(rows),
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_macs=int(total),
        framework="torch",
    )


class _Tracer:
    """Forward hooks on every module that record each call: its output shape and MACs."""

    def __init__(self, names: dict[Any, str], leaves: set[Any]) -> None:
        self.names = names
        self.leaves = leaves
        self.stack: list[_Call] = []  # the calls in progress, innermost last
        self.done: list[_Call] = []
        self._count = 0

    def pre_hook(self, mod: Any, args: Any) -> None:
        self.stack.append(_Call(order=self._count, name=self.names[mod], module=mod))
        self._count += 1

    def post_hook(self, mod: Any, args: Any, output: Any) -> None:
        call = self.stack.pop()
        call.output_shape = _output_shape(output)
        if mod in self.leaves:
            macs = _module_macs(mod, args, output)
            call.own_macs = macs
            call.macs += macs
            for outer in self.stack:
                outer.macs += macs
        self.done.append(call)

    @contextlib.contextmanager
    def attached(self) -> Iterator[None]:
        """The hooks on every module; afterwards removed, and each module's mode restored."""
        training = {m: m.training for m in self.names}
        handles = []
        try:
            for m in self.names:
                handles.append(m.register_forward_pre_hook(self.pre_hook))
                handles.append(m.register_forward_hook(self.post_hook))
            yield
        finally:
            for h in handles:
                h.remove()
            for m, flag in training.items():
                m.training = flag


def _forward(module: Any, input_shape: tuple[int, ...], stack: list[_Call]) -> None:
    """One eval-mode forward pass of zeros on the module's device and float type.

    Raises:
        BadInputError: the pass fails; the message names the innermost unfinished module.
    """
    import torch

    first = next(iter(module.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    # torch.export programs refuse eval(): they are inference graphs already.
    with contextlib.suppress(NotImplementedError):
        module.eval()
    x = torch.zeros(input_shape, device=device, dtype=dtype)
    with torch.no_grad():
        try:
            module(x)
        except (RuntimeError, ValueError, TypeError, IndexError) as e:
            where = ""
            if stack and stack[-1].name:  # the innermost module that did not finish
                where = f" at layer '{stack[-1].name}' ({type(stack[-1].module).__name__})"
            shape = "x".join(str(d) for d in input_shape)
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BadInputError(f"forward pass failed for input {shape}{where}: {msg}") from e


def _is_row_module(m: Any) -> bool:
    """A leaf, or a container that holds parameters of its own (e.g. a class token)."""
    has_children = next(iter(m.children()), None) is not None
    return not has_children or next(iter(m.parameters(recurse=False)), None) is not None


def _rows(done: list[_Call], leaves: set[Any], depth: int | None) -> list[LayerInfo]:
    seen: set[int] = set()
    rows: list[LayerInfo] = []
    for call in sorted(done, key=lambda c: c.order):
        level = call.name.count(".") + 1 if call.name else 0
        has_children = next(iter(call.module.children()), None) is not None
        if depth is None or level < depth:
            if call.module not in leaves:
                continue
            # A container listed for its own parameters: its children have their own rows.
            whole = not has_children
        elif level == depth:
            whole = True
        else:
            continue
        rows.append(_row(call, call.name or "model", seen, whole=whole))
    return rows


def _row(call: _Call, name: str, seen: set[int], *, whole: bool) -> LayerInfo:
    """A row for the call: its whole subtree, or (``whole=False``) the module's own part."""
    # Parameters count at a module's first call only, so the column sums to the total.
    params = 0
    for p in call.module.parameters(recurse=whole):
        if id(p) not in seen:
            seen.add(id(p))
            params += p.numel()
    return LayerInfo(
        name=name,
        op=type(call.module).__name__,
        output_shape=call.output_shape,
        params=params,
        macs=call.macs if whole else call.own_macs,
    )


def _output_shape(output: Any) -> Shape | tuple[Shape, ...]:
    import torch

    if isinstance(output, torch.Tensor):
        return tuple(int(d) for d in output.shape)
    items = output.values() if isinstance(output, dict) else output
    if isinstance(items, (list, tuple)) or isinstance(output, dict):
        shapes = [tuple(int(d) for d in t.shape) for t in items if isinstance(t, torch.Tensor)]
        if len(shapes) == 1:
            return shapes[0]
        return tuple(shapes)
    return ()


def _module_macs(mod: Any, args: Any, output: Any) -> int:
    import torch
    from torch import nn

    if not isinstance(output, torch.Tensor):
        return 0
    if isinstance(mod, nn.modules.conv._ConvTransposeNd):
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if x is None:
            return 0
        return x.numel() * (mod.out_channels // mod.groups) * math.prod(mod.kernel_size)
    if isinstance(mod, nn.modules.conv._ConvNd):
        return output.numel() * (mod.in_channels // mod.groups) * math.prod(mod.kernel_size)
    if isinstance(mod, nn.Linear):
        return output.numel() * mod.in_features
    return 0
