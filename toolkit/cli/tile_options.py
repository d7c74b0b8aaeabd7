"""Tile options shared by ``predict``, ``val`` and ``run``: ``--tiles CxR`` or ``--tile N``,
with ``--overlap`` (see :mod:`toolkit.tasks.tiles`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from toolkit.tasks.tiles import TileGrid

TilesOpt = Annotated[
    str | None,
    typer.Option(
        "--tiles",
        help="Detection: cut each frame (or its ROI) into columns x rows tiles, e.g. 2x2; "
        "the tiles go into one batched call, boxes are merged (NMS, seam fusion).",
    ),
]
TileOpt = Annotated[
    int | None,
    typer.Option("--tile", help="Detection: cut each frame into square tiles of N pixels."),
]
OverlapOpt = Annotated[
    float,
    typer.Option(
        "--overlap",
        help="With --tiles / --tile: the least share of a tile's side overlapping its "
        "neighbour's (0 to 0.9).",
    ),
]


def tile_grid(tiles: str | None, tile: int | None, overlap: float) -> TileGrid | None:
    """The grid the options ask for (None: no tiling); a bad value is a BadInputError."""
    from toolkit.tasks.tiles import TileGrid

    return TileGrid.parse(tiles, tile, overlap)
