"""Tiles: a big frame cut into overlapping crops, so that small defects stay big enough.

``--tiles 2x2`` (columns x rows) or ``--tile 640 --overlap 0.2`` (square tiles of 640 pixels,
at least 20% shared with each neighbour). Tiles cover the ROI only when one is given. All the
tiles of a frame go into one batched call (:func:`run_tiled`; the live loop batches them
itself), and their boxes come back in frame pixels, merged by :func:`merge_tiles`:

1. seam fusion: boxes of one class from different tiles that meet at a seam (one is cut by
   its tile's inner edge, the other reaches past that edge along the same line) are joined
   into their union box (an object split by a seam becomes one box again);
2. the existing class-aware (or agnostic) NMS (:func:`toolkit.tasks.boxes.batched_nms`)
   removes the duplicates that overlapping tiles see whole twice.

Example:
    >>> grid = TileGrid.parse("2x2", None, 0.2)
    >>> [t.xyxy for t in grid.split(np.zeros((480, 640, 3), np.uint8))][:2]
    [(0, 0, 356, 267), (284, 0, 640, 267)]
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from toolkit.errors import BadInputError
from toolkit.tasks.boxes import batched_nms
from toolkit.tasks.detect import Detections

if TYPE_CHECKING:
    from toolkit.backends.base import Session
    from toolkit.tasks.detect import DetectTask

MAX_TILES_PER_SIDE = 32
MIN_TILE = 16  # pixels: a smaller tile holds nothing a detector could find
MAX_OVERLAP = 0.9
# Two cut pieces are one object when their extents along the seam overlap this much (1-D IoU).
SEAM_MATCH = 0.5


@dataclass(frozen=True)
class Tile:
    """One crop of a frame: the pixels (a view) and where they lie in the frame.

    ``region`` is the tiled area (the frame or its ROI) as x0, y0, x1, y1: a tile edge on
    it is the area's border, any other edge is a seam.
    """

    image: np.ndarray
    x0: int
    y0: int
    region: tuple[int, int, int, int]

    @property
    def xyxy(self) -> tuple[int, int, int, int]:
        h, w = self.image.shape[:2]
        return self.x0, self.y0, self.x0 + w, self.y0 + h


@dataclass(frozen=True)
class TileGrid:
    """How frames are cut: ``cols`` x ``rows`` tiles, or square tiles of ``size`` pixels,
    sharing at least ``overlap`` of their side with each neighbour."""

    cols: int | None = None
    rows: int | None = None
    size: int | None = None
    overlap: float = 0.2

    @classmethod
    def parse(cls, tiles: str | None, tile: int | None, overlap: float = 0.2) -> TileGrid | None:
        """``--tiles CxR`` (or ``N`` for NxN) or ``--tile PIXELS``, with ``--overlap``;
        None when neither is given.

        Raises:
            BadInputError: both given, a malformed grid, or a value out of range.
        """
        if not 0.0 <= overlap <= MAX_OVERLAP:
            raise BadInputError(f"--overlap must be in [0, {MAX_OVERLAP}], got {overlap}")
        if tiles is not None and tile is not None:
            raise BadInputError("give --tiles CxR or --tile PIXELS, not both")
        if tile is not None:
            if not MIN_TILE <= tile <= 16384:
                raise BadInputError(f"--tile must be {MIN_TILE}..16384 pixels, got {tile}")
            return cls(size=int(tile), overlap=float(overlap))
        if tiles is None:
            return None
        m = re.fullmatch(r"\s*(\d{1,3})\s*(?:[x,*]\s*(\d{1,3}))?\s*", tiles.lower())
        if m is None:
            raise BadInputError(f"--tiles expects columns x rows such as 2x2, got '{tiles[:40]}'")
        cols = int(m.group(1))
        rows = int(m.group(2) or cols)
        if not (1 <= cols <= MAX_TILES_PER_SIDE and 1 <= rows <= MAX_TILES_PER_SIDE):
            raise BadInputError(f"--tiles must be 1..{MAX_TILES_PER_SIDE} per side, got '{tiles}'")
        return cls(cols=cols, rows=rows, overlap=float(overlap))

    def describe(self) -> dict[str, Any]:
        """The grid as reports give it: ``{"tiles": "CxR" or None, "tile": N or None,
        "overlap"}``."""
        grid = None if self.cols is None else f"{self.cols}x{self.rows}"
        return {"tiles": grid, "tile": self.size, "overlap": self.overlap}

    def spans(self, w: int, h: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The tiles' ``(start, end)`` along x and along y of a ``w`` x ``h`` area."""
        return (_spans(w, self.cols, self.size, self.overlap),
                _spans(h, self.rows, self.size, self.overlap))  # fmt: skip

    def split(self, image: np.ndarray, roi: tuple[int, int, int, int] | None = None) -> list[Tile]:
        """The tiles of ``image`` (row by row), covering only ``roi`` (x, y, w, h) if given."""
        region = _region(image.shape[:2], roi)
        rx0, ry0, rx1, ry1 = region
        xs, ys = self.spans(rx1 - rx0, ry1 - ry0)
        return [
            Tile(image[ry0 + ya : ry0 + yb, rx0 + xa : rx0 + xb], rx0 + xa, ry0 + ya, region)
            for ya, yb in ys
            for xa, xb in xs
        ]


def _spans(length: int, n: int | None, size: int | None, overlap: float) -> list[tuple[int, int]]:
    """Tiles along one side: equal lengths, the first and last flush with the ends."""
    if n is not None:
        t = min(length, math.ceil(length / (n - (n - 1) * overlap)))
    else:
        t = min(length, int(size or length))
        step = t * (1 - overlap)
        n = 1 if length <= t else math.ceil((length - t) / max(step, 1.0)) + 1
    if n > 1 and t < 2:
        raise BadInputError(f"{n} tiles do not fit in {length} pixels")
    starts = [0] if n == 1 else [round(i * (length - t) / (n - 1)) for i in range(n)]
    return [(s, s + t) for s in starts]


def _region(
    hw: tuple[int, int], roi: tuple[int, int, int, int] | None
) -> tuple[int, int, int, int]:
    h, w = hw
    if roi is None:
        return 0, 0, w, h
    x, y, rw, rh = roi
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + rw), min(h, y + rh)
    if x1 <= x0 or y1 <= y0:
        raise BadInputError(f"--roi {x},{y},{rw},{rh} lies outside the {w}x{h} frame")
    return x0, y0, x1, y1


def merge_tiles(
    per_tile: Sequence[Detections],
    tiles: Sequence[Tile],
    *,
    iou: float = 0.45,
    agnostic: bool = False,
    max_det: int = 300,
    fuse: bool = True,
) -> Detections:
    """One frame's detections from its tiles' (each in its tile's pixels): shifted to the
    frame, joined at the seams (``fuse``), then NMS (``iou``, ``agnostic``), best first."""
    if len(per_tile) != len(tiles):
        raise ValueError(f"{len(per_tile)} results for {len(tiles)} tiles")
    if not tiles or not any(len(d) for d in per_tile):
        return Detections.empty()
    xyxy = np.concatenate([d.xyxy + np.float32([t.x0, t.y0, t.x0, t.y0])
                           for d, t in zip(per_tile, tiles, strict=True)])  # fmt: skip
    conf = np.concatenate([d.confidence for d in per_tile])
    cls = np.concatenate([d.class_id for d in per_tile])
    labels = [lab for d in per_tile for lab in d.labels]
    owner = np.concatenate([np.full(len(d), i) for i, d in enumerate(per_tile)])
    if fuse and len(tiles) > 1:
        xyxy, conf, cls, labels = _fuse(xyxy, conf, cls, labels, owner, tiles, agnostic)
    keep = batched_nms(xyxy, conf, cls, iou=iou, max_det=max_det, agnostic=agnostic)
    return Detections(xyxy[keep], conf[keep], cls[keep], tuple(labels[i] for i in keep))


def _cut_sides(
    xyxy: np.ndarray, owner: np.ndarray, tiles: Sequence[Tile]
) -> tuple[np.ndarray, np.ndarray]:
    """``[N, 4]`` flags (left, top, right, bottom): the box ends at a seam of its tile; and
    the margin (pixels) that counts as touching it."""
    edges = np.array([t.xyxy for t in tiles], np.float32)[owner]
    regions = np.array([t.region for t in tiles], np.float32)[owner]
    size = np.minimum(edges[:, 2] - edges[:, 0], edges[:, 3] - edges[:, 1])
    margin = np.maximum(2.0, 0.01 * size)
    seam = np.concatenate([edges[:, :2] > regions[:, :2], edges[:, 2:] < regions[:, 2:]], 1)
    near = np.concatenate([xyxy[:, :2] <= edges[:, :2] + margin[:, None],
                           xyxy[:, 2:] >= edges[:, 2:] - margin[:, None]], 1)  # fmt: skip
    return seam & near, margin


def _overlap_1d(a0: np.ndarray, a1: np.ndarray) -> np.ndarray:
    """Pairwise IoU of the intervals ``[a0[i], a1[i]]`` -> ``[N, N]``."""
    inter = np.clip(np.minimum(a1[:, None], a1[None]) - np.maximum(a0[:, None], a0[None]), 0, None)
    union = (a1 - a0)[:, None] + (a1 - a0)[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def _seam_pairs(
    xyxy: np.ndarray, cls: np.ndarray, owner: np.ndarray, tiles: Sequence[Tile], agnostic: bool
) -> np.ndarray:
    """``[N, N]`` bool: box i is cut by a seam that box j (another tile's) reaches across, the
    two lined up along the seam."""
    cut, m = _cut_sides(xyxy, owner, tiles)
    x1, y1, x2, y2 = (xyxy[:, k] for k in range(4))
    oy = _overlap_1d(y1, y2) >= SEAM_MATCH
    ox = _overlap_1d(x1, x2) >= SEAM_MATCH
    mm = m[:, None]
    pairs = (
        cut[:, 2:3] & (x1[None] <= x2[:, None] + mm) & (x2[None] > x2[:, None]) & oy
        | cut[:, 0:1] & (x2[None] >= x1[:, None] - mm) & (x1[None] < x1[:, None]) & oy
        | cut[:, 3:4] & (y1[None] <= y2[:, None] + mm) & (y2[None] > y2[:, None]) & ox
        | cut[:, 1:2] & (y2[None] >= y1[:, None] - mm) & (y1[None] < y1[:, None]) & ox
    )
    pairs &= owner[:, None] != owner[None]
    if not agnostic:
        pairs &= cls[:, None] == cls[None]
    return pairs | pairs.T


def _fuse(
    xyxy: np.ndarray,
    conf: np.ndarray,
    cls: np.ndarray,
    labels: list[str],
    owner: np.ndarray,
    tiles: Sequence[Tile],
    agnostic: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Each group of boxes joined across seams (transitively: an object on a corner of four
    tiles) becomes its union box, with its best member's confidence and class."""
    pairs = _seam_pairs(xyxy, cls, owner, tiles, agnostic)
    if not pairs.any():
        return xyxy, conf, cls, labels
    parent = np.arange(len(conf))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for i, j in np.argwhere(np.triu(pairs, 1)):
        parent[root(int(i))] = root(int(j))
    roots = np.array([root(i) for i in range(len(conf))])
    out_box, out_conf, out_cls, out_lab = [], [], [], []
    for r in np.unique(roots):
        members = np.flatnonzero(roots == r)
        best = members[np.argmax(conf[members])]
        b = xyxy[members]
        out_box.append([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()])
        out_conf.append(conf[best])
        out_cls.append(cls[best])
        out_lab.append(labels[best])
    return (np.asarray(out_box, np.float32), np.asarray(out_conf, np.float32),
            np.asarray(out_cls, np.int64), out_lab)  # fmt: skip


def run_tiled(
    session: Session,
    task: DetectTask,
    image: np.ndarray,
    grid: TileGrid,
    roi: tuple[int, int, int, int] | None = None,
    *,
    square: bool = False,
    fuse: bool = True,
) -> Detections:
    """Detect on ``image`` tile by tile, all its tiles in one call (a static-batch model:
    chunks of its batch), and merge them (:func:`merge_tiles`, with the task's NMS settings)."""
    from toolkit.tasks.base import run_task

    tiles = grid.split(image, roi)
    per_tile: list[Any] = run_task(session, task, [t.image for t in tiles], square=square)
    return merge_tiles(per_tile, tiles, iou=task.iou, agnostic=task.agnostic,
                       max_det=task.max_det, fuse=fuse)  # fmt: skip
