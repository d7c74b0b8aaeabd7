"""Tiles: grids, ROI, seam fusion, and tiled detection that finds what the full frame misses.

The detector (tests/tasks/_blob_detector.py) boxes the bright pixels of its input and fires
only when the box is at least 12 input pixels a side, as a real detector misses an object
that the resize made too small.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from _blob_detector import blob_detector, frame_with

from toolkit.backends import open_session
from toolkit.errors import BadInputError
from toolkit.tasks.base import make_task, run_task
from toolkit.tasks.boxes import box_iou
from toolkit.tasks.detect import Detections
from toolkit.tasks.tiles import Tile, TileGrid, merge_tiles, run_tiled


@pytest.mark.parametrize(
    ("tiles", "tile", "overlap", "error"),
    [
        ("2x2", 640, 0.2, "not both"),
        ("2by2", None, 0.2, "columns x rows"),
        ("0x2", None, 0.2, "1..32 per side"),
        (None, 8, 0.2, "--tile must be"),
        ("2x2", None, 0.95, "--overlap must be"),
    ],
)
def test_bad_tile_options(tiles, tile, overlap, error) -> None:
    with pytest.raises(BadInputError, match=error):
        TileGrid.parse(tiles, tile, overlap)


def test_grids_cover_the_frame_with_the_overlap() -> None:
    assert TileGrid.parse(None, None) is None
    assert TileGrid.parse("3", None) == TileGrid(cols=3, rows=3, overlap=0.2)
    frame = np.zeros((480, 640, 3), np.uint8)
    tiles = TileGrid.parse("2x2", None, 0.2).split(frame)
    assert [t.xyxy for t in tiles] == [
        (0, 0, 356, 267), (284, 0, 640, 267), (0, 213, 356, 480), (284, 213, 640, 480),
    ]  # fmt: skip
    by_size = TileGrid.parse(None, 256, 0.2).split(frame)
    assert len(by_size) == 9 and all(t.image.shape[:2] == (256, 256) for t in by_size)
    xs = sorted({t.x0 for t in by_size})
    assert xs == [0, 192, 384] and all(b - a <= 256 * 0.8 for a, b in itertools.pairwise(xs))


def test_tiles_cover_only_the_roi() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    tiles = TileGrid.parse("2x2", None, 0.0).split(frame, (100, 50, 300, 200))
    assert [t.xyxy for t in tiles] == [
        (100, 50, 250, 150), (250, 50, 400, 150), (100, 150, 250, 250), (250, 150, 400, 250),
    ]  # fmt: skip
    assert all(t.region == (100, 50, 400, 250) for t in tiles)
    with pytest.raises(BadInputError, match="outside"):
        TileGrid.parse("2x2", None).split(frame, (700, 0, 10, 10))


def _tile(x0: int, y0: int, w: int, h: int, region: tuple[int, int, int, int]) -> Tile:
    return Tile(np.zeros((h, w, 3), np.uint8), x0, y0, region)


def _dets(*boxes: tuple[float, float, float, float], conf: float = 0.9) -> Detections:
    n = len(boxes)
    return Detections(np.array(boxes, np.float32).reshape(n, 4), [conf] * n, [0] * n)


def test_seam_fusion_joins_a_box_cut_by_a_seam() -> None:
    region = (0, 0, 512, 256)
    tiles = [_tile(0, 0, 256, 256, region), _tile(256, 0, 256, 256, region)]
    # An object at x 236..276 seen as two pieces, each ending at the seam x = 256.
    pieces = [_dets((236, 100, 256, 140)), _dets((0, 101, 20, 139))]
    merged = merge_tiles(pieces, tiles)
    assert len(merged) == 1 and merged.xyxy[0].tolist() == [236, 100, 276, 140]
    assert len(merge_tiles(pieces, tiles, fuse=False)) == 2
    # Boxes that touch no seam, or do not line up along it, stay apart.
    apart = [_dets((236, 10, 256, 50)), _dets((0, 150, 20, 190))]
    assert len(merge_tiles(apart, tiles)) == 2
    inner = [_dets((100, 100, 140, 140)), _dets((10, 100, 50, 140))]
    assert len(merge_tiles(inner, tiles)) == 2


def test_seam_fusion_joins_four_corner_pieces() -> None:
    region = (0, 0, 200, 200)
    tiles = [_tile(x, y, 100, 100, region) for y in (0, 100) for x in (0, 100)]
    pieces = [_dets((80, 80, 100, 100)), _dets((0, 80, 30, 100)),
              _dets((80, 0, 100, 25)), _dets((0, 0, 30, 25))]  # fmt: skip
    merged = merge_tiles(pieces, tiles)
    assert len(merged) == 1 and merged.xyxy[0].tolist() == [80, 80, 130, 125]


@pytest.fixture(scope="module")
def blob(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return blob_detector(tmp_path_factory.mktemp("tiles") / "blob.onnx", imgsz=256)


def test_tiled_detection_finds_small_defects_the_full_frame_misses(blob: Path) -> None:
    """A 1024x1024 frame at imgsz 256: a 24 px defect is 6 input px (missed); in 256 px
    tiles it is 24 (found), and its box comes back in frame pixels. (The detector boxes all
    bright pixels as one object, so the full frame is tried with one defect at a time.)"""
    defects = [(100, 100, 124, 124), (600, 150, 624, 174), (300, 700, 324, 724)]
    frame = frame_with(defects, hw=(1024, 1024))
    singles = [frame_with([d], hw=(1024, 1024)) for d in defects]
    grid = TileGrid.parse(None, 256, 0.2)
    with open_session(blob, "ort-cpu", threads=1) as session:
        task = make_task(session.spec)
        full = run_task(session, task, singles)
        tiled = run_tiled(session, task, frame, grid)
    assert [len(d) for d in full] == [0, 0, 0]
    assert len(tiled) == 3
    ious = box_iou(np.array(defects, np.float32), tiled.xyxy)
    assert (ious.max(1) >= 0.9).all()


def test_tiled_detection_respects_the_roi_and_fuses_at_seams(blob: Path) -> None:
    inside, outside = (270, 100, 310, 140), (900, 900, 940, 940)
    frame = frame_with([inside, outside], hw=(1024, 1024))
    grid = TileGrid.parse("2x2", None, 0.2)
    with open_session(blob, "ort-cpu", threads=1) as session:
        task = make_task(session.spec)
        # ROI 512x512: tiles of 285 px at x 0 and 227; the defect is cut by the first tile's
        # right edge (x = 285) and whole in the second: one box after fusion and NMS.
        dets = run_tiled(session, task, frame, grid, roi=(0, 0, 512, 512))
    assert len(dets) == 1
    assert box_iou(np.array([inside], np.float32), dets.xyxy)[0, 0] >= 0.95


def test_static_batch_model_gets_its_tiles_in_chunks(tmp_path: Path) -> None:
    path = blob_detector(tmp_path / "b1.onnx", imgsz=256, batch=1)
    frame = frame_with([(100, 100, 124, 124)], hw=(512, 512))
    with open_session(path, "ort-cpu", threads=1) as session:
        assert session.static_batch == 1
        dets = run_tiled(session, make_task(session.spec), frame, TileGrid.parse("2x2", None, 0))
    assert len(dets) == 1


def test_predict_and_val_cli_take_tiles(blob: Path, tmp_path: Path) -> None:
    """``--tiles`` in predict and val: the tiled run finds the small defect; val --json
    reports the grid and a tiled mAP above the full frame's."""
    import json

    import cv2
    from typer.testing import CliRunner

    from toolkit.cli.app import app

    root = tmp_path / "set"
    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    for i, (x, y) in enumerate([(100, 100), (700, 300)]):
        cv2.imwrite(str(root / "images" / "val" / f"{i}.png"),
                    frame_with([(x, y, x + 24, y + 24)], hw=(1024, 1024)))  # fmt: skip
        cx, cy = (x + 12) / 1024, (y + 12) / 1024
        (root / "labels" / "val" / f"{i}.txt").write_text(f"0 {cx} {cy} {24 / 1024} {24 / 1024}\n")
    (root / "data.yaml").write_text(f"path: {root}\nval: images/val\nnames: [defect]\n")
    runner = CliRunner()
    image = str(root / "images" / "val" / "0.png")
    out = runner.invoke(app, ["predict", str(blob), image, "--tiles", "4x4", "--json"])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.stdout)["results"][0]["detections"]) == 1
    maps = {}
    for args in ([], ["--tiles", "4x4", "--overlap", "0.1"]):
        out = runner.invoke(app, ["val", str(blob), str(root / "data.yaml"), "--json", *args])
        assert out.exit_code == 0, out.output
        doc = json.loads(out.stdout)
        maps[bool(args)] = doc["map50"]
    assert doc["tiles"] == {"tiles": "4x4", "tile": None, "overlap": 0.1}
    assert maps[False] == 0.0 and maps[True] > 0.9
