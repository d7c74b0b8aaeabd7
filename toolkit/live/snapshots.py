"""NG snapshots: each NG verdict's image (a frame, or a part's best) with its event beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.fileio import atomic_write_bytes, atomic_write_text
from toolkit.live.sinks import Sink, SinkError


def snapshot_stem(event: dict[str, Any], *, with_source: bool = False) -> str:
    """``<time>[_<source>]_f<frame>`` or ``..._p<part>``: unique per run, sorted by time."""
    import re

    stamp = event["ts"].replace(":", "").replace("-", "")
    source = re.sub(r"[^A-Za-z0-9_.]+", "-", str(event.get("source", "")))[:40]
    name = f"{stamp}_{source}" if with_source and source else stamp
    if event.get("kind") == "part":
        return f"{name}_p{int(event['part']):06d}"
    return f"{name}_f{int(event['frame']):06d}"


class SnapshotSink(Sink):
    """Each NG frame, annotated, as ``<time>_f<frame>.jpg`` with its event beside it (.json)."""

    needs_image = True
    name = "snapshots"

    def __init__(self, folder: Path, *, station: bool = False) -> None:
        self.station = station  # several sources: their names go into the file names
        if folder.exists() and not folder.is_dir():
            raise BadInputError(f"--snapshots must be a folder, but {folder} is a file")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.count = folder, 0

    def verdict(self, event: dict[str, Any], image: np.ndarray | None) -> None:
        if event["verdict"] != "NG" or image is None:
            return
        annotated = image
        import cv2

        # The capture time in the name keeps runs apart: nothing from an earlier run is replaced.
        stem = snapshot_stem(event, with_source=self.station)
        ok, buf = cv2.imencode(".jpg", annotated, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise SinkError("snapshots", "could not encode an NG snapshot")
        try:
            atomic_write_bytes(self.folder / f"{stem}.jpg", buf.tobytes())
            atomic_write_text(self.folder / f"{stem}.json", json.dumps(event, indent=2) + "\n")
        except OSError as e:  # the temp file is removed: no half-written snapshot is left
            raise SinkError("snapshots", f"cannot write in {self.folder}: {e.strerror or e}") from e
        self.count += 1
