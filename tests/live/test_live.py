"""The live loop on real files: order, events, sinks, verdicts, slow models, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from _live_helpers import SlowSession, count_video_frames, read_events, write_video

from toolkit.backends import open_session
from toolkit.errors import BadInputError, OutputExistsError
from toolkit.live.loop import LoopOptions
from toolkit.live.redact import redact_url
from toolkit.live.run import Outputs, run_live
from toolkit.live.stats import Timings

SUMMARY_KEYS = {"frames", "dropped", "fps", "ok", "ng", "latency_ms", "frame_age_ms"}
STAGES = {"capture", "preprocess", "infer", "postprocess", "sinks", "end_to_end"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://admin:secret@10.0.0.5:554/s", "rtsp://***@10.0.0.5:554/s"),
        ("http://token@cam.local/mjpg", "http://***@cam.local/mjpg"),
        ("rtsp://cam/s?user=a&password=secret", "rtsp://cam/s?user=a&password=***"),
        (
            "gst:rtspsrc location=rtsp://u:secret@h/x user-pw=secret ! appsink",
            "gst:rtspsrc location=rtsp://***@h/x user-pw=*** ! appsink",
        ),
        ("rtsp://10.0.0.5/stream", "rtsp://10.0.0.5/stream"),
        ("clip.mp4", "clip.mp4"),
    ],
)
def test_redact_url(text: str, expected: str) -> None:
    assert redact_url(text) == expected
    assert "secret" not in redact_url(text)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", n=60)


def test_file_source_in_order_with_all_sinks(tiny_onnx: Path, clip: Path, tmp_path: Path) -> None:
    out = Outputs(
        save=tmp_path / "out.mp4",
        events=tmp_path / "ev.jsonl",
        snapshots=tmp_path / "ng",
        show=False,
    )
    s = run_live(tiny_onnx, str(clip), backend="ort-cpu", reject="spot", outputs=out)
    assert set(s) >= SUMMARY_KEYS
    assert (s["frames"], s["dropped"], s["stopped_by"], s["decode_errors"]) == (60, 0, "end", 0)
    assert s["ok"] + s["ng"] == 60
    assert set(s["latency_ms"]) == STAGES
    for st in s["latency_ms"].values():
        assert set(st) == {"mean", "p50", "p90", "p99", "max"}
        assert 0 <= st["p50"] <= st["p99"] <= st["max"]
    assert set(s["frame_age_ms"]) == {"p50", "p99"}

    events = read_events(tmp_path / "ev.jsonl")
    assert [e["frame"] for e in events] == list(range(60))  # every frame, in order
    for e in events:
        assert set(e) == {"ts", "frame", "source", "verdict", "top"}
        assert e["ts"].endswith("Z") and e["source"] == str(clip)
        assert e["verdict"] == ("NG" if e["top"][0]["label"] == "spot" else "OK")
        assert set(e["top"][0]) == {"class_id", "label", "confidence"}
    assert sum(e["verdict"] == "NG" for e in events) == s["ng"]

    # The video: every frame, at the source's FPS, the source's size.
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(20.0, abs=0.5)
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (160, 120)
    cap.release()
    assert count_video_frames(tmp_path / "out.mp4") == 60
    assert not list(tmp_path.glob(".out*"))  # no temporary file left behind

    # Snapshots: one annotated jpg + its event per NG frame.
    jpgs = sorted((tmp_path / "ng").glob("*.jpg"))
    assert len(jpgs) == s["ng"]
    for jpg in jpgs[:3]:
        assert cv2.imread(str(jpg)).shape == (120, 160, 3)
    ev = {e["frame"]: e for e in events}
    snap = json.loads(jpgs[0].with_suffix(".json").read_text())
    assert snap == ev[snap["frame"]] and snap["verdict"] == "NG"


def test_events_filter_ng_max_frames_and_batching(
    tiny_onnx: Path, clip: Path, tmp_path: Path
) -> None:
    # reject "ok" too: every frame is NG (all three labels rejected)
    out = Outputs(events=tmp_path / "all.jsonl", show=False)
    s = run_live(
        tiny_onnx, str(clip), backend="ort-cpu", reject="0,1,2", outputs=out,
        options=LoopOptions(max_frames=25, batch=4),
    )  # fmt: skip
    assert (s["frames"], s["ng"], s["stopped_by"], s["batch"]) == (25, 25, "max_frames", 4)
    assert len(read_events(tmp_path / "all.jsonl")) == 25
    out = Outputs(events=tmp_path / "ng.jsonl", events_filter="ng", show=False)
    s = run_live(tiny_onnx, str(clip), backend="ort-cpu", reject="scratch", conf=1.0, outputs=out)
    # conf 1.0: nothing is sure enough to be NG, so the NG-only file is empty
    assert (s["frames"], s["ng"]) == (60, 0)
    assert (tmp_path / "ng.jsonl").read_text() == ""


def test_roi_crops_what_a_classifier_sees(tiny_onnx: Path, tmp_path: Path) -> None:
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 100:] = (0, 0, 255)
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), img)
    ev = tmp_path / "ev.jsonl"
    run_live(
        tiny_onnx,
        str(folder),
        backend="ort-cpu",
        roi="100,0,100,100",
        outputs=Outputs(events=ev, show=False),
    )
    with open_session(tiny_onnx, "ort-cpu") as sess:
        from toolkit.tasks.base import make_task, run_task

        [expected] = run_task(sess, make_task(sess.spec, topk=5), [img[:, 100:]])
    assert read_events(ev)[0]["top"] == expected.to_dict()["top"]


def test_image_folder_skips_and_counts_bad_files(tiny_onnx: Path, tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((40, 50, 3), i * 40, np.uint8))
    (folder / "2.png").write_bytes(b"not an image")
    s = run_live(tiny_onnx, str(folder), backend="ort-cpu", outputs=Outputs(show=False))
    assert (s["frames"], s["decode_errors"], s["dropped"]) == (3, 1, 0)


def test_slow_model_live_source_drops_file_source_does_not(tiny_onnx: Path, clip: Path) -> None:
    delay = 0.06  # a 16 FPS model behind a 30 FPS camera
    with SlowSession(open_session(tiny_onnx, "ort-cpu"), delay) as slow:
        live = run_live(
            tiny_onnx, "synthetic:fps=30,size=120x160", session=slow,
            options=LoopOptions(max_frames=20, warmup=0), outputs=Outputs(show=False),
        )  # fmt: skip
        assert live["live"] and live["frames"] == 20
        assert live["dropped"] > 5  # the camera ran on while the model was busy
        # Never a backlog: a frame waits at most about one inference before its own (a queue
        # of every frame would age by ~27 ms more with each of the 20: over half a second).
        infer_p99 = live["latency_ms"]["infer"]["p99"]
        assert live["frame_age_ms"]["p99"] < 3 * infer_p99 + 50
        assert live["latency_ms"]["infer"]["p50"] >= 1000 * delay
        f = run_live(
            tiny_onnx, str(clip), session=slow, options=LoopOptions(max_frames=30, warmup=0),
            outputs=Outputs(show=False),
        )  # fmt: skip
        assert (f["live"], f["frames"], f["dropped"]) == (False, 30, 0)


def test_unpaced_synthetic_is_deterministic(tiny_onnx: Path, tmp_path: Path) -> None:
    from toolkit.demo.live_step import run_live_step

    s = run_live_step(tmp_path, tiny_onnx, quick=True)
    assert (s["frames"], s["dropped"], s["source"]) == (150, 0, "synthetic")
    events = read_events(tmp_path / "live" / "events.jsonl")
    assert [e["frame"] for e in events] == list(range(150))
    assert count_video_frames(tmp_path / "live" / "live.mp4") == 150
    assert len(list((tmp_path / "live" / "ng").glob("*.jpg"))) == s["ng"]
    again = run_live_step(tmp_path, tiny_onnx, quick=True)  # a rerun overwrites its outputs
    assert read_events(tmp_path / "live" / "events.jsonl") == [
        {**e, "ts": a["ts"]}
        for e, a in zip(events, read_events(tmp_path / "live" / "events.jsonl"), strict=True)
    ]
    assert again["ng"] == s["ng"]


@pytest.mark.parametrize(
    ("source", "kwargs", "error", "match"),
    [
        ("no/such/file.mp4", {}, BadInputError, "not found"),
        ("csi://x", {}, BadInputError, "csi://0"),
        ("synthetic:speed=3", {}, BadInputError, "unknown synthetic option"),
        ("{clip}", {"roi": "1,2,3"}, BadInputError, "--roi"),
        ("{clip}", {"reject": "rust"}, BadInputError, "--reject rust: no such class; the model"),
        ("{clip}", {"conf": 1.5}, BadInputError, "--conf"),
    ],
)
def test_bad_input(
    tiny_onnx: Path, clip: Path, source: str, kwargs: dict, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        run_live(
            tiny_onnx,
            source.format(clip=clip),
            backend="ort-cpu",
            outputs=Outputs(show=False),
            **kwargs,
        )


@pytest.mark.parametrize("source", ["csi://0", "gst:videotestsrc ! videoconvert ! appsink"])
def test_csi_and_gst_need_gstreamer(tiny_onnx: Path, source: str) -> None:
    from toolkit.live.capture import has_gstreamer

    if has_gstreamer():
        pytest.skip("this OpenCV has GStreamer (the error path cannot be shown)")
    with pytest.raises(BadInputError, match="GStreamer: NO"):
        run_live(tiny_onnx, source, backend="ort-cpu", outputs=Outputs(show=False))


def test_existing_outputs_need_force(tiny_onnx: Path, clip: Path, tmp_path: Path) -> None:
    ev = tmp_path / "ev.jsonl"
    ev.write_text("keep\n")
    with pytest.raises(OutputExistsError):
        run_live(tiny_onnx, str(clip), backend="ort-cpu", outputs=Outputs(events=ev, show=False))
    assert ev.read_text() == "keep\n"
    s = run_live(
        tiny_onnx, str(clip), backend="ort-cpu", options=LoopOptions(max_frames=3),
        outputs=Outputs(events=ev, show=False, force=True),
    )  # fmt: skip
    assert len(read_events(ev)) == s["frames"] == 3


def test_timings_reservoir_is_bounded() -> None:
    t = Timings(capacity=500)
    before = t._buf.nbytes
    for i in range(20_000):
        t.add((i % 100) / 1000)  # 0..99 ms, uniform
    assert t._buf.nbytes == before
    s = t.summary()
    assert s["mean"] == pytest.approx(49.5, abs=0.01) and s["max"] == pytest.approx(99.0)
    assert s["p50"] == pytest.approx(49.5, abs=8)


def test_timings_without_samples_are_zero() -> None:
    zero = {"mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    assert Timings().summary() == zero


def test_detector_events_verdicts_roi_and_boxes(tmp_path: Path) -> None:
    from _live_helpers import DET_OBJECTS, const_detector

    det = const_detector(tmp_path / "det.onnx")
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((64, 64, 3), 60 + i, np.uint8))
    ev, snaps = tmp_path / "ev.jsonl", tmp_path / "ng"
    s = run_live(
        det, str(folder), backend="ort-cpu", reject="spot",
        outputs=Outputs(events=ev, snapshots=snaps, show=False),
    )  # fmt: skip
    assert (s["frames"], s["ng"]) == (3, 3)
    e = read_events(ev)[0]
    assert set(e) == {"ts", "frame", "source", "verdict", "detections"}
    got = sorted((d["label"], d["class_id"], round(d["confidence"], 3)) for d in e["detections"])
    assert got == [("scratch", 0, 0.9), ("spot", 1, 0.8)]
    for d in e["detections"]:
        box = next(b for b, c, _ in DET_OBJECTS if c == d["class_id"])
        np.testing.assert_allclose(d["xyxy"], box, atol=0.5)
    # The snapshot shows the boxes: pixels along a box edge are no longer the flat gray.
    snap = cv2.imread(str(next(snaps.glob("*.jpg"))))
    assert np.abs(snap[4:24, 4].astype(int) - 60).max() > 40
    # ROI around the scratch only: the spot is outside, so the frame is OK and the event has
    # only the scratch; a higher --conf than the spot's score does the same.
    ev2 = tmp_path / "ev2.jsonl"
    s = run_live(
        det, str(folder), backend="ort-cpu", reject="spot", roi="0,0,30,30",
        outputs=Outputs(events=ev2, show=False),
    )  # fmt: skip
    assert (s["ok"], s["ng"]) == (3, 0)
    assert [d["label"] for d in read_events(ev2)[0]["detections"]] == ["scratch"]
    s = run_live(
        det, str(folder), backend="ort-cpu", reject="spot", conf=0.85, outputs=Outputs(show=False)
    )
    assert s["ng"] == 0
    # Default reject: every detected class is a defect.
    s = run_live(det, str(folder), backend="ort-cpu", outputs=Outputs(show=False))
    assert s["ng"] == 3


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--source", "no/such/dir"], "source not found"),
        (["--source", "{clip}", "--max-frames", "0"], "--max-frames must be at least 1"),
        (["--source", "{clip}", "--events-filter", "bad"], "--events-filter"),
        (["--source", "{clip}", "--save", "{tmp}/out.gif"], "cannot write '.gif'"),
    ],
)
def test_cli_bad_input_exit_2(
    tiny_onnx: Path, clip: Path, tmp_path: Path, args: list, match: str
) -> None:
    from typer.testing import CliRunner

    from toolkit.cli.app import app

    argv = ["run", str(tiny_onnx), "--headless", *(a.format(clip=clip, tmp=tmp_path) for a in args)]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.stderr
    assert match in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_json_summary(tiny_onnx: Path, clip: Path) -> None:
    from typer.testing import CliRunner

    from toolkit.cli.app import app

    result = CliRunner().invoke(
        app,
        [
            "run",
            str(tiny_onnx),
            "--source",
            str(clip),
            "--headless",
            "--json",
            "--max-frames",
            "10",
        ],
    )
    assert result.exit_code == 0, result.stderr
    s = json.loads(result.stdout)
    assert (s["frames"], s["dropped"], s["stopped_by"]) == (10, 0, "max_frames")
    assert set(s) >= SUMMARY_KEYS


def test_a_sink_that_is_not_a_sink_is_refused_before_the_run() -> None:
    from toolkit.errors import BadInputError
    from toolkit.live.fanout import SinkFanout
    from toolkit.live.stop import StopFlag

    class OldStyle:  # the write(event, annotated) / close() shape of before
        def write(self, event, annotated):
            pass

        def close(self):
            pass

    with pytest.raises(BadInputError, match=r"not a toolkit\.live\.sinks\.Sink: OldStyle"):
        SinkFanout([OldStyle()], StopFlag())
