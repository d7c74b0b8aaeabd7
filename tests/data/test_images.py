"""Reading images and videos (toolkit.data.images) and ImageFolder data sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _classify_models import color_folder, color_image, write_image, write_video

from toolkit.data.imagefolder import ImageFolder
from toolkit.data.images import iter_images, read_image, resolve_source
from toolkit.errors import BadInputError


def test_read_image_keeps_channels_and_non_ascii_paths(tmp_path: Path, rng) -> None:
    color = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (10, 12), dtype=np.uint8)
    p_color = write_image(tmp_path / "données" / "ørken 1.png", color)
    p_gray = write_image(tmp_path / "灰色.png", gray)
    assert np.array_equal(read_image(p_color), color)
    out = read_image(p_gray)
    assert out.ndim == 2 and np.array_equal(out, gray)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not an image at all", "cannot decode image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "cannot decode image"),
        (b"", "empty image file"),
    ],
)
def test_read_image_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(BadInputError, match=message):
        read_image(p)


def test_read_image_missing(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="image not found"):
        read_image(tmp_path / "nope.jpg")


def _tree(root: Path) -> list[str]:
    write_image(root / "b.png", color_image("red"))
    write_image(root / "a.jpg", color_image("green"))
    write_image(root / "sub" / "deeper" / "c.bmp", color_image("blue"))
    write_image(root / "sub" / "a.png", color_image("red"))
    (root / "notes.txt").write_text("not an image")
    (root / "._a.jpg").write_bytes(b"macOS resource fork, not an image")
    write_image(root / ".cache" / "x.png", color_image("red"))
    return [str(root / n) for n in ("a.jpg", "b.png", "sub/a.png", "sub/deeper/c.bmp")]


def test_iter_images_folder_is_recursive_sorted_and_skips_hidden(tmp_path: Path) -> None:
    expected = _tree(tmp_path)
    items = list(iter_images(tmp_path))
    assert [name for name, _ in items] == expected
    assert all(frame.shape == (20, 24, 3) for _, frame in items)
    # The green image (a.jpg) keeps its colour through JPEG: green channel dominates.
    assert items[0][1][..., 1].mean() > 200


def test_iter_images_glob_and_single_file(tmp_path: Path) -> None:
    _tree(tmp_path)
    names = [n for n, _ in iter_images(str(tmp_path / "**" / "*.png"))]
    assert names == [str(tmp_path / "b.png"), str(tmp_path / "sub" / "a.png")]
    [(name, frame)] = list(iter_images(tmp_path / "b.png"))
    assert name == str(tmp_path / "b.png") and frame[0, 0].tolist() == [0, 0, 255]


def test_iter_images_video_frames_and_stride(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi", frames=7)
    items = list(iter_images(video))
    assert [n for n, _ in items] == [f"{video}#frame={i}" for i in range(7)]
    assert items[0][1].shape == (24, 32, 3)
    # Frame 0 is red, frame 1 green (MJPG is lossy: compare the dominant channel).
    assert items[0][1].mean(axis=(0, 1)).argmax() == 2
    assert items[1][1].mean(axis=(0, 1)).argmax() == 1
    strided = [n for n, _ in iter_images(video, video_stride=3)]
    assert strided == [f"{video}#frame={i}" for i in (0, 3, 6)]


def test_iter_images_corrupt_video(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(BadInputError, match="video"):
        list(iter_images(bad))


def test_iter_images_missing_source_fails_at_call(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(BadInputError) as e:
        iter_images(missing)  # no next(): the source is checked when the call is made
    assert str(e.value) == (
        f"source not found: {missing} (expected an image, a folder, a glob or a video file)"
    )


@pytest.mark.parametrize(("make", "message"), [("empty_dir", "no images"), ("glob", "no images")])
def test_iter_images_nothing_there(tmp_path: Path, make: str, message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    src = tmp_path / "empty" if make == "empty_dir" else str(tmp_path / "*.jpg")
    with pytest.raises(BadInputError, match=message):
        resolve_source(src)


def test_iter_images_corrupt_image_in_folder(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", color_image("red"))
    (tmp_path / "b.png").write_bytes(b"garbage")
    write_image(tmp_path / "c.png", color_image("blue"))
    # Strict: the corrupt file stops the run, naming it.
    it = iter_images(tmp_path, strict=True)
    assert next(it)[0].endswith("a.png")
    with pytest.raises(BadInputError, match=r"cannot decode image .*b\.png"):
        next(it)
    # By default it is skipped and listed (relative to the folder), and the run goes on.
    frames = iter_images(tmp_path)
    assert [Path(n).name for n, _ in frames] == ["a.png", "c.png"]
    assert [str(s) for s in frames.skipped] == ["b.png: cannot decode"]


def test_iter_images_bad_stride(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="stride"):
        iter_images(tmp_path, video_stride=0)


def test_imagefolder_sorted_folder_names(tmp_path: Path) -> None:
    color_folder(tmp_path, per_class=2)
    ds = ImageFolder(tmp_path)
    assert ds.classes == ("blue", "green", "red")
    assert len(ds) == 6
    assert [(p.parent.name, t) for p, t in ds.samples] == [
        ("blue", 0),
        ("blue", 0),
        ("green", 1),
        ("green", 1),
        ("red", 2),
        ("red", 2),
    ]
    assert ds.targets.tolist() == [0, 0, 1, 1, 2, 2]
    assert ds.counts() == {"blue": 2, "green": 2, "red": 2}


def test_imagefolder_index_follows_model_labels(tmp_path: Path) -> None:
    # Only two of four classes present; the index is the position in the model's labels.
    color_folder(tmp_path, per_class=1, classes=("red", "blue"))
    ds = ImageFolder(tmp_path, labels=("green", "red", "yellow", "blue"))
    assert ds.classes == ("green", "red", "yellow", "blue")
    assert {p.parent.name: t for p, t in ds.samples} == {"red": 1, "blue": 3}
    assert ds.counts() == {"red": 1, "blue": 1}


def test_imagefolder_folder_not_in_labels(tmp_path: Path) -> None:
    color_folder(tmp_path, per_class=1)
    with pytest.raises(
        BadInputError, match=r"class folder\(s\) blue in .* not among the model's labels"
    ):
        ImageFolder(tmp_path, labels=("red", "green"))


def test_imagefolder_bad_roots(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="data set not found"):
        ImageFolder(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    write_image(tmp_path / "flat" / "x.png", color_image("red"))
    with pytest.raises(BadInputError, match="no class folders"):
        ImageFolder(tmp_path / "flat")
    (tmp_path / "hollow" / "a").mkdir(parents=True)
    with pytest.raises(BadInputError, match="no images"):
        ImageFolder(tmp_path / "hollow")
