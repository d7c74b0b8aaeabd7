"""Augmentation and `edgetk train`: checkpoints, learning, layouts, CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from toolkit.cli.app import app
from toolkit.data.synthetic import make_classification_set
from toolkit.errors import BadInputError, OutputExistsError
from toolkit.train import AugmentConfig, augment, train_classifier

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic defects, 4 classes x (6 train + 2 val), 32x32."""
    root = tmp_path_factory.mktemp("data") / "defects"
    make_classification_set(root, n_per_class=8, size=32, splits={"train": 0.75, "val": 0.25})
    return root


@pytest.fixture(scope="module")
def easy_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ok vs spot where the spot is a big dark disc: any working trainer learns it at once."""
    root = tmp_path_factory.mktemp("data") / "easy"
    rng = np.random.default_rng(0)
    for split, n in (("train", 64), ("val", 24)):
        for cls in ("ok", "spot"):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                # Textured, not flat: flat images starve BatchNorm of variance.
                noise = rng.normal(rng.uniform(110, 190), 25, (40, 40, 3)).astype(np.float32)
                img = np.clip(cv2.GaussianBlur(noise, (0, 0), 1.0), 0, 255).astype(np.uint8)
                if cls == "spot":
                    c = (int(rng.integers(10, 30)), int(rng.integers(10, 30)))
                    cv2.circle(img, c, int(rng.integers(6, 9)), (30, 30, 30), -1)
                cv2.imwrite(str(root / split / cls / f"{i}.png"), img)
    return root


@pytest.mark.parametrize("shape", [(96, 96, 3), (40, 64, 3), (50, 30), (32, 32, 1)])
def test_augment_keeps_shape_and_dtype(shape: tuple[int, ...]) -> None:
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    for seed in range(5):
        out = augment(img, np.random.default_rng(seed))
        assert out.dtype == np.uint8
        assert out.shape == img.shape[:2] or out.shape == img.shape


def test_augment_is_seeded_and_changes_the_image() -> None:
    img = np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    a = augment(img, np.random.default_rng(3))
    b = augment(img, np.random.default_rng(3))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, img)


def test_augment_transforms_are_exact() -> None:
    img = np.random.default_rng(2).integers(0, 256, (24, 36, 3), dtype=np.uint8)
    rng = np.random.default_rng(0)
    off = AugmentConfig.off()
    assert np.array_equal(augment(img, rng, off), img)
    hflip = AugmentConfig(hflip=1, vflip=0, scale=(1, 1), ratio=(1, 1), rotate=0,
                          brightness=0, contrast=0)  # fmt: skip
    assert np.array_equal(augment(img, rng, hflip), img[:, ::-1])
    vflip = AugmentConfig(hflip=0, vflip=1, scale=(1, 1), ratio=(1, 1), rotate=0,
                          brightness=0, contrast=0)  # fmt: skip
    assert np.array_equal(augment(img, rng, vflip), img[::-1])
    bright = AugmentConfig(hflip=0, vflip=0, scale=(1, 1), ratio=(1, 1), rotate=0,
                           brightness=0.5, contrast=0)  # fmt: skip
    flat = np.full((8, 8, 3), 100, np.uint8)
    values = {int(augment(flat, np.random.default_rng(s), bright)[0, 0, 0]) for s in range(20)}
    assert min(values) < 90 and max(values) > 110


def test_one_epoch_writes_a_safe_checkpoint(tiny_set: Path, tmp_path: Path) -> None:
    import torch

    from toolkit.zoo import create_model

    out = tmp_path / "w.pt"
    calls: list[tuple[int, int, str]] = []
    report = train_classifier(
        "zoo:defect-cls",
        tiny_set,
        out,
        epochs=1,
        imgsz=32,
        batch=8,
        progress=lambda done, total, text: calls.append((done, total, text)),
    )
    # One call per epoch; the first epoch is always a new best.
    assert [c[:2] for c in calls] == [(1, 1)]
    assert calls[0][2].startswith("loss ") and calls[0][2].endswith(" best")
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    assert set(ckpt) == {"state_dict", "labels", "arch", "imgsz", "in_chans", "epoch", "val_top1"}
    # The zoo's label order is kept when the folders are its labels (ok = class 0).
    assert ckpt["labels"] == ["ok", "scratch", "spot", "crack"] == report.labels
    assert ckpt["arch"] == "zoo:defect-cls"
    assert ckpt["imgsz"] == [32, 32] and ckpt["in_chans"] == 3 and ckpt["epoch"] == 1
    assert ckpt["val_top1"] == report.best_val_top1
    model, _ = create_model("defect-cls", num_classes=4, pretrained=False)
    model.load_state_dict(ckpt["state_dict"])
    assert report.n_train == 24 and report.n_val == 8 and len(report.history) == 1


def test_schedule_is_warmup_then_cosine_to_the_floor() -> None:
    import math

    import torch

    from toolkit.train.loop import Recipe, _scheduler

    total, warmup, floor, peak = 40, 4, 0.01, 3e-3
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=peak)
    sched = _scheduler(opt, Recipe(1, peak, 0.0, warmup, floor), total)
    for step in range(total + 1):
        if step < warmup:
            want = (step + 1) / warmup
        else:
            want = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * (step - warmup) / 36))
        assert opt.param_groups[0]["lr"] == pytest.approx(peak * want, rel=1e-9)
        opt.step()
        sched.step()


def test_ema_ramps_up_and_copies_integer_buffers() -> None:
    import math

    import torch

    from toolkit.train.loop import Recipe, _ema

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    start = model[0].weight.detach().clone()
    ema = _ema(model, Recipe(1, 1e-3, 0.0, 1, 0.01, ema_decay=0.999, ema_ramp=100.0))
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].num_batches_tracked.fill_(7)
    ema.update_parameters(model)
    d = 0.999 * (1 - math.exp(-1 / 100))
    assert torch.allclose(ema.module[0].weight, d * start + (1 - d) * (start + 1))
    assert int(ema.module[1].num_batches_tracked) == 7


def test_easy_set_is_learned(easy_set: Path, tmp_path: Path) -> None:
    report = train_classifier(
        "defect-cls",
        easy_set,
        tmp_path / "w.pt",
        epochs=4,
        imgsz=40,
        batch=16,
        lr=5e-3,
    )
    assert report.best_val_top1 >= 0.8
    assert report.labels == ["ok", "spot"]


def test_single_folder_is_split_per_class(easy_set: Path, tmp_path: Path) -> None:
    report = train_classifier(
        "zoo:defect-cls",
        easy_set / "val",
        tmp_path / "w.pt",
        epochs=1,
        imgsz=32,
        val_fraction=0.25,
    )
    assert report.layout.startswith("split")
    assert (report.n_train, report.n_val) == (36, 12)


def test_workers_give_the_same_training(tiny_set: Path, tmp_path: Path) -> None:
    import torch

    kw = {"epochs": 1, "imgsz": 32, "batch": 8}
    train_classifier("zoo:defect-cls", tiny_set, tmp_path / "a.pt", workers=0, **kw)
    train_classifier("zoo:defect-cls", tiny_set, tmp_path / "b.pt", workers=2, **kw)
    a = torch.load(tmp_path / "a.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_inputs_raise_clear_errors(tiny_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "exists.pt"
    out.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        train_classifier("zoo:defect-cls", tiny_set, out)
    assert out.read_bytes() == b"keep"
    with pytest.raises(BadInputError, match="not found"):
        train_classifier("zoo:defect-cls", tmp_path / "nope", tmp_path / "w.pt")
    with pytest.raises(BadInputError, match="unknown zoo model"):
        train_classifier("zoo:nonet", tiny_set, tmp_path / "w.pt")
    with pytest.raises(BadInputError, match="epochs"):
        train_classifier("zoo:defect-cls", tiny_set, tmp_path / "w.pt", epochs=0)


def test_cli_train_json_and_existing_output(tiny_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "w.pt"
    args = ["train", "zoo:defect-cls", str(tiny_set), "-o", str(out), "--epochs", "1"]
    args += ["--imgsz", "32", "--batch", "8", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["labels"] == ["ok", "scratch", "spot", "crack"]
    assert report["output"] == str(out) and out.is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 2
    assert "exists" in again.output and "--force" in again.output
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--epochs", "0"], "epochs"),
        (["--imgsz", "abc"], "imgsz"),
        (["--device", "tpu"], "device"),
    ],
)
def test_cli_train_bad_options_exit_2(
    tiny_set: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    args = ["train", "zoo:defect-cls", str(tiny_set), "-o", str(tmp_path / "w.pt"), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "w.pt").exists()
