"""Model references and weights: every form of SPEC "Model references", and its errors."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from _export_models import write_models

from toolkit.errors import BadInputError, MissingDependencyError, ModelLoadError
from toolkit.loading import load_model
from toolkit.model.spec import IMAGENET_MEAN, SpecOverrides


@pytest.fixture()
def models_py(tmp_path: Path) -> Path:
    return write_models(tmp_path / "src")


def _tiny(models_py: Path, num_classes: int = 3) -> torch.nn.Module:
    return load_model(f"{models_py}:TinyNet", num_classes=num_classes).module


def _out(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module(x)


X = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("symbol", ["TinyNet", "build"])
def test_file_reference_class_and_factory(models_py: Path, symbol: str) -> None:
    ref = f"{models_py}:{symbol}"
    loaded = load_model(ref, num_classes=5)
    assert isinstance(loaded.module, torch.nn.Module)
    assert not loaded.module.training
    assert _out(loaded.module, X).shape == (2, 5)
    assert loaded.source == ref and loaded.spec.source == ref
    spec = loaded.spec
    assert spec.input.shape == (None, 3, 224, 224)
    assert spec.input.color == "rgb"
    assert spec.preprocess.resize == "stretch"
    assert spec.preprocess.scale == pytest.approx(1 / 255)
    assert spec.preprocess.mean == (0.0, 0.0, 0.0) and spec.preprocess.std == (1.0, 1.0, 1.0)
    assert loaded.spec_is_default


def test_overrides_apply_to_default_spec(models_py: Path) -> None:
    overrides = SpecOverrides(imgsz=(40, 48), channels=1, labels=("a", "b", "c"))
    loaded = load_model(f"{models_py}:TinyNet", overrides=overrides)
    assert loaded.spec.input.shape == (None, 1, 40, 48)
    assert loaded.spec.input.color == "gray"
    assert loaded.spec.labels == ("a", "b", "c")
    # in_chans reached the class: it takes one channel now.
    assert _out(loaded.module, torch.rand(1, 1, 40, 48)).shape == (1, 3)


def test_module_reference(models_py: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "pkgroot" / "edgetk_test_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(models_py.read_text())
    monkeypatch.syspath_prepend(str(tmp_path / "pkgroot"))
    loaded = load_model("edgetk_test_pkg.nets:build", num_classes=4)
    assert _out(loaded.module, X).shape == (2, 4)
    assert loaded.source == "edgetk_test_pkg.nets:build"


@pytest.mark.parametrize("suffix", [".ts", ".pt"])
def test_torchscript(models_py: Path, tmp_path: Path, suffix: str) -> None:
    model = _tiny(models_py)
    path = tmp_path / f"scripted{suffix}"
    torch.jit.script(model).save(str(path))
    loaded = load_model(str(path))
    assert isinstance(loaded.module, torch.jit.ScriptModule)
    torch.testing.assert_close(_out(loaded.module, X), _out(model, X))


def test_exported_program_keeps_its_input_size(models_py: Path, tmp_path: Path) -> None:
    model = _tiny(models_py)
    x = torch.rand(2, 3, 40, 48)
    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(model, (x,)), str(path))
    loaded = load_model(str(path))
    torch.testing.assert_close(_out(loaded.module, x), _out(model, x))
    assert loaded.spec.input.shape == (None, 3, 40, 48)


def _checkpoints(state: dict) -> dict[str, object]:
    return {
        "plain": state,
        "state_dict": {"state_dict": state},
        "model": {"model": state},
        "dataparallel": {"module." + k: v for k, v in state.items()},
    }


@pytest.mark.parametrize("form", ["plain", "state_dict", "model", "dataparallel"])
def test_weights_forms(models_py: Path, tmp_path: Path, form: str) -> None:
    trained = _tiny(models_py)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.5)  # differ from a fresh init, so loading is visible
    path = tmp_path / "w.pt"
    torch.save(_checkpoints(trained.state_dict())[form], path)
    loaded = load_model(f"{models_py}:TinyNet", weights=str(path))
    torch.testing.assert_close(_out(loaded.module, X), _out(trained, X))
    assert loaded.spec.extra["weights"] == str(path)


def test_checkpoint_labels_set_class_count(models_py: Path, tmp_path: Path) -> None:
    trained = _tiny(models_py, num_classes=4)
    path = tmp_path / "best.pt"
    labels = ["ok", "scratch", "spot", "crack"]
    torch.save({"state_dict": trained.state_dict(), "labels": labels, "imgsz": [48, 40]}, path)
    # The class defaults to 3 classes: the labels make it 4.
    loaded = load_model(f"{models_py}:TinyNet", weights=str(path))
    assert loaded.spec.labels == tuple(labels)
    assert loaded.spec.input.shape == (None, 3, 48, 40)
    torch.testing.assert_close(_out(loaded.module, X), _out(trained, X))


def test_checkpoint_naming_its_arch_is_a_model(models_py: Path, tmp_path: Path) -> None:
    trained = _tiny(models_py, num_classes=2)
    path = tmp_path / "best.pt"
    arch = f"{models_py}:TinyNet"
    torch.save({"state_dict": trained.state_dict(), "labels": ["a", "b"], "arch": arch}, path)
    loaded = load_model(str(path))
    assert loaded.source == arch and loaded.weights == str(path)
    assert loaded.spec.labels == ("a", "b")
    torch.testing.assert_close(_out(loaded.module, X), _out(trained, X))


def test_mismatched_keys_are_named(models_py: Path, tmp_path: Path) -> None:
    state = _tiny(models_py, num_classes=5).state_dict()
    del state["features.0.weight"]
    state["extra.bias"] = torch.zeros(2)
    path = tmp_path / "w.pt"
    torch.save(state, path)
    with pytest.raises(ModelLoadError) as info:
        load_model(f"{models_py}:TinyNet", weights=str(path))
    msg = str(info.value)
    assert "\n" not in msg and info.value.exit_code == 2
    assert "1 missing key (features.0.weight)" in msg
    assert "1 unexpected key (extra.bias)" in msg
    assert "head.weight: weights [5, 8], model [3, 8]" in msg


def test_pickled_full_model_is_refused(models_py: Path, tmp_path: Path) -> None:
    path = tmp_path / "full.pt"
    torch.save(_tiny(models_py), path)  # pickles the class: not loadable with weights_only
    with pytest.raises(ModelLoadError) as info:
        load_model(f"{models_py}:TinyNet", weights=str(path))
    msg = str(info.value)
    assert "\n" not in msg
    assert "pickles Python objects" in msg and "state_dict()" in msg


def test_zoo_reference_brings_its_spec() -> None:
    loaded = load_model("zoo:resnet18", num_classes=4)
    assert loaded.source == "zoo:resnet18"
    assert loaded.spec.preprocess.mean == pytest.approx(IMAGENET_MEAN)
    assert not loaded.spec_is_default
    assert _out(loaded.module, torch.rand(1, 3, 64, 64)).shape == (1, 4)


def test_zoo_weights_with_labels(tmp_path: Path) -> None:
    source = load_model("zoo:lenet5", num_classes=3).module
    path = tmp_path / "lenet.pt"
    torch.save({"state_dict": source.state_dict(), "labels": ["a", "b", "c"]}, path)
    loaded = load_model("zoo:lenet5", weights=str(path))
    assert loaded.spec.labels == ("a", "b", "c")
    c, (h, w) = loaded.spec.input.channels, loaded.spec.input.hw
    x = torch.rand(1, c, h, w)
    torch.testing.assert_close(_out(loaded.module, x), _out(source, x))


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ("{dir}/missing.py:TinyNet", BadInputError, "model file not found"),
        ("{py}:Nope", ModelLoadError, "no 'Nope' in"),
        ("{py}:CONFIG", BadInputError, "is a dict, not an nn.Module class"),
        ("{py}:not_a_model", BadInputError, "returned a int, not a torch.nn.Module"),
        ("{py}:Broken", ModelLoadError, "RuntimeError: boom"),
        ("{py}", BadInputError, "name the class or factory"),
        ("resnet_typo", BadInputError, "unknown model reference"),
        ("{dir}/model.onnx", BadInputError, "is not a PyTorch model"),
        ("{dir}/missing.ts", BadInputError, "model file not found"),
        ("no_such_module_xyz.nets:Net", ModelLoadError, "cannot import module"),
        ("zoo:no-such-net", BadInputError, "unknown zoo model 'no-such-net'"),
    ],
)
def test_bad_references(models_py: Path, ref: str, error: type, message: str) -> None:
    ref = ref.format(py=models_py, dir=models_py.parent)
    with pytest.raises(error) as info:
        load_model(ref)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_missing_symbol_lists_candidates(models_py: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"it defines: TinyNet, build"):
        load_model(f"{models_py}:TinyNett")


def test_weights_file_missing(models_py: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="weights file not found"):
        load_model(f"{models_py}:TinyNet", weights=str(tmp_path / "nope.pt"))


def test_weights_file_not_a_checkpoint(models_py: Path, tmp_path: Path) -> None:
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelLoadError, match="not a PyTorch checkpoint"):
        load_model(f"{models_py}:TinyNet", weights=str(path))


@pytest.mark.parametrize("hub", ["torchvision", "timm"])
def test_missing_hub_package_names_it(hub: str) -> None:
    if importlib.util.find_spec(hub) is not None:
        pytest.skip(f"{hub} is installed here")
    with pytest.raises(MissingDependencyError, match=f"{hub} is not installed") as info:
        load_model(f"{hub}:resnet18")
    assert info.value.exit_code == 2


@pytest.fixture()
def torchvision_or_stand_in(models_py: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The real torchvision where installed, else a stand-in with the same get_model() call.

    torchvision is not a dependency; the stand-in lets the torchvision: path run here. It is
    removed from sys.modules afterwards so no other test sees it.
    """
    if importlib.util.find_spec("torchvision") is not None:
        yield
        return
    fake = tmp_path / "hub" / "torchvision"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("from torchvision import models\n")
    (fake / "models.py").write_text(
        models_py.read_text()
        + "\ndef get_model(name, weights=None, num_classes=1000):\n"
        + "    if name != 'resnet18':\n"
        + "        raise ValueError(f'Unknown model {name}')\n"
        + "    return TinyNet(num_classes=num_classes)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "hub"))
    try:
        yield
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "torchvision"]:
            del sys.modules[name]


@pytest.mark.usefixtures("torchvision_or_stand_in")
def test_hub_reference_plumbing() -> None:
    """torchvision:NAME goes through torchvision.models.get_model with num_classes."""
    loaded = load_model("torchvision:resnet18", num_classes=4)
    assert _out(loaded.module, torch.rand(1, 3, 64, 64)).shape == (1, 4)
    assert loaded.spec.preprocess.mean == pytest.approx(IMAGENET_MEAN)
    assert loaded.spec.preprocess.resize == "center-crop"
    with pytest.raises(ModelLoadError, match="torchvision:no_such_net"):
        load_model("torchvision:no_such_net")
