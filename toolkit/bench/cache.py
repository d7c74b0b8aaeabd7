"""PyTorch references exported for the ONNX backends, cached by content hash.

``edgetk benchmark zoo:resnet18 --backend ort-cpu`` needs an ONNX file: the reference is
exported once with :func:`toolkit.export.export_onnx` (dynamic batch, parity-checked against
PyTorch) and kept in the cache folder (``--cache-dir``, default :func:`default_cache_dir`).

The key is a SHA-256 over what decides the file: the reference text, the bytes behind it (the
``.py`` file of ``file.py:Name``, the module file of ``package.module:Name``, a TorchScript or
``.pt2`` file; for ``zoo:NAME`` the entry's spec and class count, its code file and its
shipped weights; the hub package's version for ``torchvision:``/``timm:``), the weights
file's bytes, the spec overrides, the batch settings, and the edgetk and torch versions.

An entry is ``<key>.onnx`` and its manifest ``<key>.json``. Both are written atomically
(:mod:`toolkit.fileio`), the manifest last; an entry is used only when its manifest reads
back, names the same key and matches the ONNX file's size and SHA-256. Anything else (an
export cut short, a file changed since) is exported again and replaced.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError
from toolkit.model.spec import SpecOverrides
from toolkit.platform.machine import module_version

log = logging.getLogger(__name__)

_KEY_VERSION = 2
_CHUNK = 1 << 20


@dataclass(frozen=True)
class CachedExport:
    """A reference's ONNX file in the cache; ``exported``: made by this call (else reused)."""

    path: Path
    key: str
    exported: bool


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/edgetk/exports`` (``~/.cache/edgetk/exports`` without it)."""
    from toolkit.platform.machine import cache_home

    return cache_home() / "exports"


def cached_export(
    ref: str,
    *,
    weights: str | None = None,
    overrides: SpecOverrides | None = None,
    cache_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> CachedExport:
    """The ONNX export of PyTorch reference ``ref``, from the cache or exported into it.

    Raises:
        BadInputError: a reference or weights file that does not exist or load.
        ExportError, ParityError: the export failed, or does not match PyTorch.
    """
    parts = export_key(ref, weights=weights, overrides=overrides)
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    onnx_path, manifest = folder / f"{key}.onnx", folder / f"{key}.json"
    if _entry_ok(manifest, onnx_path, key):
        _say(progress, f"{ref}: cached export {onnx_path}")
        return CachedExport(onnx_path, key, exported=False)
    _say(progress, f"{ref}: exporting to ONNX (cache: {folder})")
    folder.mkdir(parents=True, exist_ok=True)
    from toolkit import export

    report = export.export_onnx(ref, onnx_path, weights=weights, overrides=overrides, force=True)
    doc = {
        "key": key, "parts": parts, "sha256": file_digest(onnx_path),
        "bytes": onnx_path.stat().st_size, "parity": report.parity.to_dict(),
    }  # fmt: skip
    from toolkit.fileio import atomic_write_text

    atomic_write_text(manifest, json.dumps(doc, indent=2, default=str) + "\n")
    _say(progress, f"{ref}: exported {onnx_path}")
    return CachedExport(onnx_path, key, exported=True)


def _say(progress: Callable[[str], None] | None, line: str) -> None:
    log.info("%s", line)
    if progress is not None:
        progress(line)


def export_key(
    ref: str, *, weights: str | None = None, overrides: SpecOverrides | None = None
) -> dict[str, Any]:
    """What the cache key hashes (see the module notes), as a JSON-able dict."""
    import torch

    from toolkit._version import __version__

    return {
        "format": _KEY_VERSION,
        "reference": ref,
        "source": source_digest(ref),
        "weights": None if weights is None else _weights_digest(weights),
        "overrides": None if overrides is None else asdict(overrides),
        "batch": None,  # a dynamic batch axis, unbounded: one file serves every --batch
        "dynamic": True,
        "edgetk": __version__,
        "torch": torch.__version__,
        # The exporter's own parts shape the file too.
        **{m: module_version(m) for m in ("onnx", "onnxscript", "onnxslim")},
    }


def _weights_digest(weights: str) -> str:
    if not Path(weights).is_file():
        raise BadInputError(f"weights file not found: {weights}")
    return file_digest(weights)


def source_digest(ref: str) -> str | None:
    """A digest of the code and files reference ``ref`` builds from (module notes)."""
    from toolkit.loading import parse_reference

    parsed = parse_reference(ref)
    if parsed.kind == "zoo":
        return _zoo_digest(parsed.target)
    if parsed.kind in ("torchvision", "timm"):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"{parsed.kind} {version(parsed.kind)}"
        except PackageNotFoundError:
            return None  # the export says what is missing
    if parsed.kind == "module":
        origin = _module_file(parsed.target)
        return None if origin is None else file_digest(origin)
    return file_digest(parsed.path)  # file.py:Name, TorchScript, .pt2


def _module_file(dotted: str) -> str | None:
    try:
        spec = importlib.util.find_spec(dotted)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None and spec.has_location else None


def _zoo_digest(name: str) -> str:
    """The zoo entry's spec, class count, code file and shipped weights, hashed together."""
    import inspect

    from toolkit.zoo import get_registry
    from toolkit.zoo.create import shipped_weights_path

    entry = get_registry().get(name)
    factory = entry.factory
    while isinstance(factory, functools.partial):  # zoo factories are often partials
        factory = factory.func
    try:
        code = inspect.getsourcefile(factory)
    except TypeError:  # a builtin or C factory: its version is edgetk's
        code = None
    shipped = shipped_weights_path(entry)
    parts = [
        entry.name, entry.spec.to_json(), str(entry.num_classes),
        file_digest(code) if code else "", file_digest(shipped) if shipped else "",
    ]  # fmt: skip
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _entry_ok(manifest: Path, onnx_path: Path, key: str) -> bool:
    """Whether a complete entry for ``key`` is there (manifest, and the file it describes)."""
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("key") != key:
            return False
        if onnx_path.stat().st_size != doc.get("bytes"):
            return False
        return file_digest(onnx_path) == doc.get("sha256")
    except (OSError, ValueError):
        return False
