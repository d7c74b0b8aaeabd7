"""Where the live loop's results go: events (JSON lines), NG snapshots, video, a window.

Every sink takes ``write(event, annotated)`` per processed frame and ``close()`` once; close
is what makes the outputs whole (the video's index is written, files flushed), and the loop
calls it on every way out, Ctrl-C included.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np

from toolkit.errors import BadInputError, ToolkitError
from toolkit.fileio import apply_umask, atomic_write_bytes, atomic_write_text, check_output

_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}


class Sink(Protocol):
    needs_image: bool  # wants the annotated frame (drawing it costs time: only when asked)

    def write(self, event: dict[str, Any], annotated: np.ndarray | None) -> None: ...

    def close(self) -> None: ...


class EventsSink:
    """One JSON line per processed frame (``only_ng``: NG frames only), flushed per line.

    Each line is written whole and flushed, so a run stopped at any moment leaves complete
    lines only. The path ``-`` means standard output (a pipe into ``jq`` or a collector); it
    is never closed here, the process still owns it.
    """

    needs_image = False

    def __init__(self, path: Path, *, only_ng: bool = False, force: bool = False) -> None:
        self.path, self.only_ng, self.count = path, only_ng, 0
        self._f: TextIO
        if is_stdout(path):
            self._f, self._own = sys.stdout, False
            return
        check_output(path, force)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f, self._own = path.open("w", encoding="utf-8"), True

    def write(self, event: dict[str, Any], annotated: np.ndarray | None) -> None:
        if self.only_ng and event["verdict"] != "NG":
            return
        self._f.write(json.dumps(event, separators=(", ", ": ")) + "\n")
        self._f.flush()
        self.count += 1

    def close(self) -> None:
        if self._own and not self._f.closed:
            self._f.close()


def is_stdout(path: str | Path | None) -> bool:
    """True for the path ``-`` (the usual name of standard output on a command line)."""
    return path is not None and str(path) == "-"


class SnapshotSink:
    """Each NG frame, annotated, as ``<time>_f<frame>.jpg`` with its event beside it (.json)."""

    needs_image = True

    def __init__(self, folder: Path) -> None:
        if folder.exists() and not folder.is_dir():
            raise BadInputError(f"--snapshots must be a folder, but {folder} is a file")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.count = folder, 0

    def write(self, event: dict[str, Any], annotated: np.ndarray | None) -> None:
        if event["verdict"] != "NG" or annotated is None:
            return
        import cv2

        # The capture time in the name keeps runs apart: nothing from an earlier run is replaced.
        stem = f"{event['ts'].replace(':', '').replace('-', '')}_f{event['frame']:06d}"
        ok, buf = cv2.imencode(".jpg", annotated, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise ToolkitError("could not encode an NG snapshot")
        atomic_write_bytes(self.folder / f"{stem}.jpg", buf.tobytes())
        atomic_write_text(self.folder / f"{stem}.json", json.dumps(event, indent=2) + "\n")
        self.count += 1

    def close(self) -> None:
        pass


class VideoSink:
    """The annotated frames as a video at the source's FPS.

    Written to a temporary file beside ``path`` and renamed into place by :meth:`close`: the
    file at ``path`` is always a finished, playable video.
    """

    needs_image = True

    def __init__(self, path: Path, fps: float, *, force: bool = False) -> None:
        check_output(path, force)
        suffix = path.suffix.lower()
        if suffix not in _FOURCC:
            raise BadInputError(
                f"--save: cannot write '{suffix}' video (use one of {', '.join(sorted(_FOURCC))})"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.fps, self.count = path, float(fps), 0
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer: Any = None
        self._size: tuple[int, int] | None = None

    def write(self, event: dict[str, Any], annotated: np.ndarray | None) -> None:
        if annotated is None:
            return
        import cv2

        h, w = annotated.shape[:2]
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise ToolkitError(f"OpenCV cannot write video {self.path}")
            self._size = (w, h)
        elif (w, h) != self._size:
            # An image folder may mix sizes; a video has one.
            annotated = cv2.resize(annotated, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(annotated)
        self.count += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            apply_umask(self._tmp)  # mkstemp made it 0600
            os.replace(self._tmp, self.path)
        elif self._tmp.exists():
            self._tmp.unlink()


class DisplaySink:
    """A window with the annotated frames; ``q`` or Esc asks the loop to stop."""

    needs_image = True

    def __init__(self, title: str = "edgetk run") -> None:
        self.title, self.quit = title, False

    def write(self, event: dict[str, Any], annotated: np.ndarray | None) -> None:
        if annotated is None:
            return
        import cv2

        cv2.imshow(self.title, annotated)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.quit = True

    def close(self) -> None:
        import cv2

        cv2.destroyAllWindows()
        cv2.waitKey(1)


def display_available() -> bool:
    """True when a window can be shown: a display server and an OpenCV with a GUI backend."""
    import re

    import cv2

    if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    gui = re.search(r"GUI:\s*(\S+)", cv2.getBuildInformation())
    return not (gui and gui.group(1).upper() == "NONE")
