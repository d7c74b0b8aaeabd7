"""The library forms of `edgetk predict` and `edgetk val`: toolkit.tasks.predict.predict() and
toolkit.evaluate.val.validate(), on models whose answers are known from the image."""

from __future__ import annotations

from pathlib import Path

import pytest
from _classify_models import channel_mean_onnx, color_folder, color_image, write_image

from toolkit.errors import BadInputError
from toolkit.evaluate.val import validate
from toolkit.tasks.predict import predict, save_name


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return channel_mean_onnx(tmp_path_factory.mktemp("m") / "colours.onnx")


def _images(root: Path) -> dict[str, str]:
    items = {"a_red.png": "red", "b_green.jpg": "green", "sub/c_blue.png": "blue"}
    for name, colour in items.items():
        write_image(root / name, color_image(colour, (20, 30)))
    return {str(root / name): colour for name, colour in items.items()}


def test_predict_returns_one_result_per_image(colour_model: Path, tmp_path: Path) -> None:
    expected = _images(tmp_path / "imgs")
    (tmp_path / "imgs" / "broken.png").write_bytes(b"not an image")
    report = predict(colour_model, tmp_path / "imgs", topk=1, batch=2)
    assert {r.source: r.result.top1_label for r in report.images} == expected
    assert [s.name for s in report.skipped] == ["broken.png"]
    assert report.backend == "ort-cpu" and report.spec.task == "classify"
    doc = report.to_dict()
    assert doc["count"] == 3 and "saved" not in doc
    assert doc["results"][0]["source"] == next(iter(expected))


def test_predict_on_an_open_session_leaves_it_open(colour_model: Path, tmp_path: Path) -> None:
    from toolkit.backends import open_session

    expected = _images(tmp_path / "imgs")
    with open_session(colour_model) as session:
        first = predict(session, tmp_path / "imgs", topk=1)
        again = predict(session, tmp_path / "imgs", topk=1)  # still usable
    assert [r.to_dict() for r in first.images] == [r.to_dict() for r in again.images]
    assert len(first.images) == len(expected)


def test_predict_writes_annotated_copies(colour_model: Path, tmp_path: Path) -> None:
    _images(tmp_path / "imgs")
    report = predict(colour_model, tmp_path / "imgs", save=tmp_path / "out")
    assert report.saved == tmp_path / "out"
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in report.saved.rglob("*.*"))
    assert written == ["a_red.png", "b_green.jpg", "sub/c_blue.png"]
    assert report.to_dict()["saved"] == str(tmp_path / "out")


def test_predict_checks_before_the_model_loads(tmp_path: Path) -> None:
    missing_model = tmp_path / "nothing.onnx"
    with pytest.raises(BadInputError, match="--batch"):
        predict(missing_model, tmp_path, batch=0)
    with pytest.raises(BadInputError):
        predict(missing_model, tmp_path / "no-such-source")


def test_save_names() -> None:
    assert save_name("clip.mp4#frame=12", "clip.mp4") == Path("clip_000012.jpg")
    assert save_name("x/a.gif", "x/a.gif") == Path("a.png")


def test_validate_picks_the_classifier_metric(colour_model: Path, tmp_path: Path) -> None:
    color_folder(tmp_path / "val", per_class=2)
    seen: list[tuple[int, int]] = []
    val = validate(
        colour_model, tmp_path / "val", batch=2, progress=lambda d, t: seen.append((d, t))
    )
    assert val.task == "classify" and val.result["top1"] == 1.0
    assert val.to_dict()["backend"] == "ort-cpu" and seen and seen[-1][0] == seen[-1][1]


def test_validate_refuses_a_missing_set(colour_model: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="data set not found"):
        validate(colour_model, tmp_path / "none")
