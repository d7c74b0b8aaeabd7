"""A classification data set laid out as ``root/<class>/<images>`` (torchvision's ImageFolder).

The class index of a folder is its position in the model's labels when the model has labels
(so a data set with only some classes, or folders in another order, still scores right), else
its position among the sorted folder names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from toolkit.data.images import list_media
from toolkit.errors import BadInputError


class ImageFolder:
    """Samples ``(path, class index)`` of an ImageFolder data set, sorted by class then path.

    Attributes:
        root: the data set folder.
        classes: index -> class name (the model's labels, or the sorted folder names).
        folders: the class folders found, sorted.
        samples: ``(path, class index)`` pairs.

    Example:
        >>> ds = ImageFolder("data/val", labels=("ok", "scratch", "spot"))
        >>> ds.samples[0]
        (PosixPath('data/val/ok/0001.png'), 0)

    Raises:
        BadInputError: the folder is missing, has no class folders or no images, or a folder
            is not among ``labels``.
    """

    def __init__(self, root: str | Path, labels: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            what = "is not a folder" if self.root.exists() else "not found"
            raise BadInputError(
                f"data set {what}: {self.root} (expected an ImageFolder: root/<class>/<images>)"
            )
        self.folders = tuple(
            sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        )
        if not self.folders:
            raise BadInputError(
                f"no class folders in {self.root} (expected an ImageFolder: root/<class>/<images>)"
            )
        if labels:
            self.classes = tuple(str(s) for s in labels)
            unknown = [f for f in self.folders if f not in self.classes]
            if unknown:
                raise BadInputError(
                    f"class folder(s) {', '.join(unknown)} in {self.root} are not among the "
                    f"model's labels ({', '.join(self.classes)})"
                )
        else:
            self.classes = self.folders
        index = {name: i for i, name in enumerate(self.classes)}
        self.samples: list[tuple[Path, int]] = [
            (path, index[folder])
            for folder in self.folders
            for path in list_media(self.root / folder, videos=False)
        ]
        if not self.samples:
            raise BadInputError(f"no images in the class folders of {self.root}")

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[tuple[Path, int]]:
        return iter(self.samples)

    def __repr__(self) -> str:
        return f"ImageFolder({str(self.root)!r}, {len(self)} images, {len(self.folders)} classes)"

    @property
    def targets(self) -> np.ndarray:
        """The class index of every sample, as int64."""
        return np.fromiter((t for _, t in self.samples), dtype=np.int64, count=len(self.samples))

    def counts(self) -> dict[str, int]:
        """Images per class name (classes with images only)."""
        c = Counter(t for _, t in self.samples)
        return {self.classes[i]: c[i] for i in sorted(c)}
