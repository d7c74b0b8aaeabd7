"""Atomic artifact writes: a temp file in the same folder, then a rename.

An ONNX model saved with external weights is a pair (``m.onnx`` + ``m.onnx.data``); both are
written to temp names and renamed together, and an existing output is never replaced without
``force``.

``tempfile`` makes its files 0600 and folders 0700 (private on purpose), and a rename keeps the
mode: :func:`apply_umask` gives a temp file or folder the mode a plain ``open``/``mkdir`` would
have had, before it becomes the artifact.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from toolkit.errors import BadInputError, OutputExistsError

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows.

    ``os.umask`` can only be read by setting it: another thread creating a file in that
    window would get mode 0666. Linux reports it in /proc (kernel 4.7+); elsewhere it is set
    and restored under a lock (which orders our own callers, not foreign threads).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def apply_umask(path: str | Path) -> None:
    """Give a temp file (0666) or folder (0777) the mode the umask allows, as open/mkdir do."""
    p = Path(path)
    base = 0o777 if p.is_dir() else 0o666
    os.chmod(p, base & ~current_umask())


def check_output(path: str | Path, force: bool, *, option: str | None = None) -> Path:
    """Validate an output file before the work: not there unless ``force``, not a folder, and
    its folder exists (or can be made) and takes new files. ``option`` (``--save``) prefixes
    the message.

    Nothing is created: a run that fails or is interrupted later leaves no empty folder
    behind (the atomic writers make the folder when they write).

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false.
        BadInputError: ``path`` is a folder, a path component is a file (``not a folder: X``),
            or the folder cannot take files (read-only, no permission).
    """
    p = Path(path)
    prefix = f"{option}: " if option else ""
    if p.exists() and not force:
        raise OutputExistsError(f"{prefix}output exists: {p} (pass --force to overwrite)")
    if p.is_dir():
        raise BadInputError(f"{prefix}output is a folder: {p}")
    _check_writable_folder(p.parent, p, prefix)
    return p


def check_output_dir(path: str | Path, *, option: str | None = None) -> Path:
    """Validate an output folder before the work: a folder (or nothing yet, with a makeable
    parent) that takes new files. ``option`` (``--save``) prefixes the message.

    Raises:
        BadInputError: ``path`` or a folder above it is a file (``not a folder: X``), or the
            folder cannot take files.
    """
    p = Path(path)
    prefix = f"{option}: " if option else ""
    if p.exists() and not p.is_dir():
        raise BadInputError(f"{prefix}not a folder: {p}")
    _check_writable_folder(p, p, prefix)
    return p


def _check_writable_folder(folder: Path, output: Path, prefix: str = "") -> None:
    """``folder`` (where ``output`` goes) is, or can be made in, a folder that takes files."""
    base = _nearest_existing(folder, output, prefix)
    # A real file created and removed, not os.access: root passes the mode bits of a 0555
    # folder, ACLs and mounts can say otherwise, and the error names the cause ("read-only
    # file system", "permission denied", "no space left on device").
    why = None
    try:
        fd, probe = tempfile.mkstemp(prefix=".edgetk-write-check-", dir=base)
    except OSError as e:
        why = (e.strerror or type(e).__name__).lower()
    else:
        os.close(fd)
        os.unlink(probe)
    if why is not None:
        where = "" if base == output else f" (folder {base})"
        raise BadInputError(f"{prefix}cannot write {output}: {why}{where}")


def _nearest_existing(folder: Path, output: Path, prefix: str) -> Path:
    """``folder`` or its nearest ancestor that exists; a file on the way is an error."""
    for candidate in (folder, *folder.parents):
        if candidate.is_dir():
            return candidate
        if os.path.lexists(candidate):  # a file (or a dangling link) where a folder must be
            raise BadInputError(f"{prefix}not a folder: {candidate} (in the path of {output})")
    return Path.cwd()  # a relative path with no existing part lands in the working folder


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it is renamed onto ``path``."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        apply_umask(tmp_path)
        os.replace(tmp_path, p)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def onnx_companions(path: str | Path) -> list[Path]:
    """The external-data file(s) that belong to an ONNX file (``m.onnx.data``)."""
    p = Path(path)
    return [q for q in (p.with_name(p.name + ".data"),) if q.exists()]


def save_onnx(model: object, path: str | Path, *, external_threshold: int = 1_900_000_000) -> None:
    """Save an ONNX ModelProto atomically.

    Models under 2 GB are stored in one file (simplest to copy and hash); larger ones as the
    ``.onnx`` + ``.onnx.data`` pair, both renamed into place together.
    """
    import onnx

    p = Path(path)
    size = model.ByteSize()  # type: ignore[attr-defined]
    if size < external_threshold:
        with atomic_path(p) as tmp:
            onnx.save_model(model, str(tmp))  # type: ignore[arg-type]
        stale = p.with_name(p.name + ".data")
        stale.unlink(missing_ok=True)
        return
    p.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{p.name}.", dir=p.parent))
    try:
        tmp_model = tmpdir / p.name
        onnx.save_model(
            model,  # type: ignore[arg-type]
            str(tmp_model),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=p.name + ".data",
        )
        # onnx writes these with plain open(), but the pair must match what atomic_path gives.
        for q in (tmpdir / (p.name + ".data"), tmp_model):
            apply_umask(q)
        os.replace(tmpdir / (p.name + ".data"), p.with_name(p.name + ".data"))
        os.replace(tmp_model, p)
    finally:
        for q in tmpdir.glob("*"):
            q.unlink(missing_ok=True)
        tmpdir.rmdir()
