"""``edgetk run``'s station options: batching across sources, rect inputs, per-part verdicts."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from toolkit.cli.tile_options import OverlapOpt, TileOpt, TilesOpt

BatchWaitOpt = Annotated[
    float,
    typer.Option(
        "--batch-wait-ms",
        help="How long a batch waits for more live frames after its first (ms).",
    ),
]
SquareOpt = Annotated[
    bool,
    typer.Option("--square", help="Letterbox to the square input even for a dynamic H/W model."),
]
VerdictOpt = Annotated[
    str,
    typer.Option(
        "--verdict", help="frame (one verdict per frame) or per-part (one per tracked part)."
    ),
]
MinFramesOpt = Annotated[
    int,
    typer.Option("--min-frames", help="Per-part: frames a defect must be seen in to reject."),
]
PartFramesOpt = Annotated[
    int | None,
    typer.Option("--part-frames", help="Per-part: a verdict after K frames in view at most."),
]


def station_options(
    batch_wait_ms: BatchWaitOpt = 5.0,
    square: SquareOpt = False,
    verdict: VerdictOpt = "frame",
    min_frames: MinFramesOpt = 1,
    part_frames: PartFramesOpt = None,
    tiles: TilesOpt = None,
    tile: TileOpt = None,
    overlap: OverlapOpt = 0.2,
) -> dict[str, Any]:
    """The options as run_live's keywords and LoopOptions' (``loop_*``)."""
    from toolkit.cli.tile_options import tile_grid
    from toolkit.errors import BadInputError
    from toolkit.live.feeds import check_verdict

    if not 0 <= batch_wait_ms <= 1000:
        raise BadInputError(f"--batch-wait-ms must be 0 to 1000, got {batch_wait_ms:g}")
    check_verdict(verdict, min_frames, part_frames)
    return {
        "verdict": verdict,
        "min_frames": min_frames,
        "part_frames": part_frames,
        "loop_batch_wait_ms": batch_wait_ms,
        "loop_square": square,
        "loop_tiles": tile_grid(tiles, tile, overlap),
    }
