"""The command-line conventions users rely on, through the installed console script.

Human output on stdout (pipeable), with --json stdout holds one JSON document (also on failure)
and the human text goes to stderr; errors are one line on stderr; --verbose (on the command or
the root) brings tracebacks and third-party log lines back.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from _cli import edgetk_script


def _edgetk(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCV_", "PYTHONWARN"))}
    return subprocess.run(
        [edgetk_script(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**env, "COLUMNS": "120"},
    )


def test_human_output_goes_to_stdout() -> None:
    proc = _edgetk("zoo")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    rows = [line for line in proc.stdout.splitlines() if "resnet18" in line]
    assert len(rows) == 1 and "11,689,512" in rows[0]  # `edgetk zoo | grep resnet18` works


def test_json_output_is_stdout_alone() -> None:
    proc = _edgetk("inspect", "zoo:lenet5", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["total_params"] == 61_706


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["inspect", "missing.onnx", "--json"], 2, "model file not found: missing.onnx"),
        (["inspect", "zoo:lenet5", "--imgsz", "x", "--json"], 2, "--imgsz"),
        (["inspect", "zoo:lenet5", "--no-such-flag", "--json"], 2, "No such option"),
        (["zoo", "--json", "extra-arg"], 2, "unexpected extra argument"),
    ],
    ids=["missing file", "bad value", "unknown option", "parser: extra argument"],
)
def test_json_failure_is_one_json_document(
    args: list[str], code: int, message: str, tmp_path: Path
) -> None:
    proc = _edgetk(*args, cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    doc = json.loads(proc.stdout)  # a script never parses empty input
    assert doc["exit_code"] == code and message.lower() in doc["error"].lower()
    assert "Traceback" not in proc.stderr


def test_error_is_one_line_without_verbose(tmp_path: Path) -> None:
    proc = _edgetk("inspect", "missing.onnx", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == ["error: model file not found: missing.onnx"]


@pytest.mark.parametrize("where", ["root", "command"])
def test_verbose_prints_the_traceback(where: str, tmp_path: Path) -> None:
    args = ["--verbose", "inspect", "missing.onnx"]
    if where == "command":
        args = ["inspect", "missing.onnx", "--verbose"]
    proc = _edgetk(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback (most recent call last)" in proc.stderr
    assert "BadInputError: model file not found" in proc.stderr
    assert proc.stderr.rstrip().endswith("error: model file not found: missing.onnx")


def test_third_party_noise_is_silenced(tiny_onnx: Path, tmp_path: Path) -> None:
    """A corrupt video: FFmpeg's own log line ('moov atom not found') only with --verbose."""
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    quiet = _edgetk("predict", tiny_onnx, bad, cwd=tmp_path)
    assert quiet.returncode == 2
    lines = quiet.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot open video"), quiet.stderr
    loud = _edgetk("--verbose", "predict", tiny_onnx, bad, cwd=tmp_path)
    assert loud.returncode == 2
    assert len(loud.stderr.strip().splitlines()) > 1  # FFmpeg/OpenCV lines and the traceback


def test_help_keeps_bracketed_defaults() -> None:
    """Rich markup must not eat '(default: ...)' texts, and required-in-practice says so."""
    train = _edgetk("train", "--help")
    assert "(default: 32; detect: 16)" in " ".join(train.stdout.split())
    quantize = _edgetk("quantize", "--help")
    assert "required, except with --check-only" in " ".join(quantize.stdout.split())
