"""`edgetk run --events -`: JSON lines on stdout, the human output on stderr, no file `-`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _live_helpers import write_video
from typer.testing import CliRunner

from toolkit.cli.app import app
from toolkit.live.sinks import EventsSink


def _run(*args: object):
    return CliRunner().invoke(app, ["run", *[str(a) for a in args]])


def test_run_events_to_stdout(tiny_onnx: Path, tmp_path: Path, monkeypatch) -> None:
    clip = write_video(tmp_path / "clip.mp4", n=8)
    monkeypatch.chdir(tmp_path)
    result = _run(
        tiny_onnx, "--source", clip, "--backend", "ort-cpu", "--headless", "--max-frames", 5,
        "--events", "-",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    events = [json.loads(line) for line in lines]  # stdout holds JSON lines only
    assert len(events) == 5
    assert all("verdict" in e for e in events)
    assert [e["frame"] for e in events] == list(range(5))
    assert "5 frames" in result.stderr  # the summary went to stderr
    assert not (tmp_path / "-").exists()


def test_run_events_stdout_with_json_is_bad_input(tiny_onnx: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _run(tiny_onnx, "--source", "synthetic", "--events", "-", "--json")
    assert result.exit_code == 2
    assert "stdout" in result.stderr
    assert json.loads(result.stdout)["exit_code"] == 2  # --json still gets its one document
    assert not (tmp_path / "-").exists()


def test_events_sink_dash_does_not_close_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    sink = EventsSink(Path("-"))
    sink.verdict({"frame": 0, "verdict": "OK"}, None)
    sink.close()
    sink.close()
    print("still open")
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[0]) == {"frame": 0, "verdict": "OK"} and out[1] == "still open"
    assert sink.count == 1
