"""Reading images and videos from files, folders and glob patterns.

Frames come out as OpenCV decodes them (BGR, gray or BGRA uint8, 16-bit kept as is);
:func:`~toolkit.tasks.preprocess.preprocess` brings them to what the model wants, so a gray model
reads gray files without a round trip through BGR.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from toolkit.errors import BadInputError

IMAGE_SUFFIXES = frozenset(
    {
        ".bmp",
        ".dib",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".tif",
        ".tiff",
        ".webp",
        ".pbm",
        ".pgm",
        ".ppm",
        ".pnm",
    }
)
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".ts", ".asf"}
)
_GLOB_CHARS = frozenset("*?[")


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file, keeping its channels and bit depth (``IMREAD_UNCHANGED``).

    The bytes are read by numpy and decoded from memory: ``cv2.imread`` cannot open paths with
    non-ASCII characters on every platform. EXIF orientation is not applied, as in PIL-based
    training pipelines (torchvision), so a model sees the pixels it was trained on.

    Raises:
        BadInputError: the file is missing, empty, corrupt or not an image.
    """
    p = Path(path)
    try:
        data = np.fromfile(p, dtype=np.uint8)
    except FileNotFoundError:
        raise BadInputError(f"image not found: {p}") from None
    except (IsADirectoryError, PermissionError, OSError) as e:
        raise BadInputError(f"cannot read image {p}: {e.strerror or e}") from None
    if data.size == 0:
        raise BadInputError(f"empty image file: {p}")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise BadInputError(f"cannot decode image {p} (corrupt or not an image)")
    return img


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _hidden(path: Path, root: Path) -> bool:
    # Skip dot-files and dot-folders: macOS "._x.jpg" resource forks look like images but are not.
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def list_media(folder: str | Path, *, videos: bool = True) -> list[Path]:
    """Image (and video) files under ``folder``, recursively, sorted by path."""
    root = Path(folder)
    suffixes = IMAGE_SUFFIXES | VIDEO_SUFFIXES if videos else IMAGE_SUFFIXES
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in suffixes and p.is_file() and not _hidden(p, root)
    )


def iter_video(path: str | Path, *, stride: int = 1) -> Iterator[tuple[str, np.ndarray]]:
    """Frames of a video file as ``("path#frame=i", frame)``, every ``stride``-th one."""
    p = Path(path)
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise BadInputError(f"cannot open video {p} (corrupt or unsupported codec)")
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            if i % stride == 0:
                yield f"{p}#frame={i}", frame
            i += 1
        if i == 0:
            raise BadInputError(f"no frames could be read from video {p}")
    finally:
        cap.release()


def resolve_source(source: str | Path) -> list[Path]:
    """The media files a source names: one file, a folder's files, or a glob's matches.

    Raises:
        BadInputError: nothing is there, or nothing usable is.
    """
    s = str(source)
    p = Path(s)
    if p.is_dir():
        files = list_media(p)
        if not files:
            raise BadInputError(f"no images or videos in folder {p}")
        return files
    if p.is_file():
        return [p]
    if _GLOB_CHARS & set(s):
        matches = sorted(Path(m) for m in glob.glob(s, recursive=True))
        files = [m for m in matches if m.is_file() and (is_image(m) or is_video(m))]
        if not files:
            raise BadInputError(f"no images or videos match {s}")
        return files
    raise BadInputError(
        f"source not found: {s} (expected an image, a folder, a glob or a video file)"
    )


def iter_images(source: str | Path, *, video_stride: int = 1) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name, frame)`` for an image file, a folder (recursive), a glob or a video.

    Frames are read lazily, in sorted path order; a video yields ``"clip.mp4#frame=12"`` names.

    Example:
        >>> for name, frame in iter_images("parts/"):
        ...     print(name, frame.shape)

    Raises:
        BadInputError: a missing source, an unreadable image or video.
    """
    if int(video_stride) < 1:
        raise BadInputError(f"video stride must be at least 1, got {video_stride}")
    # Resolved now, so a missing source fails at the call, not at the first next().
    return _iter_files(resolve_source(source), int(video_stride))


def _iter_files(files: list[Path], stride: int) -> Iterator[tuple[str, np.ndarray]]:
    for path in files:
        if is_video(path):
            yield from iter_video(path, stride=stride)
        else:
            yield str(path), read_image(path)
