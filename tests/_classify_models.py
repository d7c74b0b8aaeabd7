"""Small ONNX classifiers whose answers are known from the image, and image-writing helpers.

Built with ``onnx.helper`` (no torch export): a few milliseconds each, and the graph is exactly
what the test says it is.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# BGR pixel values of the pure colours, and the label order of the channel-mean model (RGB input:
# channel 0 is red).
COLORS_BGR = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}
RGB_LABELS = ("red", "green", "blue")


def channel_mean_onnx(
    path: Path,
    *,
    channels: int = 3,
    size: int = 16,
    labels: tuple[str, ...] = RGB_LABELS,
    keepdims: bool = False,
    softmax: bool = False,
    output_format: str = "logits",
    batch: int | None = None,
    extra_classes: int = 0,
    with_spec: bool = True,
) -> Path:
    """A classifier whose scores are 10 x the mean of each input channel.

    With RGB input scaled to [0, 1], a pure-colour image is classified as its colour. Output
    ``[N, C]`` (or ``[N, C, 1, 1]`` with ``keepdims``), softmax-ed in the graph with ``softmax``.
    ``extra_classes`` appends classes that always score 0 (``[N, C + extra]``, no keepdims).
    """
    import onnx
    from onnx import TensorProto, helper

    from toolkit.model.modelfile import write_spec
    from toolkit.model.spec import InputSpec, ModelSpec, OutputSpec, PreprocessSpec

    n = batch if batch is not None else "batch"
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [n, channels, size, size])
    assert not (keepdims and extra_classes)
    classes = channels + extra_classes
    out_shape = [n, classes, 1, 1] if keepdims else [n, classes]
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, out_shape)
    # 10 x [identity | zeros]: channel means, then the always-zero extra classes.
    w = np.hstack([np.eye(channels), np.zeros((channels, extra_classes))]) * 10
    ten = helper.make_tensor("ten", TensorProto.FLOAT, [], [10.0])
    weight = helper.make_tensor("w", TensorProto.FLOAT, list(w.shape), w.ravel().tolist())
    logits = "logits" if softmax else "scores"
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[2, 3], keepdims=int(keepdims)),
        helper.make_node("Mul", ["mean", "ten"], [logits])
        if keepdims
        else helper.make_node("MatMul", ["mean", "w"], [logits]),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["scores"], axis=1))
    graph = helper.make_graph(nodes, "channel_mean", [x], [y], initializer=[ten, weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    if with_spec:
        spec = ModelSpec(
            task="classify",
            input=InputSpec(name="images", shape=(batch, channels, size, size), color="rgb"),
            preprocess=PreprocessSpec(resize="stretch", scale=1 / 255, mean=(0.0,), std=(1.0,)),
            labels=labels,
            output=OutputSpec(format=output_format, name="scores"),
        )
        write_spec(model, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_image(path: Path, img: np.ndarray) -> Path:
    """Write an image with cv2.imencode (works for non-ASCII paths too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, img)
    assert ok, path
    buf.tofile(path)
    return path


def color_image(name: str, hw: tuple[int, int] = (20, 24)) -> np.ndarray:
    return np.full((*hw, 3), COLORS_BGR[name], dtype=np.uint8)


def color_folder(root: Path, per_class: int = 3, classes: tuple[str, ...] = RGB_LABELS) -> Path:
    """An ImageFolder of pure-colour PNGs: ``root/<colour>/<i>.png``."""
    for c in classes:
        for i in range(per_class):
            write_image(root / c / f"{i}.png", color_image(c))
    return root


def write_video(path: Path, frames: int, hw: tuple[int, int] = (24, 32)) -> Path:
    """A real MJPG .avi with ``frames`` frames cycling red, green, blue."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (hw[1], hw[0]))
    assert w.isOpened()
    for i in range(frames):
        w.write(color_image(RGB_LABELS[i % 3], hw))
    w.release()
    return path
