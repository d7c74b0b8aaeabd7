"""Files a spec names (``source``, ``extra["weights"]``), portable between folders.

A model records its PyTorch reference relative to the model file's folder, so the model and
its ``net.py`` keep working when moved together, from any working folder.
"""

from __future__ import annotations

import os
from pathlib import Path

# References that name no file (kept as they are); "package:" is a zoo entry's shipped weights.
_NAMED_PREFIXES = ("zoo:", "torchvision:", "timm:", "package:")
_PROGRAM_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".torchscript", ".pt2")


def _split_file(ref: str, *, any_file: bool) -> tuple[str, str] | None:
    """``(file, rest)`` when ``ref`` names a file (``net.py:Net`` -> ``("net.py", ":Net")``).

    ``any_file``: the whole string is a path unless it is a named reference (weights); else
    only ``*.py:Name`` and saved programs are files (``package.module:Name`` is not).
    """
    if ref.startswith(_NAMED_PREFIXES):
        return None
    target, sep, symbol = ref.rpartition(":")
    if sep and target.endswith(".py"):
        return target, sep + symbol
    if any_file or ref.lower().endswith(_PROGRAM_SUFFIXES):
        return ref, ""
    return None


def portable_ref(ref: str, folder: str | Path, *, any_file: bool = False) -> str:
    """``ref`` with its file (as found from the working folder) relative to ``folder``.

    ``folder`` is where the model file is written: recorded this way, the model and its
    ``net.py`` keep working when moved together, from any working folder.
    """
    parts = _split_file(ref, any_file=any_file)
    if parts is None:
        return ref
    file, rest = parts
    try:
        rel = os.path.relpath(os.path.abspath(file), os.path.abspath(folder))
    except ValueError:  # another drive (Windows): no relative path exists
        return os.path.abspath(file) + rest
    return Path(rel).as_posix() + rest


def resolve_ref(ref: str, folder: str | Path, *, any_file: bool = False) -> str:
    """A recorded ``ref`` made usable from here: its relative file is looked up in ``folder``.

    ``folder`` is the model file's folder. Files written before paths were recorded that way
    hold them relative to where the export ran: such a path is kept when it exists from the
    working folder and not beside the model.
    """
    parts = _split_file(ref, any_file=any_file)
    if parts is None:
        return ref
    file, rest = parts
    p = Path(file)
    if p.is_absolute():
        return ref
    beside = Path(os.path.normpath(Path(folder) / p))
    if p.exists() and not beside.exists():
        return ref
    return f"{beside}{rest}"
