"""The live loop's window: the annotated frames on screen, and whether a screen is there."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from toolkit.live.sinks import Sink


class DisplaySink(Sink):
    """A window with the annotated frames; ``q`` or Esc asks the loop to stop."""

    needs_image = True
    name = "display"

    def __init__(self, title: str = "edgetk run", *, station: bool = False) -> None:
        self.title, self.quit, self.station = title, False, station  # station: a window a source

    def write(
        self, event: dict[str, Any], annotated: np.ndarray | None, captured: float | None = None
    ) -> None:
        if annotated is None:
            return
        import cv2

        source = event.get("source")
        cv2.imshow(f"{self.title}: {source}" if self.station and source else self.title, annotated)
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
