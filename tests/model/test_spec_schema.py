"""A model file's metadata is input: checked once when read, bad fields named, exit 2.

Each row edits a real ONNX file's metadata with the ``onnx`` package and runs the real CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from toolkit.cli.app import app
from toolkit.errors import BadInputError
from toolkit.model.modelfile import load_onnx
from toolkit.model.spec import ModelSpec, SpecOverrides, parse_imgsz
from toolkit.model.spec_schema import MAX_IMGSZ

Edit = Callable[[dict[str, Any]], None]


def _cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def _set(path: str, value: Any) -> Edit:
    """An edit of the spec JSON: ``path`` is ``key`` or ``key.sub``."""

    def edit(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            d = d.setdefault(key, {})
        d[last] = value

    return edit


def _deep(levels: int) -> Any:
    v: Any = 1
    for _ in range(levels):
        v = {"a": v}
    return v


# (id, edit of the edgetk JSON, the message after "invalid model metadata: ")
SPEC_ROWS = [
    ("string scale", _set("preprocess.scale", "1/255"),
     "preprocess.scale: expected a number, got a string ('1/255')"),
    ("string pad_value", _set("preprocess.pad_value", "114"),
     "preprocess.pad_value: expected an integer, got a string ('114')"),
    ("labels as a string", _set("labels", "ok,scratch,spot"),
     "labels: expected a list of strings, got a string"),
    ("labels of numbers", _set("labels", [1, 2, 3]), "labels: item 0 is not a string"),
    ("labels of the wrong count", _set("labels", ["ok", "ng"]),
     "labels: 2 labels for a model with 3 classes (its logits output is [N, 3])"),
    ("shape with a string", _set("input.shape", [None, 3, "32", 32]),
     "input.shape: height must be an integer or null, got a string ('32')"),
    ("shape with a float", _set("input.shape", [None, 3, 32.5, 32]),
     "input.shape: height must be an integer or null, got a number (32.5)"),
    ("shape too large", _set("input.shape", [None, 3, 100000, 100000]),
     "input.shape: height 100000 is outside 1..8192"),
    ("shape of 3 sizes", _set("input.shape", [None, 3, 32]),
     "input.shape: expected 4 sizes (NCHW), got 3"),
    ("unknown task", _set("task", "segment"),
     "task: unknown task 'segment' (expected one of classify, detect)"),
    ("unknown resize", _set("preprocess.resize", "squash"), "preprocess.resize: unknown resize"),
    ("unknown color", _set("input.color", "cmyk"), "input.color: unknown color order 'cmyk'"),
    ("unknown output format", _set("output.format", "yolov9"),
     "output.format: unknown output format 'yolov9'"),
    ("zero std", _set("preprocess.std", [0.25, 0, 0.25]), "preprocess.std: item 1 is zero"),
    ("NaN mean", _set("preprocess.mean", [float("nan")] * 3),
     "preprocess.mean: item 0 is not a finite number"),
    ("random_weights string", _set("random_weights", "yes"), "random_weights: expected true"),
    ("input not an object", _set("input", [1, 2]), "input: expected an object, got a list of 2"),
    ("extra too deep", _set("extra", _deep(40)), "extra: nested deeper than 16 levels"),
    ("weights a number", _set("extra.weights", 3), "extra: weights: expected a string or null"),
]  # fmt: skip

# Ultralytics-style metadata_props on a file without edgetk metadata: (id, key, value, message).
ULTRALYTICS_ROWS = [
    ("names 100000 levels deep", "names", "[" * 100000, "names: nested deeper than 2 levels"),
    ("names a string", "names", "'ok'", "names: expected {int: str} or [str, ...]"),
    ("names of numbers", "names", "{0: 1, 1: 2, 2: 3}", "names: expected {int: str}"),
    ("names of the wrong count", "names", "['a', 'b']", "names: 2 labels for a model with 3"),
    ("names too complex", "names", "-" * 100000 + "1", "names: too complex to read"),
    ("huge imgsz literal", "imgsz", "[" + "640, " * 100000 + "640]",
     "imgsz: longer than 40 characters"),
    ("huge imgsz number", "imgsz", "9" * 5000, "imgsz: longer than 40 characters"),
    ("imgsz too large", "imgsz", "[100000, 100000]",
     "imgsz: expected an int or [h, w], each 1..8192"),
    ("stride a string", "stride", "'32'", "stride: expected an integer 1..8192"),
]  # fmt: skip


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("img") / "a.png"
    cv2.imwrite(str(out), np.full((40, 40, 3), 128, np.uint8))
    return out


def _edited(tiny_onnx: Path, out: Path, edit: Edit) -> Path:
    proto = onnx.load(str(tiny_onnx))
    (prop,) = [p for p in proto.metadata_props if p.key == "edgetk"]
    data = json.loads(prop.value)
    edit(data)
    prop.value = json.dumps(data)
    onnx.save(proto, str(out))
    return out


def _foreign(tiny_onnx: Path, out: Path, key: str, value: str) -> Path:
    proto = onnx.load(str(tiny_onnx))
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = key, value
    onnx.save(proto, str(out))
    return out


def _assert_one_line_error(result: Any, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: invalid model metadata: ")
    assert f"invalid model metadata: {message}" in lines[0]


@pytest.mark.parametrize(("edit", "message"), [r[1:] for r in SPEC_ROWS],
                         ids=[r[0] for r in SPEC_ROWS])  # fmt: skip
def test_bad_spec_field_is_named(tiny_onnx: Path, tmp_path: Path, image: Path, edit, message):
    model = _edited(tiny_onnx, tmp_path / "m.onnx", edit)
    _assert_one_line_error(_cli("predict", model, image), message)


@pytest.mark.parametrize(("key", "value", "message"), [r[1:] for r in ULTRALYTICS_ROWS],
                         ids=[r[0] for r in ULTRALYTICS_ROWS])  # fmt: skip
def test_bad_ultralytics_metadata_is_named(
    tiny_onnx: Path, tmp_path: Path, image: Path, key: str, value: str, message: str
):
    model = _foreign(tiny_onnx, tmp_path / "f.onnx", key, value)
    _assert_one_line_error(_cli("predict", model, image), message)


def test_inspect_reads_the_spec_like_every_command(tiny_onnx: Path, tmp_path: Path) -> None:
    model = _edited(tiny_onnx, tmp_path / "m.onnx", _set("preprocess.scale", "1/255"))
    _assert_one_line_error(_cli("inspect", model), "preprocess.scale: expected a number")


def test_good_metadata_still_reads(tiny_onnx: Path, tmp_path: Path, image: Path) -> None:
    """The checks refuse only what is wrong: valid Ultralytics values and our spec pass."""
    model = _foreign(tiny_onnx, tmp_path / "f.onnx", "names", "{0: 'a', 1: 'b[', 2: \"c'\"}")
    result = _cli("predict", model, image, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["top"][0]["label"] in ("a", "b[", "c'")
    spec = ModelSpec.from_json(ModelSpec(labels=("x",)).to_json())
    assert spec.labels == ("x",)


def test_metadata_that_is_not_json(tiny_onnx: Path, tmp_path: Path, image: Path) -> None:
    proto = onnx.load(str(tiny_onnx))
    (prop,) = [p for p in proto.metadata_props if p.key == "edgetk"]
    prop.value = "[" * 100000
    onnx.save(proto, str(tmp_path / "m.onnx"))
    _assert_one_line_error(_cli("predict", tmp_path / "m.onnx", image), "edgetk: not JSON")


# -- --labels against the graph -------------------------------------------------------------


def test_predict_refuses_labels_of_the_wrong_count(tiny_onnx: Path, image: Path) -> None:
    result = _cli("predict", tiny_onnx, image, "--labels", "a,b")
    assert result.exit_code == 2
    assert "--labels: 2 labels for a model with 3 classes" in result.stderr
    result = _cli("predict", tiny_onnx, image, "--labels", "a,b,c", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["top"][0]["label"] in ("a", "b", "c")


def test_torch_reference_refuses_labels_of_the_wrong_count(image: Path) -> None:
    result = _cli("predict", "zoo:lenet5", image, "--backend", "torch", "--labels", "a,b,c")
    assert result.exit_code == 2
    assert "--labels: 3 labels for a model with 10 classes" in result.stderr


# -- absurd sizes and broken files ----------------------------------------------------------


@pytest.mark.parametrize("command", ["export", "inspect"])
def test_imgsz_past_the_limit_is_bad_input(command: str, tmp_path: Path) -> None:
    args = ["-o", tmp_path / "m.onnx"] if command == "export" else []
    result = _cli(command, "zoo:lenet5", "--imgsz", "100000", *args)
    assert result.exit_code == 2
    assert f"--imgsz must be 1..{MAX_IMGSZ} pixels per side, got '100000'" in result.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_parse_imgsz_limits() -> None:
    assert parse_imgsz("8192") == (8192, 8192)
    assert parse_imgsz("1,2") == (1, 2)
    for bad in ("8193", "0", "-4", "64,100000", "9" * 5000):
        with pytest.raises(BadInputError, match=r"must be 1\.\.8192"):
            parse_imgsz(bad)
    for bad in ("2.5", "1,2,3", "+-5", "²"):
        with pytest.raises(BadInputError, match="expects an int"):
            parse_imgsz(bad)
    with pytest.raises(BadInputError, match=r"input\.shape: height 9000 is outside"):
        SpecOverrides(imgsz=(9000, 9000)).apply(ModelSpec())


def test_inspect_refuses_an_empty_onnx_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    result = _cli("inspect", empty)
    assert result.exit_code == 2
    assert f"not a valid ONNX file: {empty} (empty file)" in result.stderr


def test_inspect_refuses_a_truncated_onnx_file(tiny_onnx: Path, tmp_path: Path) -> None:
    data = tiny_onnx.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])  # inside the graph: protobuf cannot parse it
    result = _cli("inspect", cut)
    assert result.exit_code == 2
    assert f"not a valid ONNX file: {cut}" in result.stderr
    # Cut at a field boundary, it parses, but without the fields after the cut.
    proto = onnx.load(str(tiny_onnx))
    head = onnx.ModelProto(ir_version=proto.ir_version, producer_name="x")
    headless = tmp_path / "headless.onnx"
    headless.write_bytes(head.SerializeToString())
    result = _cli("inspect", headless)
    assert result.exit_code == 2
    assert "(truncated or not ONNX: no graph)" in result.stderr
    with pytest.raises(BadInputError, match="no graph"):
        load_onnx(headless)


@pytest.mark.parametrize(
    ("fmt", "shape", "classes"),
    [
        ("logits", (None, 4), 4),
        ("probs", (1, 4, 1, 1), 4),
        ("yolov8", (1, 84, 8400), 80),
        ("yolov5", (1, 25200, 85), 80),
        ("yolo-nms", (1, 300, 6), None),
        ("logits", (None, None), None),
    ],
)
def test_class_count_from_the_output_shape(fmt: str, shape: tuple, classes: int | None) -> None:
    from toolkit.model.spec import OutputSpec, check_label_count, class_count
    from toolkit.model.spec_schema import SpecFieldError

    task = "classify" if fmt in ("logits", "probs") else "detect"
    spec = ModelSpec(task=task, output=OutputSpec(format=fmt))  # type: ignore[arg-type]
    assert class_count(spec, shape) == classes
    wrong = spec.with_changes(labels=("a", "b", "c"))
    if classes is None:
        check_label_count(wrong, shape, "labels")  # unknown: nothing to hold them against
    else:
        with pytest.raises(SpecFieldError, match=f"3 labels for a model with {classes} classes"):
            check_label_count(wrong, shape, "labels")
