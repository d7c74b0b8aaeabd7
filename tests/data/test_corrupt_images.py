"""One corrupt image, one behaviour: predict, val and calibration skip it, say so in one
warning line (``skipped 1: zz.png: cannot decode``) and exit 0; ``--strict`` makes it exit 2.
Calibration fails only when too few readable images remain, and says how many it needs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from _classify_models import channel_mean_onnx, color_folder, color_image, write_image
from _quantize_models import color_classifier, color_images
from typer.testing import CliRunner

from toolkit.cli.app import app
from toolkit.data.images import SkippedImage
from toolkit.errors import BadInputError

WARNING = "skipped 1: zz.png: cannot decode"


def _run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def truncated_png(path: Path) -> Path:
    """A real PNG cut in half: the header is fine, the pixels are missing."""
    ok, buf = cv2.imencode(".png", color_image("red", (32, 32)))
    assert ok
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.tobytes()[: len(buf) // 2])
    return path


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return channel_mean_onnx(tmp_path_factory.mktemp("m") / "colours.onnx")


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    for i, colour in enumerate(("red", "green", "blue")):
        write_image(root / f"{i}_{colour}.png", color_image(colour))
    truncated_png(root / "zz.png")
    return root


def test_predict_skips_and_counts(colour_model: Path, images: Path) -> None:
    code, out, err = _run("predict", colour_model, images)
    assert code == 0, err
    assert WARNING in out and "3 image(s)" in out
    code, out, err = _run("predict", colour_model, images, "--json")
    assert code == 0, err
    doc = json.loads(out)  # stdout stays one JSON document; the warning goes to stderr
    assert doc["count"] == 3 and [Path(r["source"]).name for r in doc["results"]] == [
        "0_red.png", "1_green.png", "2_blue.png"
    ]  # fmt: skip
    assert doc["skipped"] == [{"source": "zz.png", "reason": "cannot decode"}]
    assert WARNING in err


def test_predict_strict_is_exit_2(colour_model: Path, images: Path) -> None:
    code, _, err = _run("predict", colour_model, images, "--strict")
    assert code == 2
    assert err.strip() == (
        f"error: cannot decode image {images / 'zz.png'} (corrupt or not an image)"
    )


def test_predict_with_nothing_readable_is_exit_2(colour_model: Path, tmp_path: Path) -> None:
    truncated_png(tmp_path / "bad" / "a.png")
    (tmp_path / "bad" / "b.png").write_bytes(b"")
    code, _, err = _run("predict", colour_model, tmp_path / "bad")
    assert code == 2
    assert "no readable images in" in err and "a.png: cannot decode, b.png: empty file" in err


def test_val_skips_and_counts(colour_model: Path, tmp_path: Path) -> None:
    data = color_folder(tmp_path / "val", per_class=2)
    truncated_png(data / "red" / "zz.png")
    code, out, err = _run("val", colour_model, data, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["n"] == 6 and doc["top1"] == 1.0 and doc["per_class"]["red"]["n"] == 2
    assert doc["skipped"] == [{"source": "red/zz.png", "reason": "cannot decode"}]
    assert "skipped 1: red/zz.png: cannot decode" in err
    code, _, err = _run("val", colour_model, data, "--strict")
    assert code == 2 and "cannot decode image" in err and "zz.png" in err


@pytest.fixture(scope="module")
def color_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return color_classifier(tmp_path_factory.mktemp("q") / "color.onnx")


def test_calibration_skips_a_corrupt_image_and_keeps_the_count(
    color_onnx: Path, tmp_path: Path
) -> None:
    from toolkit.model.modelfile import read_spec
    from toolkit.quantize.calibration import load_calibration

    calib = color_images(tmp_path / "calib", n_per_class=4)  # 12 good images
    truncated_png(calib / "zz.png")  # sorted last: among the evenly picked files
    cal = load_calibration(calib, read_spec(color_onnx), size=8, holdout=2)
    assert cal.skipped == [SkippedImage("zz.png", "cannot decode")]
    assert cal.calib.shape[0] == 8 and cal.holdout.shape[0] == 2  # a spare took its place
    assert WARNING in cal.warnings
    with pytest.raises(BadInputError, match=r"cannot decode image .*zz\.png"):
        load_calibration(calib, read_spec(color_onnx), size=8, holdout=2, strict=True)

    out = tmp_path / "q.onnx"
    code, stdout, err = _run("quantize", color_onnx, "--calib", calib, "--calib-size", 8,
                             "-o", out)  # fmt: skip
    assert code == 0, err
    assert f"warning: {WARNING}" in stdout and out.is_file()
    code, _, err = _run("quantize", color_onnx, "--calib", calib, "--calib-size", 8,
                        "-o", tmp_path / "q2.onnx", "--strict")  # fmt: skip
    assert code == 2 and "zz.png" in err and not (tmp_path / "q2.onnx").exists()


def test_calibration_with_too_few_readable_images_names_the_count(
    color_onnx: Path, tmp_path: Path
) -> None:
    calib = tmp_path / "few"
    for i in range(5):
        write_image(calib / f"{i}.png", np.full((20, 20, 3), 40 * i, np.uint8))
    truncated_png(calib / "zz.png")
    code, _, err = _run("quantize", color_onnx, "--calib", calib, "-o", tmp_path / "q.onnx")
    assert code == 2
    assert err.strip() == (
        f"error: calibration needs at least 8 readable images; {calib} has 5 ({WARNING})"
    )
    assert not (tmp_path / "q.onnx").exists()


def test_detection_val_skips_and_counts(tmp_path: Path) -> None:
    from _quantize_models import tiny_detector

    from toolkit.data.synthetic_det import make_detection_set

    model = tiny_detector(tmp_path / "det.onnx")
    make_detection_set(tmp_path / "set", n_train=1, n_val=3, size=64, seed=2)
    victim = sorted((tmp_path / "set" / "images" / "val").glob("*.png"))[-1]
    victim.write_bytes(victim.read_bytes()[:100])
    code, out, err = _run("val", model, tmp_path / "set" / "data.yaml", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["images"] == 2
    name = f"images/val/{victim.name}"
    assert doc["skipped"] == [{"source": name, "reason": "cannot decode"}]
    assert f"skipped 1: {name}: cannot decode" in err
    code, _, err = _run("val", model, tmp_path / "set" / "data.yaml", "--strict")
    assert code == 2 and victim.name in err
