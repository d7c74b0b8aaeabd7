"""YOLO-format detection sets: ``data.yaml`` + ``images/`` + ``labels/*.txt``.

The Ultralytics layout: ``data.yaml`` names the classes (``names``: a list, or a mapping
``{0: name}``) and the image folders of each split (``train``, ``val``, ``test``; relative to
``path`` or to the YAML file's folder). An image ``.../images/<rest>/a.png`` has its labels in
``.../labels/<rest>/a.txt``, one ``class cx cy w h`` line per object, normalized to [0, 1]. A
missing label file means no objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.errors import BadInputError
from toolkit.fileio import atomic_write_text

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class YoloSet:
    """A parsed ``data.yaml``: class names and the image files of each split."""

    yaml_path: Path
    root: Path
    names: tuple[str, ...]
    splits: dict[str, tuple[Path, ...]]

    def images(self, split: str) -> tuple[Path, ...]:
        """The image files of ``split`` (``train``, ``val`` or ``test``)."""
        if split not in self.splits:
            have = ", ".join(sorted(self.splits)) or "none"
            raise BadInputError(f"{self.yaml_path} has no '{split}' split (has: {have})")
        return self.splits[split]

    def samples(self, split: str) -> Iterator[tuple[Path, np.ndarray, np.ndarray]]:
        """``(image path, class ids int64 [n], boxes xyxy normalized float32 [n, 4])``."""
        for img in self.images(split):
            cls, xyxy = read_labels(label_path(img))
            yield img, cls, xyxy


YAML_NAMES = ("data.yaml", "data.yml")


def is_yolo_set(path: str | Path) -> bool:
    """The one rule for "this is a YOLO-format detection set" (val, train, the quantize gate).

    True for a ``.yaml``/``.yml`` path (it need not exist yet: loading it then says what is
    missing), or a folder holding ``data.yaml``/``data.yml`` or ``images/`` beside ``labels/``.
    """
    p = Path(path)
    if p.suffix.lower() in (".yaml", ".yml"):
        return True
    if not p.is_dir():
        return False
    return any((p / n).is_file() for n in YAML_NAMES) or (
        (p / "images").is_dir() and (p / "labels").is_dir()
    )


def data_yaml(path: str | Path) -> Path:
    """The data.yaml of a YOLO set given as the file or its folder."""
    p = Path(path)
    if not p.is_dir():
        return p
    for name in YAML_NAMES:
        if (p / name).is_file():
            return p / name
    raise BadInputError(f"{p}: a YOLO-format set needs a data.yaml (names and splits)")


def label_path(image: Path) -> Path:
    """``.../images/x/a.png`` -> ``.../labels/x/a.txt`` (the last ``images`` component)."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def read_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A label file as (class ids int64 [n], xyxy normalized float32 [n, 4]); none if absent."""
    if not path.is_file():
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    rows = []
    for ln, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 5:
            raise BadInputError(f"{path}:{ln}: expected 'class cx cy w h', got {line.strip()!r}")
        try:
            rows.append([float(v) for v in fields[:5]])
        except ValueError:
            raise BadInputError(f"{path}:{ln}: not numbers: {line.strip()!r}") from None
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    a = np.asarray(rows, np.float64)
    cx, cy, w, h = a[:, 1], a[:, 2], a[:, 3], a[:, 4]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return a[:, 0].astype(np.int64), xyxy.astype(np.float32)


def _names(raw: object, where: Path) -> tuple[str, ...]:
    if isinstance(raw, dict):
        try:
            keys = sorted(int(k) for k in raw)
        except (TypeError, ValueError):
            raise BadInputError(f"{where}: 'names' keys must be class numbers") from None
        if keys != list(range(len(keys))):
            raise BadInputError(f"{where}: 'names' must number the classes 0..{len(keys) - 1}")
        by_int = {int(k): v for k, v in raw.items()}
        return tuple(str(by_int[k]) for k in keys)
    if isinstance(raw, (list, tuple)):
        return tuple(str(n) for n in raw)
    raise BadInputError(f"{where}: 'names' must be a list or a mapping of class names")


def _split_images(base: Path, entry: object, where: Path) -> tuple[Path, ...]:
    """A split entry: a folder, a list of folders, or a .txt file listing images."""
    entries = entry if isinstance(entry, list) else [entry]
    out: list[Path] = []
    for e in entries:
        p = Path(str(e))
        p = p if p.is_absolute() else base / p
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file() and p.suffix == ".txt":
            for line in p.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    q = Path(line.strip())
                    out.append(q if q.is_absolute() else base / q)
        else:
            raise BadInputError(f"{where}: split folder not found: {p}")
    return tuple(out)


def load_yolo_set(path: str | Path) -> YoloSet:
    """Read ``data.yaml`` (or a folder holding one).

    Raises:
        BadInputError: missing file, unreadable YAML, no ``names``, or missing split folders.
    """
    import yaml

    yaml_path = data_yaml(path)
    if not yaml_path.is_file():
        raise BadInputError(f"file not found: {yaml_path} (expected a YOLO data.yaml)")
    try:
        data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise BadInputError(f"{yaml_path}: invalid YAML: {e}") from None
    if not isinstance(data, dict) or "names" not in data:
        raise BadInputError(f"{yaml_path}: expected a mapping with 'names' (YOLO data.yaml)")
    names = _names(data["names"], yaml_path)
    base = yaml_path.parent
    if data.get("path"):
        bp = Path(str(data["path"]))
        base = bp if bp.is_absolute() else (yaml_path.parent / bp)
    splits = {
        s: _split_images(base, data[s], yaml_path)
        for s in ("train", "val", "test")
        if data.get(s) is not None
    }
    return YoloSet(yaml_path=yaml_path, root=base, names=names, splits=splits)


def write_data_yaml(
    path: str | Path, *, names: list[str], train: str, val: str, test: str | None = None
) -> None:
    """Write an Ultralytics-style ``data.yaml`` (split paths relative to its folder)."""
    import yaml

    data: dict[str, object] = {"path": ".", "train": train, "val": val}
    if test is not None:
        data["test"] = test
    data["nc"] = len(names)
    data["names"] = dict(enumerate(names))
    atomic_write_text(Path(path), yaml.safe_dump(data, sort_keys=False))
