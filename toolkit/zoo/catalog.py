"""The zoo's entries, registered explicitly.

Each factory imports its family module only when called, so building the registry (and
``edgetk zoo --help``) never imports torch.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from toolkit.model.spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    InputSpec,
    ModelSpec,
    OutputSpec,
    PreprocessSpec,
)
from toolkit.zoo.registry import Registry, ZooEntry


def _build(module: str, func: str, *args: Any, num_classes: int, in_chans: int) -> Any:
    """Import ``toolkit.zoo.<module>`` and call ``func(*args, num_classes=, in_chans=)``."""
    mod = importlib.import_module(f"toolkit.zoo.{module}")
    return getattr(mod, func)(*args, num_classes=num_classes, in_chans=in_chans)


def _factory(module: str, func: str, *args: Any) -> functools.partial[Any]:
    return functools.partial(_build, module, func, *args)


def _imagenet_spec() -> ModelSpec:
    """ImageNet convention: RGB 224x224, resize + center crop, ImageNet mean/std."""
    return ModelSpec(
        task="classify",
        input=InputSpec(shape=(None, 3, 224, 224), color="rgb"),
        preprocess=PreprocessSpec(
            resize="center-crop", scale=1 / 255, mean=IMAGENET_MEAN, std=IMAGENET_STD
        ),
    )


# name, module, function, extra args, published parameters at 1000 classes, description
_IMAGENET: list[tuple[str, str, str, tuple[str, ...], int, str]] = [
    ("alexnet", "alexnet", "alexnet", (), 61_100_840, "AlexNet (2012): 5 conv + 3 FC"),
    ("vgg11", "vgg", "vgg", ("vgg11",), 132_863_336, "VGG-11: stacked 3x3 convs"),
    ("vgg13", "vgg", "vgg", ("vgg13",), 133_047_848, "VGG-13: stacked 3x3 convs"),
    ("vgg16", "vgg", "vgg", ("vgg16",), 138_357_544, "VGG-16: stacked 3x3 convs"),
    ("vgg19", "vgg", "vgg", ("vgg19",), 143_667_240, "VGG-19: stacked 3x3 convs"),
    ("googlenet", "googlenet", "googlenet", (), 6_624_904, "GoogLeNet: Inception v1 modules"),
    ("resnet18", "resnet", "resnet", ("resnet18",), 11_689_512, "ResNet-18: residual blocks"),
    ("resnet34", "resnet", "resnet", ("resnet34",), 21_797_672, "ResNet-34: residual blocks"),
    ("resnet50", "resnet", "resnet", ("resnet50",), 25_557_032, "ResNet-50: bottleneck blocks"),
    ("mobilenetv2", "mobilenet", "mobilenetv2", (), 3_504_872, "MobileNetV2: depthwise, edge"),
]


def build_registry() -> Registry:
    """A fresh registry holding every built-in architecture."""
    reg = Registry()
    for entry in [_lenet(), *_imagenet(), _defect_cls(), _defect_det()]:
        reg.register(entry)
    return reg


def _lenet() -> ZooEntry:
    spec = ModelSpec(
        task="classify",
        input=InputSpec(shape=(None, 1, 32, 32), color="gray"),
        preprocess=PreprocessSpec(resize="stretch", scale=1 / 255, mean=(0.5,), std=(0.5,)),
        labels=tuple(str(d) for d in range(10)),
    )
    factory = _factory("lenet", "lenet5")
    return ZooEntry("lenet5", factory, spec, "LeNet-5 (1998): digits", num_classes=10,
                    published_params=61_706, tags=("classic",))  # fmt: skip


def _imagenet() -> list[ZooEntry]:
    return [
        ZooEntry(
            name=name,
            factory=_factory(module, func, *args),
            spec=_imagenet_spec(),
            description=description,
            num_classes=1000,
            published_params=params,
            tags=("imagenet",),
        )
        for name, module, func, args, params, description in _IMAGENET
    ]


def _defect_cls() -> ZooEntry:
    half = (0.5, 0.5, 0.5)
    spec = ModelSpec(
        task="classify",
        input=InputSpec(shape=(None, 3, 96, 96), color="rgb"),
        preprocess=PreprocessSpec(resize="stretch", scale=1 / 255, mean=half, std=half),
        labels=("ok", "scratch", "spot", "crack"),
    )
    # Loaded when a trained state dict ships in toolkit/assets (none yet: random init).
    return ZooEntry("defect-cls", _factory("defect", "defect_cls"), spec,
                    "demo defect classifier, fast on CPU", num_classes=4,
                    weights="defect-cls.pt", tags=("edge", "demo"))  # fmt: skip


def _defect_det() -> ZooEntry:
    letterbox = PreprocessSpec(resize="letterbox", scale=1 / 255, pad_value=114)
    spec = ModelSpec(
        task="detect",
        input=InputSpec(shape=(None, 3, 256, 256), color="rgb"),
        preprocess=letterbox,
        labels=("scratch", "spot", "crack"),
        output=OutputSpec(format="yolov8"),
    )
    description = "demo defect detector: anchor-free YOLOv8-style, [N, 4+C, A] output"
    return ZooEntry("defect-det", _factory("yolo", "defect_det"), spec, description,
                    num_classes=3, weights="defect-det.pt",
                    tags=("edge", "demo", "detect"))  # fmt: skip
