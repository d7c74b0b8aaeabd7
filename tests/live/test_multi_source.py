"""A station: several sources on one model, batched into one inference call, routed back."""

from __future__ import annotations

import json
import subprocess
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from _classify_models import RGB_LABELS, channel_mean_onnx, color_image, write_image
from _classify_models import write_video as write_color_video
from _live_helpers import count_video_frames, edgetk, read_events, wait_for_lines

from toolkit.backends import open_session
from toolkit.backends.base import Session
from toolkit.errors import BadInputError
from toolkit.live.feeds import SourceSpec
from toolkit.live.loop import LoopOptions
from toolkit.live.run import Outputs, run_live


class CountingSession(Session):
    """Wraps a session and records the batch size of every inference call."""

    backend = "counting"

    def __init__(self, inner: Session) -> None:
        self.inner, self.calls = inner, []
        self.spec, self.inputs, self.outputs = inner.spec, inner.inputs, inner.outputs
        self._lock = threading.Lock()

    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            self.calls.append(next(iter(inputs.values())).shape[0])
        return self.inner.infer(inputs)

    def _close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def color_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # top-1 is the frame's colour; red and green are "defects" below (--reject)
    return channel_mean_onnx(tmp_path_factory.mktemp("m") / "rgb.onnx", softmax=True)


def _folder(root: Path, color: str, n: int) -> Path:
    for i in range(n):
        write_image(root / f"{i:03d}.png", color_image(color, (24, 32)))
    return root


def test_four_file_sources_batched_and_routed(color_model: Path, tmp_path: Path) -> None:
    sizes = {"red": 5, "green": 7, "blue": 9}
    folders = {c: _folder(tmp_path / c, c, n) for c, n in sizes.items()}
    cycle = write_color_video(tmp_path / "cycle.avi", 12)  # red, green, blue, red...
    specs = [SourceSpec(str(folders[c]), name=c) for c in sizes] + [
        SourceSpec(str(cycle), name="cycle")
    ]
    ev = tmp_path / "ev.jsonl"
    with open_session(color_model, "ort-cpu") as inner:
        sess = CountingSession(inner)
        s = run_live(
            color_model, specs, session=sess, reject="red,green",
            outputs=Outputs(events=ev, show=False), options=LoopOptions(warmup=0),
        )  # fmt: skip
    events = read_events(ev)
    # complete: every frame of every source, once, in order per source
    by_source: dict[str, list[dict]] = {}
    for e in events:
        by_source.setdefault(e["source"], []).append(e)
    assert {k: len(v) for k, v in by_source.items()} == {**sizes, "cycle": 12}
    for name, evs in by_source.items():
        assert [e["frame"] for e in evs] == list(range(len(evs)))
        for e in evs:  # routed right: the top class is the colour of that source's frame
            want = RGB_LABELS[e["frame"] % 3] if name == "cycle" else name
            assert e["top"][0]["label"] == want, (name, e)
            assert e["verdict"] == ("OK" if want == "blue" else "NG")
    # batched: the four sources share calls, up to one frame each
    assert max(sess.calls) == 4 and sum(sess.calls) == 33
    assert s["inference_calls"] == len(sess.calls) < 33
    assert s["batch"] == 4 and s["frames"] == 33
    assert {n: v["frames"] for n, v in s["sources"].items()} == {**sizes, "cycle": 12}
    assert s["sources"]["blue"]["ok"] == 9 and s["sources"]["red"]["ng"] == 5
    assert s["sources"]["cycle"]["ng"] == 8 and s["ng"] == 5 + 7 + 8
    assert s["counts"] == {"red": 5 + 4, "green": 7 + 4}


def test_per_source_overrides(color_model: Path, tmp_path: Path) -> None:
    red = _folder(tmp_path / "r", "red", 3)
    specs = [
        SourceSpec(str(red), name="strict"),
        SourceSpec(str(red), name="lenient", reject="green"),  # red is fine on this line
        SourceSpec(str(red), name="unsure", conf=1.0),  # softmax of 10x means is below 1
    ]
    s = run_live(color_model, specs, backend="ort-cpu", reject="red",
                 outputs=Outputs(show=False))  # fmt: skip
    assert {n: v["ng"] for n, v in s["sources"].items()} == {"strict": 3, "lenient": 0, "unsure": 0}


def test_source_names_made_unique_and_checked(color_model: Path, tmp_path: Path) -> None:
    red = _folder(tmp_path / "r", "red", 2)
    s = run_live(color_model, [str(red), str(red)], backend="ort-cpu",
                 outputs=Outputs(show=False))  # fmt: skip
    assert sorted(s["sources"]) == sorted([str(red), f"{red}-2"])
    with pytest.raises(BadInputError, match="unique: cam"):
        run_live(color_model, [SourceSpec(str(red), name="cam")] * 2, backend="ort-cpu")
    with pytest.raises(BadInputError, match="source name 'a b'"):
        run_live(color_model, [SourceSpec(str(red), name="a b")], backend="ort-cpu")


def test_station_video_per_source(color_model: Path, tmp_path: Path) -> None:
    a, b = _folder(tmp_path / "a", "red", 3), _folder(tmp_path / "b", "blue", 4)
    out = tmp_path / "out.mp4"
    s = run_live(color_model, [SourceSpec(str(a), name="a"), SourceSpec(str(b), name="b")],
                 backend="ort-cpu", outputs=Outputs(save=out, show=False))  # fmt: skip
    assert count_video_frames(tmp_path / "out.a.mp4") == 3
    assert count_video_frames(tmp_path / "out.b.mp4") == 4
    assert s["video"]["per_source"]["b"]["frames"] == 4


@pytest.mark.slow
def test_a_killed_rtsp_camera_does_not_stall_the_others(tiny_onnx: Path, tmp_path: Path,
                                                         rtsp_server) -> None:  # fmt: skip

    server = rtsp_server()
    ev = tmp_path / "ev.jsonl"
    cmd = edgetk(
        "run", str(tiny_onnx), "-s", f"rtsp://127.0.0.1:{rtsp_server.port}/test",
        *[a for i in range(3) for a in ("-s", f"synthetic:fps=10,size=120x160,seed={i}")],
        "--events", str(ev), "--headless", "--json", "--reconnect-timeout", "2",
        "--duration", "7",
    )  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(ev, 40, proc)
        server.kill()  # the RTSP camera goes away for good
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    s = json.loads(out)
    assert proc.returncode == 1 and "source lost: no frame from rtsp://" in err, err
    rtsp = next(n for n in s["sources"] if n.startswith("rtsp://"))
    assert s["sources"][rtsp]["gave_up"] and s["stopped_by"] == "duration"
    gap = s["sources"][rtsp]["gaps"][-1]
    events = read_events(ev)
    belts = [n for n in s["sources"] if n != rtsp]
    assert len(belts) == 3
    # While the camera was gone, each belt went on at its rate, and fresh.

    start = datetime.fromisoformat(gap["start"].replace("Z", "+00:00"))
    for name in belts:
        during = [
            e for e in events
            if e["source"] == name
            and 0 <= (datetime.fromisoformat(e["ts"].replace("Z", "+00:00")) - start).total_seconds()
            <= gap["seconds"]
        ]  # fmt: skip
        assert len(during) >= 0.6 * 10 * gap["seconds"], (name, len(during), gap)
        assert s["sources"][name]["frame_age_ms"]["p99"] < 500


def test_per_part_verdicts_one_event_per_part(tmp_path: Path) -> None:
    from _live_helpers import const_detector
    from _live_helpers import write_video as write_dot_video

    det = const_detector(tmp_path / "det.onnx")  # the same scratch and spot in every frame
    clip = write_dot_video(tmp_path / "clip.mp4", n=20, size=(64, 64))
    ev, snaps = tmp_path / "ev.jsonl", tmp_path / "ng"
    out = Outputs(events=ev, snapshots=snaps, show=False)
    s = run_live(det, str(clip), backend="ort-cpu", verdict="per-part", outputs=out)
    parts = read_events(ev)
    # 20 NG frames, but two parts (each defect box tracked as one), judged at the end
    assert s["frames"] == 20 and s["ng"] == 20
    assert [p["kind"] for p in parts] == ["part", "part"] and s["parts"] == {"ok": 0, "ng": 2}
    assert sorted(p["defects"][0] for p in parts) == ["scratch", "spot"]
    assert all(p["verdict"] == "NG" and p["frames"] == 20 for p in parts)
    assert s["counts"] == {"scratch": 1, "spot": 1}
    assert len(list(snaps.glob("*_p*.jpg"))) == 2  # each part's best snapshot
    # --part-frames: judged after 5 frames in view, and not again
    s = run_live(det, str(clip), backend="ort-cpu", verdict="per-part", part_frames=5,
                 outputs=Outputs(events=tmp_path / "k.jsonl", show=False))  # fmt: skip
    parts = read_events(tmp_path / "k.jsonl")
    assert len(parts) == 2 and {p["last_frame"] for p in parts} == {4}


def test_tiles_in_the_live_loop_find_small_defects(tmp_path: Path) -> None:
    """The blob detector fires only on objects of 12+ input pixels: a 24 px defect on a
    1024 px frame at imgsz 256 is 6 px (missed) unless the frame is cut into 256 px tiles."""
    from _blob_detector import blob_detector, frame_with

    from toolkit.tasks.boxes import box_iou
    from toolkit.tasks.tiles import TileGrid

    model = blob_detector(tmp_path / "blob.onnx", imgsz=256)
    defect = (600, 150, 624, 174)
    folder = tmp_path / "frames"
    for i in range(3):
        write_image(folder / f"{i}.png", frame_with([defect], hw=(1024, 1024)))
    ev = tmp_path / "ev.jsonl"
    with open_session(model, "ort-cpu") as inner:
        sess = CountingSession(inner)
        s = run_live(model, str(folder), session=sess, outputs=Outputs(events=ev, show=False),
                     options=LoopOptions(warmup=0, tiles=TileGrid.parse(None, 256, 0.2)))  # fmt: skip
    events = read_events(ev)
    assert s["ng"] == 3 and all(len(e["detections"]) == 1 for e in events)
    box = np.array([events[0]["detections"][0]["xyxy"]], np.float32)
    assert box_iou(box, np.array([defect], np.float32))[0, 0] >= 0.9  # in frame pixels
    assert set(sess.calls) == {25}  # a frame's 5x5 tiles in one call
    plain = run_live(model, str(folder), backend="ort-cpu", outputs=Outputs(show=False))
    assert plain["ng"] == 0


def test_tiles_on_a_classifier_are_refused_before_anything_opens(
    color_model: Path, tmp_path: Path
) -> None:
    from toolkit.tasks.tiles import TileGrid

    red = _folder(tmp_path / "r", "red", 2)
    out = Outputs(save=tmp_path / "v.mp4", show=False)
    with pytest.raises(BadInputError, match="apply to detection models"):
        run_live(color_model, str(red), backend="ort-cpu", outputs=out,
                 options=LoopOptions(tiles=TileGrid.parse("2x2", None, 0.2)))  # fmt: skip
    assert not [p for p in tmp_path.iterdir() if p.name != "r"]  # no video, no temp file
