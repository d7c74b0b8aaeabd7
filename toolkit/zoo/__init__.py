"""Built-in PyTorch architectures: a registry of name -> factory + default spec.

Importing this package (or calling :func:`get_registry`) does not import torch; the
architectures are imported when a model is built.

Example:
    >>> from toolkit.zoo import create_model
    >>> model, spec = create_model("resnet18", num_classes=4)
    >>> spec.input.shape
    (None, 3, 224, 224)
"""

from __future__ import annotations

from toolkit.zoo.create import create_model, load_shipped_weights
from toolkit.zoo.registry import Registry, ZooEntry

__all__ = [
    "Registry",
    "ZooEntry",
    "create_model",
    "get_registry",
    "list_models",
    "load_shipped_weights",
]


def get_registry() -> Registry:
    """A freshly built registry of every zoo entry (no global state)."""
    from toolkit.zoo.catalog import build_registry

    return build_registry()


def list_models() -> list[str]:
    """The zoo's model names, in catalog order."""
    return get_registry().names()
