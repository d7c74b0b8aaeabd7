"""Hand-built tiny classifiers and data for the quantization tests.

``color_classifier(outlier)`` is a 3-class "which color dominates" model (red / green / blue)
whose first 1x1 conv passes the RGB channels through (and their negatives, so ReLU keeps the
sign). With ``outlier`` > 0 it also has one channel that is a huge constant which the next
layer ignores: quantizing that tensor per tensor crushes every other channel to zero, so int8
destroys the model unless that layer's input is kept in float.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

LABELS = ("red", "green", "blue")
SIZE = 16
# Second conv: the layer whose input carries the outlier channel.
SENSITIVE_CONV = 2


def save_with_spec(module: object, example: object, path: Path, arg: str, **spec: object) -> Path:
    """Export ``module`` (dynamic batch on its forward argument ``arg``) with an edgetk spec.

    ``spec`` are :class:`ModelSpec` fields; ``input`` gets the graph's input name filled in,
    and ``output`` (an OutputSpec) the graph's output name when it has none.
    """
    import dataclasses

    import onnx
    import torch

    from toolkit.model.modelfile import write_spec
    from toolkit.model.spec import ModelSpec

    torch.onnx.export(
        module,
        (example,),
        str(path),
        input_names=["images"],
        output_names=[spec.pop("output_name", "logits")],  # type: ignore[list-item]
        dynamic_shapes={arg: {0: torch.export.Dim("batch", min=1, max=64)}},
        external_data=False,
        dynamo=True,
    )
    proto = onnx.load(str(path))
    spec["input"] = dataclasses.replace(spec["input"], name=proto.graph.input[0].name)  # type: ignore[arg-type]
    write_spec(proto, ModelSpec(**spec))  # type: ignore[arg-type]
    onnx.save(proto, str(path))
    return path


def color_classifier(path: Path, outlier: float = 0.0) -> Path:
    """Export the color classifier (dynamic batch, edgetk spec) to ``path``."""
    import torch
    from torch import nn

    from toolkit.model.spec import InputSpec, PreprocessSpec

    conv1, conv2, fc = nn.Conv2d(3, 7, 1), nn.Conv2d(7, 6, 1), nn.Linear(6, 3)
    with torch.no_grad():
        w1 = torch.zeros(7, 3)
        w1[1:4], w1[4:7] = torch.eye(3), -torch.eye(3)
        conv1.weight.copy_(w1[:, :, None, None])
        conv1.bias.zero_()
        conv1.bias[0] = outlier
        w2 = torch.zeros(6, 7)
        w2[:, 1:] = torch.eye(6)
        conv2.weight.copy_(w2[:, :, None, None])
        conv2.bias.zero_()
        wf = torch.zeros(3, 6)
        wf[:, :3], wf[:, 3:] = torch.eye(3), -torch.eye(3)
        fc.weight.copy_(wf)
        fc.bias.zero_()
    model = nn.Sequential(
        conv1, nn.ReLU(), conv2, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc
    ).eval()
    return save_with_spec(
        model, torch.randn(2, 3, SIZE, SIZE), path, "input",
        input=InputSpec(shape=(None, 3, SIZE, SIZE)),
        preprocess=PreprocessSpec(resize="stretch", mean=(0.5,) * 3, std=(0.25,) * 3),
        labels=LABELS,
    )  # fmt: skip


def color_images(root: Path, n_per_class: int = 6, seed: int = 0) -> Path:
    """An ImageFolder ``root/<red|green|blue>/*.png`` of noisy images of that dominant color."""
    rng = np.random.default_rng(seed)
    for ci, label in enumerate(LABELS):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        rgb_index = ci  # model channel order is RGB; OpenCV writes BGR
        for i in range(n_per_class):
            rgb = rng.uniform(30, 110, 3)
            rgb[rgb_index] = rng.uniform(170, 240)
            img = np.clip(rgb[::-1] + rng.normal(0, 8, (SIZE * 2, SIZE * 2, 3)), 0, 255)
            cv2.imwrite(str(folder / f"{label}_{i}.png"), img.astype(np.uint8))
    return root


def color_tensors(path: Path, n: int = 120, seed: int = 0) -> Path:
    """An .npz of preprocessed NCHW tensors: a random color per sample plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, (n, 3, 1, 1)) + 0.2 * rng.standard_normal((n, 3, SIZE, SIZE))
    np.savez(path, images=x.astype(np.float32))
    return path


def write_video(path: Path, frames: int = 12, size: int = 48) -> Path:
    """A small MJPG .avi of changing colors."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (size, size))
    assert writer.isOpened(), "OpenCV cannot write MJPG here"
    for i in range(frames):
        img = np.full((size, size, 3), (i * 20 % 255, 80, 255 - i * 20 % 255), np.uint8)
        writer.write(img)
    writer.release()
    return path


def tiny_detector(path: Path, size: int = 32) -> Path:
    """A YOLOv8-layout detector (``[N, 4 + 3, A]``, boxes in input pixels) with boxes that
    depend on the image, exported with an edgetk detect spec."""
    import torch
    from torch import nn

    from toolkit.model.spec import InputSpec, OutputSpec, PreprocessSpec

    class TinyDet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.conv = nn.Conv2d(3, 7, 3, stride=8, padding=1)
            g = (torch.arange(size // 8) + 0.5) * 8
            cy, cx = torch.meshgrid(g, g, indexing="ij")
            self.register_buffer("grid", torch.stack([cx.flatten(), cy.flatten()])[None])
            with torch.no_grad():
                self.conv.bias[4:] = 1.5  # most anchors above the 0.25 threshold

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x).flatten(2)
            xy = self.grid + 3 * torch.tanh(y[:, :2])
            wh = 6 + 4 * torch.sigmoid(y[:, 2:4])
            return torch.cat([xy, wh, torch.sigmoid(y[:, 4:])], 1)

    return save_with_spec(
        TinyDet().eval(), torch.rand(2, 3, size, size), path, "x",
        task="detect",
        input=InputSpec(shape=(None, 3, size, size)),
        preprocess=PreprocessSpec(resize="letterbox"),
        labels=("scratch", "spot", "crack"),
        output=OutputSpec(format="yolov8", name="output"),
        output_name="output",
    )  # fmt: skip


# The saturating classifier: 8 input channels, 4 classes, class j = the brightest channel pair
# (2j, 2j+1). Inputs sit near the top of their range, so uint8 activations are ~210..255.
SAT_CHANNELS, SAT_CLASSES, SAT_SIZE = 8, 4, 4


def saturating_classifier(path: Path) -> Path:
    """A 1x1 conv whose every weight is large and positive (1.0, or 0.7 off the class's pair).

    Per-channel symmetric int8 maps them to 127 and 89: each u8 x s8 pair ONNX Runtime's AVX2
    kernel sums in int16 (vpmaddubsw) is over 2 * 210 * 89 > 32767 and saturates, so every
    class gets about the same clipped sum. 7-bit weights (64 and 45) keep each pair under
    32767; int32 accumulation (VNNI, AMX, ARM) never saturates.
    """
    import torch
    from torch import nn

    from toolkit.model.spec import InputSpec, PreprocessSpec

    conv = nn.Conv2d(SAT_CHANNELS, SAT_CLASSES, 1)
    with torch.no_grad():
        w = torch.full((SAT_CLASSES, SAT_CHANNELS), 0.7)
        for j in range(SAT_CLASSES):
            w[j, 2 * j : 2 * j + 2] = 1.0
        conv.weight.copy_(w[:, :, None, None])
        conv.bias.fill_(-5.3)  # centres the logits: a fine output scale after the conv
    model = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    return save_with_spec(
        model, torch.rand(2, SAT_CHANNELS, SAT_SIZE, SAT_SIZE), path, "input",
        input=InputSpec(shape=(None, SAT_CHANNELS, SAT_SIZE, SAT_SIZE)),
        preprocess=PreprocessSpec(resize="stretch", mean=(0.0,), std=(1.0,)),
        labels=tuple(f"pair{j}" for j in range(SAT_CLASSES)),
    )  # fmt: skip


def saturating_tensors(path: Path, n: int = 100, seed: int = 0) -> Path:
    """An .npz of inputs in [0.8, 1]: one random channel pair at ~0.98, the others ~0.85."""
    x = saturating_inputs(n, seed)
    np.savez(path, images=x)
    return path


def saturating_inputs(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.8, 0.9, (n, SAT_CHANNELS, SAT_SIZE, SAT_SIZE))
    for i, j in enumerate(rng.integers(0, SAT_CLASSES, n)):
        x[i, 2 * j : 2 * j + 2] = rng.uniform(0.96, 1.0, (2, SAT_SIZE, SAT_SIZE))
    return x.astype(np.float32)
