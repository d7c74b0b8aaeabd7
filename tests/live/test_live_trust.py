"""Trust on the line: no silent OK, no recording lost behind a success, a lost stream fails.

Real parts only: ONNX models made on the spot, real videos, a real RTSP server, real tmpfs
mounts for a full disk, the console script in a subprocess for signals and pipes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from _live_helpers import (
    SlowSession,
    const_detector,
    count_video_frames,
    read_events,
    wait_for_lines,
    write_video,
)
from typer.testing import CliRunner

from toolkit.backends import open_session
from toolkit.cli.app import app
from toolkit.errors import BadInputError
from toolkit.live.loop import LoopOptions
from toolkit.live.run import Outputs, run_live
from toolkit.live.sinks import VideoSink
from toolkit.tasks.classes import ModelClasses, parse_classes

EDGETK = str(Path(sys.executable).with_name("edgetk"))
DET_CLASSES = "the model has 0 scratch, 1 spot, 2 crack"
CLF_CLASSES = "the model has 0 ok, 1 scratch, 2 spot"
NEVER = "no frame could ever be NG"


def _cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def det(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real YOLOv8-layout detector (labels scratch, spot, crack) that sees two objects."""
    return const_detector(tmp_path_factory.mktemp("det") / "det.onnx")


@pytest.fixture(scope="module")
def clip64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "c64.mp4", n=8, size=(64, 64))


# --- 1. No silent OK ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reject", "99"], f"--reject 99: no such class; {DET_CLASSES}"),
        (["--classes", "99"], f"--classes 99: no such class; {DET_CLASSES}"),
        (["--reject", "rust"], f"--reject rust: no such class; {DET_CLASSES}"),
        (["--classes", "-1"], f"--classes -1: no such class; {DET_CLASSES}"),
        (["--roi", "100,0,10,10"], "--roi 100,0,10,10 lies outside the 64x64 frame"),
        (["--roi", "0,0,65,10"], "lies partly outside the 64x64 frame (x + w must be <= 64"),
        (
            ["--classes", "scratch", "--reject", "spot,crack"],
            f"--classes (0 scratch) keeps none of the --reject classes (1 spot, 2 crack): {NEVER}",
        ),
        (["--reject", ""], f"--reject names no class: {NEVER}"),
    ],
)
def test_detector_settings_that_cannot_work_exit_2(
    det: Path, clip64: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    ev = tmp_path / "ev.jsonl"
    r = _cli("run", det, "--source", clip64, "--headless", "--events", ev, *args)
    assert r.exit_code == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not ev.exists()  # refused before any output was opened


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reject", "99"], f"--reject 99: no such class; {CLF_CLASSES}"),
        (["--classes", "99"], f"--classes 99: no such class; {CLF_CLASSES}"),
        (["--roi", "1000,0,5,5"], "--roi 1000,0,5,5 lies outside the 160x120 frame"),
        (["--classes", "ok"], f"--classes keeps only good classes (0 ok): {NEVER}"),
        (
            ["--classes", "1", "--reject", "spot"],
            f"--classes (1 scratch) keeps none of the --reject classes (2 spot): {NEVER}",
        ),
        (
            ["--labels", "ok,good,normal"],
            f"every class of the model is a good one (0 ok, 1 good, 2 normal): {NEVER}",
        ),
    ],
)
def test_classifier_settings_that_cannot_work_exit_2(
    tiny_onnx: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    clip = write_video(tmp_path / "clip.mp4", n=4)
    ev = tmp_path / "ev.jsonl"
    r = _cli("run", tiny_onnx, "--source", clip, "--headless", "--events", ev, *args)
    assert r.exit_code == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not ev.exists()


def test_kept_classes_are_honoured_for_both_tasks(
    det: Path, tiny_onnx: Path, clip64: Path, tmp_path: Path
) -> None:
    # Detector: only the spot is kept and it is rejected, so every frame is NG on it alone.
    ev = tmp_path / "det.jsonl"
    s = run_live(det, str(clip64), classes="spot", reject="spot", outputs=Outputs(events=ev))
    assert (s["frames"], s["ng"]) == (8, 8)
    assert {d["label"] for e in read_events(ev) for d in e["detections"]} == {"spot"}
    # Classifier: the ranking is among the kept classes, so "ok" never is the top-1.
    ev = tmp_path / "clf.jsonl"
    s = run_live(
        tiny_onnx, str(clip64), classes="scratch,spot", reject="scratch,spot", conf=0.0,
        outputs=Outputs(events=ev),
    )  # fmt: skip
    assert (s["frames"], s["ng"]) == (8, 8)
    assert {t["label"] for e in read_events(ev) for t in e["top"]} <= {"scratch", "spot"}


def test_predict_uses_the_same_class_check(det: Path, tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.full((64, 64, 3), 90, np.uint8))
    r = _cli("predict", det, img, "--classes", "7")
    assert r.exit_code == 2, r.stderr
    assert f"--classes 7: no such class; {DET_CLASSES}" in r.stderr


def test_class_count_comes_from_the_output_when_there_are_no_labels(det: Path) -> None:
    with open_session(det, "ort-cpu") as session:
        spec = dataclasses.replace(session.spec, labels=())
        model = ModelClasses.of(spec, session.outputs)
    assert model.count == 3  # [1, 4 + 3, 16]
    assert parse_classes("2", model, "--reject") == frozenset({2})
    with pytest.raises(BadInputError, match=r"--reject 3: .* 3 classes without names \(ids 0-2\)"):
        parse_classes("3", model, "--reject")


# --- 2. A recording is never lost behind a success ---------------------------------------


@contextlib.contextmanager
def small_disk(folder: Path, size: str, *options: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted at ``folder`` (root only), unmounted at the end."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    folder.mkdir(parents=True, exist_ok=True)
    opts = ",".join([f"size={size}", *options])
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()[:200]}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.parametrize("size", ["200k", "1m"])
def test_disk_full_stops_with_exit_1_and_a_playable_video(
    tiny_onnx: Path, tmp_path: Path, size: str
) -> None:
    ev = tmp_path / "ev.jsonl"
    with small_disk(tmp_path / "disk", size) as disk:
        video = disk / "v.mp4"
        r = _cli(
            "run", tiny_onnx, "--source", "synthetic:size=240x320", "--save", video,
            "--events", ev, "--headless", "--json", "--duration", "60",
        )  # fmt: skip
        assert r.exit_code == 1, r.stderr
        s = json.loads(r.stdout)
        assert s["stopped_by"] == "sink_error" and s["exit_code"] == 1
        assert s["failed_sink"]["sink"] == "video" and "disk full" in s["failed_sink"]["error"]
        assert "video sink failed: disk full" in r.stderr
        if video.exists():  # what is left plays to its last frame, or nothing is left
            assert count_video_frames(video) == s["video"]["frames"] >= 1
            assert s["outputs"]["save"] == str(video)
        else:
            assert "save" not in s["outputs"]
        assert not [p for p in disk.iterdir() if p.name != "v.mp4"]  # no temp file behind
    assert len(read_events(ev)) == s["frames"]  # the other sink was finalized too


def test_events_on_a_full_disk_keep_whole_lines(tiny_onnx: Path, tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "16k") as disk:
        ev = disk / "ev.jsonl"
        r = _cli(
            "run", tiny_onnx, "--source", "synthetic:paced=0,size=64x64", "--events", ev,
            "--headless", "--json", "--max-frames", "100000",
        )  # fmt: skip
        assert r.exit_code == 1, r.stderr
        s = json.loads(r.stdout)
        assert s["failed_sink"]["sink"] == "events" and s["stopped_by"] == "sink_error"
        events = read_events(ev)  # parses: no half line at the end
        assert 0 < len(events) < s["frames"]
        assert [e["frame"] for e in events] == list(range(len(events)))


def test_broken_pipe_on_events_stdout_is_exit_1_not_a_traceback(tiny_onnx: Path) -> None:
    cmd = [
        EDGETK, "run", str(tiny_onnx), "--source", "synthetic:size=120x160", "--events", "-",
        "--headless", "--duration", "60",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        lines = [json.loads(proc.stdout.readline()) for _ in range(3)]
        proc.stdout.close()  # the reader (jq, a collector) goes away
        _, err_bytes = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    err = err_bytes.decode()
    assert [e["frame"] for e in lines] == [0, 1, 2]
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "BrokenPipeError" not in err
    assert "error: events sink failed: standard output was closed (broken pipe)" in err


def test_video_keeps_real_time_with_no_signal_frames(tmp_path: Path) -> None:
    """5 FPS of frames into a 10 FPS video, then a 2.2 s outage: the timeline holds."""
    sink = VideoSink(tmp_path / "g.mp4", 10.0, realtime=True)
    bright = np.full((48, 64, 3), 200, np.uint8)
    t0 = 1000.0
    for i in range(10):  # frames at 0.0, 0.2 ... 1.8 s
        sink.write({"ts": "2026-01-01T00:00:00.000Z", "frame": i}, bright, captured=t0 + 0.2 * i)
    for k in range(1, 23):  # no signal from the last frame (1.8 s) to 4.0 s
        sink.tick(t0 + 1.8 + 0.1 * k, lost_since=t0 + 1.8)
    sink.write({"ts": "2026-01-01T00:00:04.100Z", "frame": 10}, bright, captured=t0 + 4.1)
    sink.close()
    assert (sink.frames, sink.count) == (42, 11)  # slots 0..41: 4.2 s at 10 FPS
    cap = cv2.VideoCapture(str(tmp_path / "g.mp4"))
    means = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        means.append(float(frame[:30].mean()))  # above the timestamp bar
    cap.release()
    assert len(means) == 42
    assert all(m > 150 for m in means[:19]) and means[41] > 150  # frames, held in place
    assert all(m < 80 for m in means[19:41])  # NO SIGNAL covers the outage
    assert sink.no_signal_frames == 22


def test_slow_loop_video_lasts_as_long_as_the_run(tiny_onnx: Path, tmp_path: Path) -> None:
    """A 30 FPS camera, a loop at ~12 FPS: the video lasts as long as the events span."""
    ev, video = tmp_path / "ev.jsonl", tmp_path / "v.mp4"
    with SlowSession(open_session(tiny_onnx, "ort-cpu"), 0.08) as slow:
        s = run_live(
            tiny_onnx, "synthetic:fps=30,size=120x160", session=slow,
            options=LoopOptions(max_frames=25, warmup=0), outputs=Outputs(save=video, events=ev),
        )  # fmt: skip
    stamps = [datetime.fromisoformat(e["ts"].replace("Z", "+00:00")) for e in read_events(ev)]
    span = (stamps[-1] - stamps[0]).total_seconds()
    frames = count_video_frames(video)
    assert frames == s["video"]["frames"] > s["frames"] == 25  # frames held, not sped up
    assert frames / 30.0 == pytest.approx(span + 1 / 30.0, abs=0.1)


# --- 3. A lost stream is a failure; signals ----------------------------------------------


def test_stream_lost_for_good_exits_1_at_the_deadline(
    tiny_onnx: Path,
    tmp_path: Path,
    rtsp_server,
) -> None:
    timeout = 3.0
    server = rtsp_server()
    ev, video = tmp_path / "ev.jsonl", tmp_path / "v.mp4"
    cmd = [
        EDGETK, "run", str(tiny_onnx), "--source", f"rtsp://127.0.0.1:{rtsp_server.port}/test",
        "--events", str(ev), "--save", str(video), "--headless", "--json",
        "--reconnect-timeout", str(timeout),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(ev, 20, proc)
        server.kill()  # the camera is gone and stays gone
        killed = time.monotonic()
        out, err = proc.communicate(timeout=60)
        gave_up_after = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    s = json.loads(out)
    assert s["stopped_by"] == "source_lost" and s["exit_code"] == 1
    gap = s["gaps"][-1]
    assert not gap["recovered"] and timeout - 0.2 <= gap["seconds"] <= timeout + 1.0
    # A bound on the deadline's correctness (the backoff used to overshoot by seconds).
    assert gave_up_after < timeout + 2.0
    assert "error: source lost: no frame from rtsp://" in err
    assert len(read_events(ev)) == s["frames"]
    assert count_video_frames(video) == s["video"]["frames"]
    assert s["video"]["no_signal_frames"] / s["video"]["fps"] == pytest.approx(timeout, abs=0.6)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_signals_on_a_live_source(
    tiny_onnx: Path, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    ev, video = tmp_path / "ev.jsonl", tmp_path / "v.mp4"
    cmd = [
        EDGETK, "run", str(tiny_onnx), "--source", "synthetic:size=120x160", "--events",
        str(ev), "--save", str(video), "--headless", "--json",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(ev, 15, proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err
    s = json.loads(out)  # the summary is printed either way
    assert (s["stopped_by"], s["signal"]) == ("signal", sig.name)
    assert len(read_events(ev)) == s["frames"] >= 15
    assert count_video_frames(video) == s["video"]["frames"] >= 1  # finalized


# --- 4. Outputs checked before the work; 5. absurd values --------------------------------


def test_existing_save_target_is_refused_before_anything_is_opened(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    video, ev = tmp_path / "v.mp4", tmp_path / "ev.jsonl"
    video.write_bytes(b"an earlier recording")
    r = _cli(
        "run", tiny_onnx, "--source", "synthetic", "--save", video, "--events", ev, "--headless"
    )
    assert r.exit_code == 2, r.stderr
    assert f"--save: output exists: {video}" in r.stderr
    assert not ev.exists() and video.read_bytes() == b"an earlier recording"


@pytest.fixture()
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody here may write in: a read-only tmpfs as root, mode 0555 otherwise."""
    folder = tmp_path / "ro"
    if os.geteuid() == 0:
        with small_disk(folder, "64k", "ro"):
            yield folder
        return
    folder.mkdir()
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("option", ["--events", "--save", "--snapshots"])
def test_unwritable_output_is_refused_before_the_model_loads(
    read_only_dir: Path, option: str
) -> None:
    target = read_only_dir / ("out.mp4" if option == "--save" else "out")
    # The model does not exist: the output error shows the outputs are checked first.
    r = _cli("run", "no/such/model.onnx", "--source", "synthetic", option, target, "--headless")
    assert r.exit_code == 2, r.stderr
    assert f"{option}: cannot write {target}" in r.stderr


def test_snapshots_where_a_file_is_is_refused(tmp_path: Path) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    for target, message in (
        (afile, f"--snapshots: not a folder: {afile}"),
        (afile / "ng", f"--snapshots: not a folder: {afile} (in the path of {afile / 'ng'})"),
    ):
        r = _cli("run", "no/such/model.onnx", "--source", "synthetic", "--snapshots", target)
        assert r.exit_code == 2, r.stderr
        assert message in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "synthetic:size=0x0"], "the height must be 16 to 8192 pixels, got 0"),
        (["--source", "synthetic:size=480x0"], "the width must be 16 to 8192 pixels, got 0"),
        (["--source", "synthetic:fps=0"], "synthetic fps must be above 0 and at most 240"),
        (["--source", "synthetic", "--fps", "0"], "--fps must be above 0 and at most 240, got 0"),
        (["--source", "synthetic", "--fps", "-5"], "--fps must be above 0 and at most 240"),
        (["--source", "synthetic", "--width", "0"], "--width must be 16 to 8192 pixels"),
        (["--source", "synthetic", "--reconnect-timeout", "0"], "--reconnect-timeout must be"),
    ],
)
def test_absurd_values_exit_2_with_the_limit(args: list[str], message: str) -> None:
    r = _cli("run", "no/such/model.onnx", "--headless", *args)
    assert r.exit_code == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
