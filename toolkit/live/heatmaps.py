"""``--explain METHOD``: a heatmap beside NG snapshots, computed off the hot path.

Each NG frame is offered to a :class:`toolkit.explain.HeatmapWorker` (its own thread, a share
of one core: ``--explain-budget``). The offer never waits: a frame that comes while a map is
being computed, or while the worker rests to keep its budget, is skipped and counted. A map
lands beside the frame's snapshot as ``<stem>_heat.jpg`` (the overlay) and ``<stem>_heat.npy``
(the map, float32 in [0, 1]). A classifier's map covers what it saw: the ROI.
"""

from __future__ import annotations

import io
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.fileio import atomic_write_bytes
from toolkit.live.snapshots import snapshot_stem


def check_explain(method: str | None, budget: float, snapshots: Path | None) -> None:
    """``--explain`` names a method, has somewhere to go, and a budget in (0, 1]."""
    if method is None:
        return
    from toolkit.explain import METHODS

    if method not in METHODS:
        raise BadInputError(f"--explain must be one of {', '.join(METHODS)}, got '{method}'")
    if snapshots is None:
        raise BadInputError("--explain puts heatmaps beside the NG snapshots: give --snapshots")
    if not 0 < budget <= 1:
        raise BadInputError(f"--explain-budget must be in (0, 1], got {budget:g}")


class SnapshotHeatmaps:
    """NG frames in, heatmaps out beside their snapshots (see the module)."""

    def __init__(self, worker: Any, folder: Path, *, station: bool = False) -> None:
        self.worker, self.folder, self.station = worker, folder, station
        self.written = 0
        self.errors: list[str] = []

    @classmethod
    def open(
        cls, model: str, method: str, budget: float, folder: Path, *, station: bool,
        backend: str, weights: str | None, model_source: str | None, overrides: Any,
    ) -> SnapshotHeatmaps:  # fmt: skip
        """The explainer (its own session, one thread) and its worker."""
        from toolkit.explain import Explainer, HeatmapWorker

        explainer = Explainer(
            model, method, backend=backend, weights=weights, model_source=model_source,
            overrides=overrides, threads=1,
        )  # fmt: skip
        self = cls(None, folder, station=station)
        self.worker = HeatmapWorker(explainer, self._save, budget=budget)
        return self

    def submit(self, event: dict[str, Any], image: np.ndarray) -> bool:
        """Offer an NG frame (the model's input: the frame, or a classifier's ROI)."""
        return self.worker.submit(snapshot_stem(event, with_source=self.station), image)

    def _save(self, key: Hashable, overlay: np.ndarray, heat: np.ndarray) -> None:
        import cv2

        ok, buf = cv2.imencode(".jpg", overlay, [cv2.IMWRITE_JPEG_QUALITY, 90])
        raw = io.BytesIO()
        np.save(raw, heat.astype(np.float32))
        try:
            if not ok:
                raise OSError("could not encode the heatmap")
            atomic_write_bytes(self.folder / f"{key}_heat.jpg", buf.tobytes())
            atomic_write_bytes(self.folder / f"{key}_heat.npy", raw.getvalue())
            self.written += 1
        except OSError as e:  # off the hot path: counted and reported, the run goes on
            self.errors.append(str(e))

    def close(self) -> dict[str, Any]:
        """Stop the worker; its figures for the summary."""
        self.worker.close()
        stats = self.worker.stats()
        return {
            "method": self.worker.explainer.method,
            "budget": self.worker.budget,
            **stats,
            "written": self.written,
            "write_errors": len(self.errors),
        }
