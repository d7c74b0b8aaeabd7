"""``e2e_benchmark``: the live loop's own stages on a real file, through the session given."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from _live_helpers import const_detector, count_video_frames, write_video

from toolkit.backends import open_session
from toolkit.backends.base import Session
from toolkit.bench.e2e import e2e_benchmark, unpaced
from toolkit.errors import BadInputError

ROW_KEYS = {
    "model", "backend", "precision", "batch", "source", "frames", "seconds", "fps",
    "frame_age_ms", "stages", "dropped", "warmup",
}  # fmt: skip
STAGES = {"capture", "preprocess", "infer", "postprocess", "sinks", "end_to_end"}


class CountingSession(Session):
    """Wraps a session and counts its inference calls (and the frames in them)."""

    backend = "counting"

    def __init__(self, inner: Session) -> None:
        self.inner, self.calls, self.images = inner, 0, 0
        self.spec, self.inputs, self.outputs = inner.spec, inner.inputs, inner.outputs
        self.precision = inner.precision

    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        self.images += next(iter(inputs.values())).shape[0]
        return self.inner.infer(inputs)

    def _close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a 30-frame video and a constant detector (and nothing else)."""
    folder = tmp_path_factory.mktemp("e2e")
    write_video(folder / "clip.mp4", n=30)
    const_detector(folder / "det.onnx")
    return folder


def _check_row(row: dict, frames: int) -> None:
    assert set(row) == ROW_KEYS
    assert (row["frames"], row["dropped"]) == (frames, 0)
    assert set(row["stages"]) == STAGES
    for st in row["stages"].values():
        assert {"mean", "p50", "p99"} <= set(st)
        assert 0 <= st["p50"] <= st["p99"]
    assert row["stages"]["infer"]["p50"] > 0
    assert set(row["frame_age_ms"]) == {"p50", "p99"}
    assert row["fps"] > 0 and row["seconds"] > 0


@pytest.mark.parametrize(("batch", "ran"), [(1, 1), (4, 4)])
def test_classifier_infers_through_the_given_session(
    tiny_onnx: Path, inputs: Path, batch: int, ran: int
) -> None:
    clip = inputs / "clip.mp4"
    n = count_video_frames(clip)
    with CountingSession(open_session(tiny_onnx, "ort-cpu")) as sess:
        row = e2e_benchmark(str(tiny_onnx), str(clip), batch=batch, session=sess)
        assert not sess._closed  # the caller's session is the caller's to close
    _check_row(row, n)
    assert (row["model"], row["source"]) == (str(tiny_onnx), str(clip))
    assert (row["backend"], row["batch"]) == ("counting", ran)
    # The loop's warm-up calls, then one call per batch of frames, every frame once.
    assert sess.calls == row["warmup"] + math.ceil(row["frames"] / row["batch"])
    assert sess.images == row["warmup"] + row["frames"]


def test_detector_static_batch_and_max_frames(inputs: Path) -> None:
    det = inputs / "det.onnx"
    with CountingSession(open_session(det, "ort-cpu")) as sess:
        # A static-batch model runs its own batch (1), as in the live loop.
        row = e2e_benchmark(
            str(det), str(inputs / "clip.mp4"), batch=4, max_frames=12, session=sess
        )
    _check_row(row, 12)
    assert row["batch"] == 1
    assert sess.calls == row["warmup"] + 12


def test_opens_the_model_itself_and_writes_nothing(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = sorted(p.name for p in inputs.iterdir())
    monkeypatch.chdir(tmp_path)
    # Whatever a run might write (temporary files, a cache under the home) would land here.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for var in ("HOME", "XDG_CACHE_HOME", "TMPDIR"):
        monkeypatch.setenv(var, str(tmp_path))
    row = e2e_benchmark(str(inputs / "det.onnx"), str(inputs / "clip.mp4"))
    _check_row(row, count_video_frames(inputs / "clip.mp4"))
    assert (row["backend"], row["precision"]) == ("ort-cpu", "fp32")
    assert os.getcwd() == str(tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert sorted(p.name for p in inputs.iterdir()) == before


def test_synthetic_is_unpaced(tiny_onnx: Path) -> None:
    row = e2e_benchmark(str(tiny_onnx), "synthetic", max_frames=5)
    _check_row(row, 5)
    assert row["source"] == "synthetic"
    assert unpaced("synthetic") == "synthetic:paced=0"
    assert unpaced("synthetic:fps=15,size=64x64") == "synthetic:fps=15,size=64x64,paced=0"
    assert unpaced("synthetic:paced=1") == "synthetic:paced=1"  # asked for: kept
    assert unpaced("clip.mp4") == "clip.mp4"


def test_refuses_no_frames(tiny_onnx: Path) -> None:
    with pytest.raises(BadInputError, match="max-frames"):
        e2e_benchmark(str(tiny_onnx), "synthetic", max_frames=0)
