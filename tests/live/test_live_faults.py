"""The live loop under faults: a real RTSP server that dies and comes back, Ctrl-C / SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from _live_helpers import (
    count_video_frames,
    edgetk,
    read_events,
    stop_server,
    wait_for_lines,
    write_video,
)


def test_rtsp_stream_reconnects_after_server_restart_and_hides_credentials(
    tiny_onnx: Path, tmp_path: Path, rtsp_server
) -> None:
    server = rtsp_server("user", "secret")
    url = f"rtsp://user:secret@127.0.0.1:{rtsp_server.port}/test"
    ev, snaps, video = tmp_path / "ev.jsonl", tmp_path / "ng", tmp_path / "line.mp4"
    cmd = edgetk(
        "run", str(tiny_onnx), "--source", url, "--max-frames", "90", "--json", "--headless",
        "--events", str(ev), "--snapshots", str(snaps), "--save", str(video), "--reject", "0,1,2",
        "--verbose",
    )  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(ev, 20, proc)
        stop_server(server)  # the camera drops out mid-run...
        time.sleep(1.0)
        rtsp_server("user", "secret")  # ...and comes back
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert (summary["frames"], summary["stopped_by"]) == (90, "max_frames")
    assert summary["reconnects"] >= 1
    gap = summary["gaps"][0]
    assert gap["recovered"] and gap["seconds"] >= 0.9 and gap["after_frame"] >= 20
    assert summary["source"] == f"rtsp://***@127.0.0.1:{rtsp_server.port}/test"
    events = read_events(ev)
    assert len(events) == 90
    frames = [e["frame"] for e in events]
    assert frames == sorted(frames) and len(set(frames)) == 90
    # The credentials appear nowhere: stdout, stderr (verbose logs), events, snapshots.
    texts = [out, err, ev.read_text()] + [p.read_text() for p in snaps.glob("*.json")]
    assert all("secret" not in t for t in texts)
    assert "reconnecting" in err  # the outage is said, not silent
    # The video keeps real time: the outage is there as NO SIGNAL frames, not cut out.
    v = summary["video"]
    assert count_video_frames(video) == v["frames"] >= 90
    assert v["no_signal_frames"] / v["fps"] == pytest.approx(gap["seconds"], abs=0.5)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly(tiny_onnx: Path, tmp_path: Path, sig: signal.Signals) -> None:
    clip = write_video(tmp_path / "clip.mp4", n=60)
    ev, video = tmp_path / "ev.jsonl", tmp_path / "out.mp4"
    cmd = edgetk(
        "run", str(tiny_onnx), "--source", str(clip), "--loop", "--save", str(video),
        "--events", str(ev), "--headless", "--json",
    )  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(ev, 100, proc)  # past the first loop of the file
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # SIGTERM is a requested stop (0); Ctrl-C exits 130 as in every command. Both finalize.
    assert proc.returncode == (130 if sig == signal.SIGINT else 0), err
    summary = json.loads(out)
    assert summary["stopped_by"] == "signal" and summary["frames"] >= 100
    assert summary["signal"] == sig.name
    assert summary.get("exit_code", 0) == proc.returncode
    events = read_events(ev)  # every line is whole JSON
    assert len(events) == summary["frames"]
    assert [e["frame"] for e in events] == list(range(len(events)))
    assert count_video_frames(video) == summary["frames"]  # finalized: playable to the end
    assert not list(tmp_path.glob(".out*"))
