"""A registry of built-in architectures: name -> factory + default spec.

Built explicitly by :func:`toolkit.zoo.catalog.build_registry` (no import side effects, as in
timm's ``_registry.py``), and registering a name twice is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from toolkit.errors import BadInputError
from toolkit.model.spec import ModelSpec


@dataclass(frozen=True)
class ZooEntry:
    """One architecture.

    ``factory(num_classes=..., in_chans=...)`` returns an ``nn.Module``; ``spec`` holds its
    input size and preprocessing (they travel with the model, never guessed later).
    ``weights`` names a shipped state dict inside the package (``toolkit/assets``), if any.
    """

    name: str
    factory: Callable[..., Any]
    spec: ModelSpec
    description: str = ""
    num_classes: int = 1000
    weights: str | None = None
    published_params: int | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


class Registry:
    """Name -> :class:`ZooEntry`; duplicate names raise ``ValueError``."""

    def __init__(self) -> None:
        self._entries: dict[str, ZooEntry] = {}

    def register(self, entry: ZooEntry) -> ZooEntry:
        if entry.name in self._entries:
            raise ValueError(f"zoo name registered twice: {entry.name}")
        self._entries[entry.name] = entry
        return entry

    def get(self, name: str) -> ZooEntry:
        key = name.removeprefix("zoo:")
        try:
            return self._entries[key]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            raise BadInputError(f"unknown zoo model '{key}' (known: {known})") from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.removeprefix("zoo:") in self._entries

    def __iter__(self) -> Iterator[ZooEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)
