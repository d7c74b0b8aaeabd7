"""The demo's live step: the model on the synthetic conveyor, with video, events and summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_live_step(workdir: str | Path, model_path: str | Path, *, quick: bool) -> dict[str, Any]:
    """Run ``model_path`` on the synthetic belt and write ``workdir/live/``.

    Writes ``live.mp4`` (annotated), ``events.jsonl`` (one line per frame) and ``ng/`` (NG
    snapshots with their events); the frames are rendered as fast as the loop takes them (not
    paced like a camera), so every frame is processed and the output is the same on every run.

    Args:
        workdir: the demo's work folder.
        model_path: an ONNX model (classifier or detector) with its spec.
        quick: fewer, smaller frames (CI and tests).

    Returns:
        The loop's summary (SPEC's fields, plus the files written under ``outputs``).
    """
    from toolkit.live.loop import LoopOptions
    from toolkit.live.run import Outputs, run_live

    out = Path(workdir) / "live"
    out.mkdir(parents=True, exist_ok=True)
    snapshots = out / "ng"
    # The demo owns this folder: a rerun starts from an empty one.
    if snapshots.is_dir():
        for old in snapshots.iterdir():
            if old.suffix in (".jpg", ".json") and old.is_file():
                old.unlink()
    # The first parts with defects reach the camera after ~60 frames: quick runs see some.
    frames, size = (150, "240x320") if quick else (300, "480x640")
    return run_live(
        model_path,
        f"synthetic:paced=0,size={size},fps=30,seed=0",
        backend="ort-cpu",
        options=LoopOptions(max_frames=frames),
        outputs=Outputs(
            save=out / "live.mp4",
            events=out / "events.jsonl",
            snapshots=snapshots,
            show=False,
            force=True,
        ),
    )
