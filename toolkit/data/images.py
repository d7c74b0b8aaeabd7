"""Reading images and videos from files, folders and glob patterns.

Frames come out as OpenCV decodes them (BGR, gray or BGRA uint8, 16-bit kept as is);
:func:`~toolkit.tasks.preprocess.preprocess` brings them to what the model wants, so a gray model
reads gray files without a round trip through BGR.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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


class ImageReadError(BadInputError):
    """One image (or video) file cannot be read; ``reason`` says why in a few words."""

    def __init__(self, message: str, path: Path, reason: str) -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class SkippedImage:
    """A file left out of a run: its name as shown (relative to a folder source) and why."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"

    def to_dict(self) -> dict[str, str]:
        return {"source": self.name, "reason": self.reason}


def skipped_text(skipped: Sequence[SkippedImage], limit: int = 5) -> str:
    """The one-line warning: ``skipped 1: zz.png: cannot decode`` (the first ``limit`` named)."""
    shown = ", ".join(str(s) for s in skipped[:limit])
    more = f", ... ({len(skipped) - limit} more)" if len(skipped) > limit else ""
    return f"skipped {len(skipped)}: {shown}{more}"


def shown_name(path: Path, root: Path | None) -> str:
    """``path`` relative to the folder ``root`` it was found in, else as it is."""
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return str(path)


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
        raise ImageReadError(f"image not found: {p}", p, "not found") from None
    except (IsADirectoryError, PermissionError, OSError) as e:
        why = e.strerror or str(e)
        raise ImageReadError(f"cannot read image {p}: {why}", p, f"cannot read ({why})") from None
    if data.size == 0:
        raise ImageReadError(f"empty image file: {p}", p, "empty file")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ImageReadError(
            f"cannot decode image {p} (corrupt or not an image)", p, "cannot decode"
        )
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
            raise ImageReadError(
                f"cannot open video {p} (corrupt or unsupported codec)", p, "cannot open video"
            )
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            if i % stride == 0:
                yield f"{p}#frame={i}", frame
            i += 1
        if i == 0:
            raise ImageReadError(f"no frames could be read from video {p}", p, "no frames")
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


def iter_images(source: str | Path, *, video_stride: int = 1, strict: bool = False) -> ImageStream:
    """Yield ``(name, frame)`` for an image file, a folder (recursive), a glob or a video.

    Frames are read lazily, in sorted path order; a video yields ``"clip.mp4#frame=12"`` names.
    A file of a folder or glob that cannot be read is skipped and listed in the stream's
    ``skipped`` (the caller says so: one corrupt image does not stop a run); ``strict`` makes
    it an error instead. A source naming one file is always strict: there is nothing else.

    Example:
        >>> frames = iter_images("parts/")
        >>> for name, frame in frames:
        ...     print(name, frame.shape)
        >>> frames.skipped
        [SkippedImage(name='zz.png', reason='cannot decode')]

    Raises:
        BadInputError: a missing source; with ``strict`` (or a one-file source) an unreadable
            image or video; a folder or glob none of whose files can be read.
    """
    if int(video_stride) < 1:
        raise BadInputError(f"video stride must be at least 1, got {video_stride}")
    # Resolved now, so a missing source fails at the call, not at the first next().
    files = resolve_source(source)
    root = Path(source) if Path(source).is_dir() else None
    return ImageStream(
        files, stride=int(video_stride), root=root, strict=strict or len(files) == 1,
        source=str(source),
    )  # fmt: skip


class ImageStream:
    """An iterator of ``(name, frame)`` over files, skipping (and listing) unreadable ones.

    ``skipped`` fills as the stream is read; ``count`` is the frames yielded so far. With
    ``require_any``, a stream whose every file was skipped raises at its end.
    """

    def __init__(
        self,
        files: Sequence[Path],
        *,
        stride: int = 1,
        root: Path | None = None,
        strict: bool = False,
        source: str = "",
        require_any: bool = True,
    ) -> None:
        self.files, self.stride, self.root, self.strict = list(files), stride, root, strict
        self.source, self.require_any = source, require_any
        self.skipped: list[SkippedImage] = []
        self.count = 0
        self._frames = self._read()

    def __iter__(self) -> ImageStream:
        return self

    def __next__(self) -> tuple[str, np.ndarray]:
        return next(self._frames)

    def _read(self) -> Iterator[tuple[str, np.ndarray]]:
        for path in self.files:
            try:
                if is_video(path):
                    for item in iter_video(path, stride=self.stride):
                        self.count += 1
                        yield item
                    continue
                frame = read_image(path)
            except ImageReadError as e:
                if self.strict:
                    raise
                self.skipped.append(SkippedImage(shown_name(path, self.root), e.reason))
                continue
            self.count += 1
            yield str(path), frame
        if self.require_any and self.count == 0 and self.skipped:
            where = self.source or "the source"
            raise BadInputError(f"no readable images in {where} ({skipped_text(self.skipped)})")
