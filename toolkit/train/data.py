"""Classification training data: an ImageFolder read into memory as uint8 arrays.

Layouts: ``root/train/<class>/`` with ``root/val/<class>/`` (or ``valid``/``validation``);
``root/train`` alone, or a plain ``root/<class>/`` folder, are split per class (seeded).
The sets this is made for (the demo's, a user's few hundred photos of parts) fit in memory,
which keeps the loader a list of arrays: no worker processes, no file reads per epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toolkit.data.imagefolder import ImageFolder
from toolkit.data.images import read_image
from toolkit.errors import BadInputError
from toolkit.tasks.preprocess import as_bgr

_VAL_NAMES = ("val", "valid", "validation")


@dataclass(frozen=True)
class Split:
    """Images (uint8, the model's channel count) and their class indices."""

    images: list[np.ndarray]
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class TrainData:
    """The train and val splits, the class names (index -> name) and how they were found."""

    train: Split
    val: Split
    labels: tuple[str, ...]  # the model's own order, or sorted folder names
    layout: str  # "train/val" (the folders found) or "split 0.80/0.20"
    root: Path


def class_order(folders: Sequence[str], preferred: Sequence[str] | None) -> tuple[str, ...]:
    """The model's label order when the folders are exactly its labels, else sorted names.

    So training ``zoo:defect-cls`` on folders ``ok, scratch, spot, crack`` keeps the zoo's
    class indices (``ok`` = 0), and any other set follows ImageFolder's sorted-name rule.
    """
    if preferred and set(folders) == set(preferred) and len(set(preferred)) == len(preferred):
        return tuple(preferred)
    return tuple(sorted(folders))


def load_classification_data(
    root: str | Path,
    *,
    channels: int = 3,
    preferred_labels: Sequence[str] | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_side: int | None = None,
) -> TrainData:
    """Read an ImageFolder for training (see the module docstring for the layouts).

    Args:
        root: the data set folder.
        channels: the model's input channels (images are converted once, at load).
        preferred_labels: the model's own label order, used when the folders match it.
        val_fraction: the share of each class held out when there is no val folder.
        seed: seeds the hold-out split.
        max_side: images larger than this are shrunk on load (aspect kept) to bound memory;
            the training resize to the model's input follows anyway.

    Raises:
        BadInputError: missing folder, fewer than two classes, or too few images to hold out
            a validation set.
    """
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "not found"
        raise BadInputError(f"data set {what}: {root} (expected an ImageFolder)")
    train_root = root / "train" if (root / "train").is_dir() else root
    val_root = next((root / n for n in _VAL_NAMES if (root / n).is_dir()), None)
    if train_root == root:
        val_root = None
    folders = ImageFolder(train_root).folders
    labels = class_order(folders, preferred_labels)
    if len(labels) < 2:
        raise BadInputError(f"{train_root} has {len(labels)} class folder(s); training needs 2+")
    train_set = ImageFolder(train_root, labels=labels)
    if val_root is not None:
        val_set = ImageFolder(val_root, labels=labels)
        train = _read(train_set.samples, channels, max_side)
        val = _read(val_set.samples, channels, max_side)
        layout = f"{train_root.name}/{val_root.name}"
    else:
        if not 0 < val_fraction < 1:
            raise BadInputError(f"val fraction must be between 0 and 1, got {val_fraction}")
        train_idx, val_idx = _stratified_split(train_set.targets, val_fraction, seed)
        if not len(val_idx):
            raise BadInputError(
                f"too few images in {train_root} to hold out a validation set "
                "(add a val/ folder or more images)"
            )
        everything = _read(train_set.samples, channels, max_side)
        train = _subset(everything, train_idx)
        val = _subset(everything, val_idx)
        layout = f"split {1 - val_fraction:.2f}/{val_fraction:.2f}"
    return TrainData(train=train, val=val, labels=labels, layout=layout, root=root)


def _read(samples: Sequence[tuple[Path, int]], channels: int, max_side: int | None) -> Split:
    images = []
    for path, _ in samples:
        img = as_bgr(read_image(path), channels)
        if max_side is not None and max(img.shape[:2]) > max_side:
            r = max_side / max(img.shape[:2])
            size = (max(1, round(img.shape[1] * r)), max(1, round(img.shape[0] * r)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        images.append(np.ascontiguousarray(img))
    targets = np.fromiter((t for _, t in samples), dtype=np.int64, count=len(samples))
    return Split(images=images, targets=targets)


def _subset(split: Split, idx: np.ndarray) -> Split:
    return Split(images=[split.images[i] for i in idx], targets=split.targets[idx])


def _stratified_split(
    targets: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``fraction`` of every class (at least one image of a class that has two)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(targets):
        idx = rng.permutation(np.flatnonzero(targets == c))
        k = min(len(idx) - 1, max(1, round(len(idx) * fraction))) if len(idx) > 1 else 0
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
