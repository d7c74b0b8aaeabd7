"""``--explain``: NG snapshots get heatmaps off the hot path, within a budget, counted."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from _live_helpers import write_video

from toolkit.errors import BadInputError
from toolkit.live.run import Outputs, run_live


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mp4", n=40, size=(64, 80))


def test_ng_snapshots_get_heatmaps_within_the_budget(
    tiny_onnx: Path, clip: Path, tmp_path: Path
) -> None:
    snaps = tmp_path / "ng"
    base = run_live(tiny_onnx, str(clip), backend="ort-cpu", reject="0,1,2",
                    outputs=Outputs(show=False))  # fmt: skip
    s = run_live(
        tiny_onnx, str(clip), backend="ort-cpu", reject="0,1,2",  # every frame is NG
        outputs=Outputs(snapshots=snaps, show=False, explain="occlusion", explain_budget=0.5),
    )  # fmt: skip
    ex = s["explain"]
    # every NG frame was offered once: computed, or skipped (over budget) and counted
    assert s["ng"] == 40 and ex["submitted"] + ex["skipped"] == 40
    assert ex["written"] == ex["done"] >= 1 and ex["method"] == "occlusion"
    heats = sorted(snaps.glob("*_heat.jpg"))
    assert len(heats) == ex["written"]
    for h in heats:  # beside its snapshot, the frame's size, and a map in [0, 1]
        snap = h.with_name(h.name.replace("_heat.jpg", ".jpg"))
        assert snap.is_file()
        assert cv2.imread(str(h)).shape == cv2.imread(str(snap)).shape
        heat = np.load(h.with_suffix(".npy"))
        assert heat.shape == (64, 80) and 0 <= heat.min() <= heat.max() <= 1
    # the cost, reported (not asserted: a shared machine's timings are not a test)
    print(f"\nFPS without heatmaps {base['fps']}, with --explain occlusion at 0.5: {s['fps']}; "
          f"{ex['done']} maps, {ex['skipped']} skipped, {ex['busy_seconds']} s busy")  # fmt: skip


def test_explain_settings_checked_before_the_model(tiny_onnx: Path, clip: Path, tmp_path: Path):
    with pytest.raises(BadInputError, match="give --snapshots"):
        run_live(tiny_onnx, str(clip), outputs=Outputs(show=False, explain="occlusion"))
    with pytest.raises(BadInputError, match="--explain must be one of"):
        run_live(tiny_onnx, str(clip), outputs=Outputs(snapshots=tmp_path, explain="magic"))
    with pytest.raises(BadInputError, match="--explain-budget"):
        out = Outputs(snapshots=tmp_path, explain="occlusion", explain_budget=0)
        run_live(tiny_onnx, str(clip), outputs=out)
