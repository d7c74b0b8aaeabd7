"""`edgetk predict` and `edgetk val` through Typer's runner (and once through the console script)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from _classify_models import (
    RGB_LABELS,
    channel_mean_onnx,
    color_folder,
    color_image,
    write_image,
    write_video,
)
from typer.testing import CliRunner

from toolkit.cli.app import app


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return channel_mean_onnx(tmp_path_factory.mktemp("m") / "colours.onnx")


def _run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def _images(root: Path) -> list[tuple[Path, str]]:
    """Pure-colour images in a nested folder, with the colour each one is."""
    items = [
        (root / "a_red.png", "red"),
        (root / "b_green.jpg", "green"),
        (root / "sub" / "c_blue.png", "blue"),
        (root / "sub" / "d_red.bmp", "red"),
    ]
    for path, colour in items:
        write_image(path, color_image(colour, (30, 40)))
    return items


def test_predict_json_on_a_folder(colour_model: Path, tmp_path: Path) -> None:
    items = _images(tmp_path / "imgs")
    code, out, _ = _run("predict", colour_model, tmp_path / "imgs", "--json", "--topk", "2")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["count"] == 4 and doc["backend"] == "ort-cpu" and doc["model"] == str(colour_model)
    assert [r["source"] for r in doc["results"]] == [str(p) for p, _ in items]
    for r, (_, colour) in zip(doc["results"], items, strict=True):
        assert len(r["top"]) == 2
        top = r["top"][0]
        assert top["label"] == colour and top["class_id"] == RGB_LABELS.index(colour)
        # softmax(10 * [1, 0, 0]) = e^10 / (e^10 + 2): the model's own probability.
        assert top["confidence"] == pytest.approx(np.exp(10) / (np.exp(10) + 2), abs=2e-3)


def test_predict_human_output_and_save(colour_model: Path, tmp_path: Path) -> None:
    _images(tmp_path / "imgs")
    save = tmp_path / "out"
    code, out, err = _run(
        "predict", colour_model, tmp_path / "imgs", "--save", save, "--batch", "3"
    )
    assert code == 0, err
    assert err == ""  # human output goes to stdout (so it can be piped)
    assert "4 image(s)" in out and "annotated images in" in out
    # One table row per image (paths may be folded to the terminal's width; labels are not).
    assert out.count("red 1.000") == 2 and out.count("blue 1.000") == 1
    written = sorted(p.relative_to(save).as_posix() for p in save.rglob("*") if p.is_file())
    assert written == ["a_red.png", "b_green.jpg", "sub/c_blue.png", "sub/d_red.bmp"]
    annotated = cv2.imread(str(save / "a_red.png"))
    assert annotated.shape == (30, 40, 3)
    # The label box is drawn at the top-left; the rest of the image is untouched.
    assert not np.array_equal(annotated[:8, :20], color_image("red", (8, 20)))
    assert np.array_equal(annotated[-5:, -5:], color_image("red", (5, 5)))
    assert not any(p.name.endswith(".tmp") for p in save.rglob("*"))


def test_predict_on_a_video(colour_model: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi", frames=6)
    code, out, err = _run("predict", colour_model, video, "--json", "--topk", "1")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["count"] == 6
    assert [r["source"] for r in doc["results"]] == [f"{video}#frame={i}" for i in range(6)]
    assert [r["top"][0]["label"] for r in doc["results"]] == [RGB_LABELS[i % 3] for i in range(6)]
    save = tmp_path / "frames"
    code, _, err = _run("predict", colour_model, video, "--video-stride", "2", "--save", save)
    assert code == 0, err
    assert sorted(p.name for p in save.iterdir()) == [f"clip_{i:06d}.jpg" for i in (0, 2, 4)]


def test_val_json_on_an_imagefolder(colour_model: Path, tmp_path: Path) -> None:
    data = color_folder(tmp_path / "val", per_class=3)
    write_image(data / "green" / "9.png", color_image("red"))  # one mislabelled image
    code, out, err = _run("val", colour_model, data, "--json", "--batch", "4")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["n"] == 10 and doc["backend"] == "ort-cpu"
    assert doc["top1"] == pytest.approx(0.9)
    assert doc["top5"] is None  # three classes
    assert doc["per_class"]["green"] == {"n": 4, "top1": 0.75}
    assert doc["per_class"]["red"] == {"n": 3, "top1": 1.0}


def test_val_human_output(tiny_onnx: Path, tmp_path: Path) -> None:
    data = tmp_path / "val"
    for label in ("ok", "spot"):
        write_image(data / label / "0.png", color_image("red"))
    code, out, err = _run("val", tiny_onnx, data)
    assert code == 0, err
    assert err == "" and "top-1" in out and "n=2" in out and "spot" in out


def test_val_labels_flag_maps_folders(colour_model: Path, tmp_path: Path) -> None:
    """--labels renames the model's classes; folders are matched against the new names."""
    data = tmp_path / "val"
    write_image(data / "R" / "0.png", color_image("red"))
    write_image(data / "B" / "0.png", color_image("blue"))
    code, out, err = _run("val", colour_model, data, "--labels", "R,G,B", "--json")
    assert code == 0, err
    assert json.loads(out)["top1"] == 1.0


def _four_channel_model(tmp_path: Path) -> Path:
    return channel_mean_onnx(tmp_path / "rgba.onnx", channels=4, labels=("a", "b", "c", "d"))


def _bad_cases(tmp_path: Path, colour_model: Path) -> dict[str, tuple[list, str]]:
    img = write_image(tmp_path / "ok.png", color_image("red"))
    corrupt_img = tmp_path / "corrupt.png"
    corrupt_img.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    corrupt_onnx = tmp_path / "corrupt.onnx"
    corrupt_onnx.write_bytes(np.random.default_rng(0).bytes(512))
    yolo = tmp_path / "yolo"
    (yolo / "images").mkdir(parents=True)
    (yolo / "labels").mkdir()
    (yolo / "data.yaml").write_text("names: [a]\n")
    flat = tmp_path / "flat"
    write_image(flat / "x.png", color_image("red"))
    stranger = tmp_path / "stranger"
    write_image(stranger / "purple" / "x.png", color_image("red"))
    m = colour_model
    return {
        "missing source": (["predict", m, tmp_path / "nope"], "source not found"),
        "corrupt image": (["predict", m, corrupt_img], "cannot decode image"),
        "channel count": (["predict", _four_channel_model(tmp_path), img], "4-channel input"),
        "corrupt onnx": (["predict", corrupt_onnx, img], "not a valid ONNX file"),
        "missing model": (["predict", tmp_path / "none.onnx", img], "not found"),
        "unknown backend": (["predict", m, img, "--backend", "tpu"], "unknown backend"),
        "bad topk": (["predict", m, img, "--topk", "0"], "--topk"),
        "detect model": (["predict", m, img, "--task", "detect"], "not a detector output"),
        "val missing data": (["val", m, tmp_path / "nope"], "data set not found"),
        "val yolo set": (["val", m, yolo], "no 'val' split"),
        "val data.yaml": (["val", m, yolo / "data.yaml"], "no 'val' split"),
        "val no classes": (["val", m, flat], "no class folders"),
        "val unknown folder": (["val", m, stranger], "purple"),
        "val corrupt onnx": (["val", corrupt_onnx, stranger], "not a valid ONNX file"),
    }


CASES = [
    "missing source",
    "corrupt image",
    "channel count",
    "corrupt onnx",
    "missing model",
    "unknown backend",
    "bad topk",
    "detect model",
    "val missing data",
    "val yolo set",
    "val data.yaml",
    "val no classes",
    "val unknown folder",
    "val corrupt onnx",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_inputs_exit_2_with_one_line(case: str, colour_model: Path, tmp_path: Path) -> None:
    args, message = _bad_cases(tmp_path, colour_model)[case]
    code, out, err = _run(*args, "--json")
    assert code == 2, (case, err)
    # One JSON document on stdout, also on failure, and the one-line message on stderr.
    doc = json.loads(out)
    assert doc["exit_code"] == 2 and message in doc["error"]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert message in lines[0]
    assert "Traceback" not in err


@pytest.mark.skipif(shutil.which("edgetk") is None, reason="console script not installed")
def test_predict_through_the_console_script(colour_model: Path, tmp_path: Path) -> None:
    img = write_image(tmp_path / "g.png", color_image("green"))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [
            shutil.which("edgetk") or sys.executable,
            "predict",
            str(colour_model),
            str(img),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["top"][0]["label"] == "green"
