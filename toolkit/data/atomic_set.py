"""Writing a generated data set atomically: built beside its root, then renamed into place.

A set written by :func:`write_set` holds ``dataset.json`` (what was made); that file is how
:func:`check_replaceable` knows a folder may be replaced with ``force``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from toolkit.errors import BadInputError, OutputExistsError
from toolkit.fileio import apply_umask

MARKER = "dataset.json"


def check_replaceable(root: Path, force: bool) -> None:
    """Refuse an existing ``root`` without ``force``, and one that no generator made.

    Raises:
        OutputExistsError: ``root`` exists and ``force`` is false.
        BadInputError: ``root`` exists but holds no :data:`MARKER`.
    """
    if root.exists():
        if not force:
            raise OutputExistsError(f"output exists: {root} (pass --force to overwrite)")
        if not (root / MARKER).is_file():
            raise BadInputError(f"refusing to replace {root}: it was not made by edgetk")


def write_set(root: Path, build: Callable[[Path], dict[str, object]]) -> dict[str, object]:
    """Run ``build(folder)`` in a temporary folder beside ``root``, then make it ``root``.

    ``build`` writes the set and returns its description, saved as ``dataset.json``. An
    interrupted or failed build leaves no half-written set (and an earlier ``root`` as it was).

    Returns:
        The description ``build`` returned.
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        info = build(tmp)
        (tmp / MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        apply_umask(tmp)  # mkdtemp made it 0700; the set is for everyone the umask allows
        if root.exists():
            shutil.rmtree(root)
        tmp.rename(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return info
