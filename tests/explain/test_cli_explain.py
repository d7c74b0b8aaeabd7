"""`edgetk explain`: heatmaps, views and --eval from the command line; bad input exits 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from _explain_refs import ref

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parent))
from _images import blob_image, cue_image

CUE_FLAGS = ["--imgsz", "32", "--channels", "1", "--labels", "ok,cue"]
BLOB_FLAGS = ["--task", "detect", "--imgsz", "64", "--labels", "blob,never",
              "--output-format", "yolov8", "--resize", "stretch"]  # fmt: skip


def cli(*args: object) -> tuple[int, str, str]:
    from typer.testing import CliRunner

    from toolkit.cli.app import app

    result = CliRunner().invoke(app, ["explain", *[str(a) for a in args]])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture()
def cue_png(tmp_path: Path) -> Path:
    path = tmp_path / "imgs" / "part.png"
    path.parent.mkdir()
    cv2.imwrite(str(path), cue_image())
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "gradcam-x"], "--method must be one of"),
        (["--class", "nope"], "not a class of this model"),
        (["--class", "7"], "out of range"),
        (["--layer", "nope"], "no layer 'nope'"),
        (["--roi", "1,2,3"], "--roi must be x,y,w,h"),
    ],
)
def test_bad_input_exits_2(extra, message, cue_png, tmp_path):
    code, _out, err = cli(ref("CueNet"), cue_png, "-o", tmp_path / "o", *CUE_FLAGS, *extra)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_out_images_and_existing_outputs_exit_2(cue_png, tmp_path):
    code, _, err = cli(ref("CueNet"), cue_png, *CUE_FLAGS)
    assert code == 2 and "-o DIR is required" in err
    code, _, err = cli(ref("CueNet"), "-o", tmp_path / "o", *CUE_FLAGS)
    assert code == 2 and "IMAGES is required" in err
    code, _, err = cli(ref("CueNet"), tmp_path / "missing.png", "-o", tmp_path / "o", *CUE_FLAGS)
    assert code == 2
    out = tmp_path / "o"
    assert cli(ref("CueNet"), cue_png, "-o", out, *CUE_FLAGS)[0] == 0
    code, _, err = cli(ref("CueNet"), cue_png, "-o", out, *CUE_FLAGS)
    assert code == 2 and "--force" in err
    assert cli(ref("CueNet"), cue_png, "-o", out, "--force", *CUE_FLAGS)[0] == 0


def test_heatmaps_json_reports_peak_and_heat_inside(cue_png, tmp_path):
    out = tmp_path / "o"
    code, stdout, err = cli(ref("CueNet"), cue_png.parent, "-o", out, "--method",
                            "gradcam,occlusion", "--roi", "4,4,8,8", "--patch", "6",
                            "--json", *CUE_FLAGS)  # fmt: skip
    assert code == 0, err
    doc = json.loads(stdout)
    assert [i["method"] for i in doc["images"]] == ["gradcam", "occlusion"]
    for img in doc["images"]:
        [m] = img["maps"]
        assert m["label"] == "cue" and 4 <= m["peak"][0] < 12 and 4 <= m["peak"][1] < 12
        assert m["inside_rois"][0] > 0.1
        heat = np.load(m["npy"])
        assert heat.shape == (32, 32) and heat.max() == pytest.approx(1.0)
        assert cv2.imread(m["overlay"]).shape == (32, 32, 3)


def test_detector_gets_one_map_per_box(tmp_path):
    img = tmp_path / "blobs.png"
    cv2.imwrite(str(img), blob_image([(16, 16), (48, 44)]))
    code, stdout, err = cli(ref("BlobDet"), img, "-o", tmp_path / "o", "--method", "layercam",
                            "--json", *BLOB_FLAGS)  # fmt: skip
    assert code == 0, err
    maps = json.loads(stdout)["images"][0]["maps"]
    assert len(maps) >= 2 and all(m["inside_own_box"] > 0.5 for m in maps)
    assert all(len(m["inside_boxes"]) == len(maps) for m in maps)
    assert (tmp_path / "o" / "blobs_layercam_box0.png").is_file()


def test_views_write_their_pictures(cue_png, tmp_path):
    out = tmp_path / "v"
    code, stdout, err = cli(ref("CueNet"), cue_png, "-o", out, "--kernels", "--maps",
                            "--filters", "conv", "--dream", "conv", "--steps", "6",
                            "--json", *CUE_FLAGS)  # fmt: skip
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["maps"]["stages"][0] == {"layer": "conv", "kind": "Conv2d", "in": [1, 32, 32],
                                        "out": [4, 32, 32]}  # fmt: skip
    for name in ("kernels.png", "maps_part.png", "filters_conv.png", "dream_part_conv.png"):
        assert cv2.imread(str(out / name)) is not None, name
    code, stdout, err = cli(ref("CueNet"), "-o", out, "--class", "all", "--steps", "6",
                            "--json", *CUE_FLAGS)  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout)["classes"]["classes"] == ["ok", "cue"]


def test_eval_reports_pointing_game_deletion_and_time(tmp_path):
    from toolkit.data.yolo import write_data_yaml

    root = tmp_path / "set"
    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    for i, (x, y) in enumerate([(20, 20), (44, 44), (20, 44)]):
        cv2.imwrite(str(root / "images" / "val" / f"{i}.png"), blob_image([(x, y)]))
        line = f"0 {x / 64:.6f} {y / 64:.6f} {16 / 64:.6f} {16 / 64:.6f}\n"
        (root / "labels" / "val" / f"{i}.txt").write_text(line)
    write_data_yaml(root / "data.yaml", names=["blob", "never"], train="images/val",
                    val="images/val")  # fmt: skip
    code, stdout, err = cli(ref("BlobDet"), "--eval", root, "--method", "layercam,occlusion",
                            "--patch", "8", "--json", *BLOB_FLAGS)  # fmt: skip
    assert code == 0, err
    rows = {m["method"]: m for m in json.loads(stdout)["methods"]}
    for m in rows.values():
        assert m["trials"] == 3 and m["pointing_game"] == 1.0 and m["ms_per_map"] > 0
        assert m["deletion"]["auc_heat"] < m["deletion"]["auc_random"]
