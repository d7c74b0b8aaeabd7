"""The PyTorch model behind a MODEL argument, and its layers.

Gradient methods need the ``nn.Module``. It is found exactly as ``--backend torch`` finds it
(:class:`toolkit.backends.torch_backend.TorchSession`): a PyTorch reference as it is; for an
edgetk ONNX file, the ``zoo:`` source its spec records or the user's ``--model-source``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolkit.errors import BadInputError, MissingDependencyError
from toolkit.model.spec import ModelSpec, SpecOverrides


@dataclass
class TorchModel:
    """An ``nn.Module`` in eval mode on CPU, with the spec that feeds it."""

    module: Any
    spec: ModelSpec
    source: str


def import_torch() -> Any:
    try:
        import torch
    except ImportError as e:
        raise MissingDependencyError("torch", None, "gradient heatmaps and the CNN views") from e
    return torch


def torch_session(
    model: str,
    *,
    weights: str | None = None,
    model_source: str | None = None,
    overrides: SpecOverrides | None = None,
    threads: int | None = None,
) -> tuple[Any, Any]:
    """``(torch session, its nn.Module)`` for ``model`` (a reference, or an ``.onnx`` file),
    as ``--backend torch`` loads it. Raises what :func:`toolkit.backends.open_session` raises."""
    import_torch()
    from toolkit.backends import open_session

    session = open_session(model, "torch", overrides=overrides, threads=threads,
                           weights=weights, model_source=model_source)  # fmt: skip
    # Going through the session's own loader keeps the rules about which code an ONNX file
    # may name in one place.
    module = session.module
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)  # gradients flow to the input and activations only
    return session, module


def load_torch_model(model: str, **kwargs: Any) -> TorchModel:
    """The PyTorch model of ``model`` with its spec (``kwargs``: as :func:`torch_session`)."""
    session, module = torch_session(model, **kwargs)
    spec, source = session.spec, session.source
    session.close()
    return TorchModel(module, spec, source)


def layer_shapes(module: Any, x: Any) -> list[tuple[str, Any, tuple[int, ...]]]:
    """``(name, submodule, output shape)`` of every named submodule, in the order their
    forward passes finish (a container after its last child)."""
    torch = import_torch()
    seen: list[tuple[str, Any, tuple[int, ...]]] = []
    hooks = []
    for name, sub in module.named_modules():
        if not name:
            continue

        def hook(m: Any, _in: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor):
                seen.append((name, m, tuple(out.shape)))

        hooks.append(sub.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def get_layer(module: Any, name: str) -> Any:
    """The submodule called ``name`` (dotted, as ``named_modules`` lists it)."""
    layers = dict(module.named_modules())
    if name not in layers or not name:
        convs = [n for n, m in layers.items() if type(m).__name__ == "Conv2d"]
        hint = ", ".join(convs[:12]) + (" ..." if len(convs) > 12 else "")
        raise BadInputError(f"no layer '{name}' in the model (conv layers: {hint or 'none'})")
    return layers[name]


def default_cam_layer(module: Any, x: Any, task: str) -> str:
    """The layer a CAM looks at: a classifier's last spatial feature map; a detector's last
    top-level block at stride 8 (the neck's finest map, which feeds every head), else its
    last spatial map."""
    h = int(x.shape[2])
    shapes = [(n, s) for n, _m, s in layer_shapes(module, x) if len(s) == 4 and s[2] > 1]
    if not shapes:
        raise BadInputError("the model has no spatial feature map for a CAM (pass --layer)")
    if task == "detect":
        fine = [n for n, s in shapes if "." not in n and s[2] * 8 == h]
        if fine:
            return fine[-1]
    return shapes[-1][0]


def conv_layers(module: Any) -> list[str]:
    """The names of the ``Conv2d`` layers, in definition order."""
    return [n for n, m in module.named_modules() if type(m).__name__ == "Conv2d"]
