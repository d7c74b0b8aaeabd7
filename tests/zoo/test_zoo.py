"""The zoo: published parameter counts, forward passes, specs, registry rules, `edgetk zoo`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from toolkit.errors import BadInputError
from toolkit.model.spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec
from toolkit.zoo import create_model, get_registry, list_models
from toolkit.zoo.registry import Registry, ZooEntry

# Published counts (torchvision's definitions; LeNet-5 classic with C5 as a conv), written out
# here so that a change in the catalog's own numbers cannot hide a wrong architecture.
PUBLISHED = {
    "lenet5": 61_706,
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "googlenet": 6_624_904,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "mobilenetv2": 3_504_872,
}
IMAGENET = [n for n in PUBLISHED if n != "lenet5"]


def _params_on_meta(name: str, **kwargs: int) -> int:
    import torch

    with torch.device("meta"):  # no memory is allocated, even for VGG-19
        model, _ = create_model(name, pretrained=False, **kwargs)
    return sum(p.numel() for p in model.parameters())


def test_catalog_holds_the_lecture_families() -> None:
    assert set(list_models()) == {*PUBLISHED, "defect-cls", "defect-det"}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_parameter_count_matches_published(name: str) -> None:
    entry = get_registry().get(name)
    assert entry.published_params == PUBLISHED[name]
    classes = 10 if name == "lenet5" else 1000
    assert entry.num_classes == classes
    assert _params_on_meta(name, num_classes=classes) == PUBLISHED[name]


def test_head_size_follows_num_classes() -> None:
    # ResNet-18's fc: 512 * 1000 + 1000 -> 512 * 4 + 4
    assert _params_on_meta("resnet18", num_classes=4) == PUBLISHED["resnet18"] - 512 * 996 - 996


def test_defect_cls_is_small() -> None:
    assert _params_on_meta("defect-cls") < 1_000_000


@pytest.mark.parametrize(
    ("name", "size", "kwargs", "classes"),
    [
        ("lenet5", 32, {}, 10),
        ("defect-cls", 96, {}, 4),
        ("resnet18", 64, {}, 1000),
        ("mobilenetv2", 64, {}, 1000),
        ("resnet18", 64, {"num_classes": 7, "in_chans": 1}, 7),
        ("defect-cls", 64, {"num_classes": 2}, 2),
    ],
)
def test_forward_on_cpu(name: str, size: int, kwargs: dict, classes: int) -> None:
    import torch

    model, spec = create_model(name, **kwargs)
    assert not model.training  # built for inference; trainers call .train()
    x = torch.randn(1, spec.input.channels, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x)
    assert tuple(y.shape) == (1, classes)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", IMAGENET)
def test_imagenet_default_spec(name: str) -> None:
    spec = get_registry().get(name).spec
    assert spec.input.shape == (None, 3, 224, 224)
    assert spec.input.color == "rgb"
    assert spec.preprocess.resize == "center-crop"
    assert spec.preprocess.mean == IMAGENET_MEAN
    assert spec.preprocess.std == IMAGENET_STD


def test_lenet5_and_defect_cls_specs() -> None:
    reg = get_registry()
    lenet = reg.get("lenet5").spec
    assert lenet.input.shape == (None, 1, 32, 32)
    assert lenet.input.color == "gray"
    assert lenet.preprocess.resize == "stretch"
    defect = reg.get("zoo:defect-cls")
    assert defect.spec.input.shape == (None, 3, 96, 96)
    assert defect.spec.preprocess.resize == "stretch"
    assert defect.spec.labels == ("ok", "scratch", "spot", "crack")
    assert defect.num_classes == 4


def test_create_model_spec_carries_source_and_adapts() -> None:
    _, spec = create_model("zoo:defect-cls", pretrained=False)
    assert spec.source == "zoo:defect-cls"
    assert spec.labels == ("ok", "scratch", "spot", "crack")
    assert ModelSpec.from_json(spec.to_json()) == spec  # travels into ONNX metadata intact

    _, spec = create_model("defect-cls", num_classes=3, pretrained=False)
    assert spec.labels == ()  # four names cannot describe three classes

    _, spec = create_model("resnet18", in_chans=1, pretrained=False)
    assert spec.input.shape == (None, 1, 224, 224)
    assert spec.input.color == "gray"
    assert len(spec.preprocess.mean) == 1
    assert spec.preprocess.mean[0] == pytest.approx(sum(IMAGENET_MEAN) / 3)


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(BadInputError, match=r"unknown zoo model 'resnet9'.*resnet18"):
        create_model("resnet9")


def test_duplicate_name_raises() -> None:
    reg = Registry()
    entry = get_registry().get("lenet5")
    reg.register(entry)
    with pytest.raises(ValueError, match="lenet5"):
        reg.register(ZooEntry(name="lenet5", factory=entry.factory, spec=entry.spec))


def test_registry_is_fresh_each_call() -> None:
    a, b = get_registry(), get_registry()
    assert a is not b
    assert a.names() == b.names()


def test_registry_does_not_import_torch() -> None:
    code = (
        "import sys, toolkit.zoo; toolkit.zoo.get_registry(); toolkit.zoo.list_models(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_load_shipped_weights_plain_and_checkpoint(tmp_path) -> None:
    import torch

    from toolkit.zoo.create import load_shipped_weights

    torch.manual_seed(1)
    src, _ = create_model("defect-cls", pretrained=False)
    path = tmp_path / "defect-cls.pt"
    torch.save(src.state_dict(), path)
    dst, _ = create_model("defect-cls", pretrained=False)
    assert load_shipped_weights(dst, path) is None
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k

    # Checkpoint form with labels; a 2-class model keeps its own head, loads the features.
    torch.save({"state_dict": src.state_dict(), "labels": ["ok", "ng"]}, path)
    small, _ = create_model("defect-cls", num_classes=2, pretrained=False)
    assert load_shipped_weights(small, path) == ("ok", "ng")
    first_conv = next(k for k in src.state_dict() if k.endswith("weight"))
    assert torch.equal(small.state_dict()[first_conv], src.state_dict()[first_conv])
    assert small.head[-1].weight.shape == (2, 160)


def test_load_shipped_weights_rejects_foreign_file(tmp_path) -> None:
    import torch

    from toolkit.errors import ModelLoadError
    from toolkit.zoo.create import load_shipped_weights

    path = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    model, _ = create_model("lenet5", pretrained=False)
    with pytest.raises(ModelLoadError, match="do not match"):
        load_shipped_weights(model, path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError):
        load_shipped_weights(model, path)


def test_cli_zoo_json() -> None:
    from typer.testing import CliRunner

    from toolkit.cli.app import app

    result = CliRunner().invoke(app, ["zoo", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {row["name"]: row for row in data["models"]}
    assert set(rows) == {*PUBLISHED, "defect-cls", "defect-det"}
    for name, params in PUBLISHED.items():
        assert rows[name]["params"] == params
    assert rows["vgg16"]["input_shape"] == [3, 224, 224]
    assert rows["lenet5"]["input_shape"] == [1, 32, 32]
    assert rows["defect-cls"]["labels"] == ["ok", "scratch", "spot", "crack"]


def test_cli_zoo_table() -> None:
    from typer.testing import CliRunner

    from toolkit.cli.app import app

    result = CliRunner().invoke(app, ["zoo"])
    assert result.exit_code == 0, result.output
    assert "138,357,544" in result.stdout
    assert "3x96x96" in result.stdout
    assert result.stderr == ""  # the human table goes to stdout: `edgetk zoo | grep` works
