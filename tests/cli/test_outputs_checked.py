"""Outputs are checked before the work: an unwritable output is exit 2 with its path, at once.

Each command is given a model (or data) that does not exist as well as a bad output: the
output error wins only if it is checked before the model is loaded. The read-only cases use a
real read-only tmpfs mount (root ignores permission bits, so a chmod 0555 folder would not
bind it); they run as root only and are skipped otherwise.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _classify_models import channel_mean_onnx, color_folder
from typer.testing import CliRunner

from toolkit.cli.app import app
from toolkit.errors import BadInputError, OutputExistsError
from toolkit.fileio import check_output, check_output_dir


def _run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture()
def a_file(tmp_path: Path) -> Path:
    f = tmp_path / "file.txt"
    f.write_text("not a folder\n")
    return f


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return channel_mean_onnx(tmp_path_factory.mktemp("m") / "colours.onnx")


# --- the library checks ---------------------------------------------------------------------


def test_check_output_creates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "m.onnx"
    assert check_output(out, force=False) == out
    assert not (tmp_path / "a").exists()  # a run that fails later leaves no empty folder
    assert check_output_dir(tmp_path / "new" / "dir") == tmp_path / "new" / "dir"
    assert _files(tmp_path) == set()  # the write probe is removed again


def test_check_output_refusals(tmp_path: Path, a_file: Path) -> None:
    with pytest.raises(OutputExistsError, match="pass --force"):
        check_output(a_file, force=False)
    check_output(a_file, force=True)
    with pytest.raises(BadInputError, match=f"output is a folder: {tmp_path}"):
        check_output(tmp_path, force=True)
    deep = a_file / "x" / "m.onnx"
    with pytest.raises(BadInputError) as e:
        check_output(deep, force=False)
    assert str(e.value) == f"not a folder: {a_file} (in the path of {deep})"
    with pytest.raises(BadInputError) as e:
        check_output_dir(a_file, option="--save")
    assert str(e.value) == f"--save: not a folder: {a_file}"


# --- the commands, a file where a folder must be ----------------------------------------------


def test_export_under_a_file(tmp_path: Path, a_file: Path) -> None:
    out = a_file / "out.onnx"
    code, stdout, stderr = _run("export", tmp_path / "nope.py:Net", "-o", out)
    assert code == 2, stderr
    assert f"not a folder: {a_file}" in stderr and str(out) in stderr
    assert "model file not found" not in stderr and "exported" not in stdout
    assert _files(tmp_path) == {"file.txt"} and a_file.read_text() == "not a folder\n"


def test_quantize_under_a_file(tmp_path: Path, a_file: Path) -> None:
    code, _, stderr = _run(
        "quantize", tmp_path / "nope.onnx", "--calib", "synthetic", "-o", a_file / "q.onnx"
    )
    assert code == 2 and f"not a folder: {a_file}" in stderr, stderr
    assert "model file not found" not in stderr


def test_benchmark_out_under_a_file(tmp_path: Path, a_file: Path) -> None:
    code, stdout, stderr = _run("benchmark", tmp_path / "nope.onnx", "--out", a_file / "b.json")
    assert code == 2 and f"not a folder: {a_file}" in stderr, stderr
    assert "benchmark:" not in stdout  # no measuring started


def test_predict_save_is_a_file(tmp_path: Path, a_file: Path) -> None:
    images = color_folder(tmp_path / "imgs", per_class=1)
    for save in (a_file, a_file / "sub"):
        code, _, stderr = _run("predict", tmp_path / "nope.onnx", images, "--save", save)
        assert code == 2, stderr
        assert stderr.startswith(f"error: --save: not a folder: {a_file}"), stderr
        assert "model file not found" not in stderr


def test_build_under_a_file(tmp_path: Path, a_file: Path) -> None:
    # Checked before the model is read and before TensorRT is looked for (absent on CI).
    code, _, stderr = _run("build", tmp_path / "nope.onnx", "-o", a_file / "m.engine")
    assert code == 2 and f"not a folder: {a_file}" in stderr, stderr
    assert "tensorrt" not in stderr.lower() and "not found" not in stderr


def test_train_output_under_a_file(tmp_path: Path, a_file: Path) -> None:
    code, _, stderr = _run("train", "zoo:defect-cls", tmp_path / "nodata", "-o", a_file / "w.pt")
    assert code == 2 and f"not a folder: {a_file}" in stderr, stderr
    assert "data set not found" not in stderr


def test_demo_workdir_is_a_file(tmp_path: Path, a_file: Path) -> None:
    code, stdout, stderr = _run("demo", "--quick", "--workdir", a_file)
    assert code == 2, stderr
    assert stderr.strip() == f"error: --workdir: not a folder: {a_file}"
    assert "[1]" not in stdout + stderr  # no step started
    assert _files(tmp_path) == {"file.txt"} and a_file.read_text() == "not a folder\n"


# --- a read-only folder that binds root too -----------------------------------------------------


@pytest.fixture()
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A read-only tmpfs mounted at tmp_path/ro (root only: nothing else can mount one)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only tmpfs needs root (and root is who ignores mode bits)")
    ro = tmp_path / "ro"
    ro.mkdir()
    probe = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(ro)],
                           capture_output=True, text=True)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.strip() or probe.returncode}")
    try:
        yield ro
    finally:
        subprocess.run(["umount", str(ro)], check=False)


def test_read_only_folder_refused_before_the_work(
    read_only: Path, model: Path, tmp_path: Path
) -> None:
    images = color_folder(tmp_path / "imgs", per_class=1)
    cases = {
        "export": ["export", tmp_path / "nope.py:Net", "-o", read_only / "m.onnx"],
        "export, folders to make": ["export", "zoo:defect-cls", "-o", read_only / "a/b/m.onnx"],
        "quantize": ["quantize", model, "--calib", "synthetic", "-o", read_only / "q.onnx"],
        "benchmark": ["benchmark", model, "--out", read_only / "b.json"],
        "build": ["build", model, "-o", read_only / "m.engine"],
        "predict": ["predict", model, images, "--save", read_only],
        "train": ["train", "zoo:defect-cls", tmp_path / "nodata", "-o", read_only / "w.pt"],
        "demo": ["demo", "--quick", "--workdir", read_only / "work"],
    }
    for name, args in cases.items():
        code, stdout, stderr = _run(*args)
        assert code == 2, (name, stderr)
        assert "cannot write" in stderr and "read-only file system" in stderr, (name, stderr)
        assert str(read_only) in stderr, (name, stderr)
        assert "exported" not in stdout and "benchmark:" not in stdout, name
    check_output_dir(tmp_path / "imgs")  # a writable folder beside it still passes
