"""A hand-built ONNX detector with a dynamic height and width, for the rect and tile tests.

It finds the bounding box of the bright pixels of its input (mean over channels > 0.8 after
the 1/255 scale, so the letterbox's grey 114 padding is never bright) and reports it in the
YOLOv8 layout ``[N, 5, 1]`` (cx, cy, w, h, score) with score 0.9 when both sides are at least
``min_side`` input pixels, else 0: an object that is too small *in the network input* is
missed, as a real detector misses it. Its output depends only on the image content, so a rect
input and a square one give the same box.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _range_nodes(helper, axis: int, name: str) -> list:
    """Nodes giving ``name``: float 0..n-1 along input axis ``axis`` (a dynamic length)."""
    return [
        helper.make_node("Shape", ["images"], [f"{name}_shape"], start=axis, end=axis + 1),
        helper.make_node("Squeeze", [f"{name}_shape"], [f"{name}_n"]),
        helper.make_node("Range", ["zero_i", f"{name}_n", "one_i"], [f"{name}_ri"]),
        helper.make_node("Cast", [f"{name}_ri"], [name], to=1),
    ]


def _extent_nodes(helper, mask: str, idx: str, lo: str, hi: str) -> list:
    """``lo``/``hi``: first index and last index + 1 where ``mask`` [N, L] is 1."""
    return [
        helper.make_node("Mul", [mask, idx], [f"{lo}_a"]),
        helper.make_node("Sub", ["one_f", mask], [f"{lo}_inv"]),
        helper.make_node("Mul", [f"{lo}_inv", "big"], [f"{lo}_b"]),
        helper.make_node("Add", [f"{lo}_a", f"{lo}_b"], [f"{lo}_c"]),
        helper.make_node("ReduceMin", [f"{lo}_c", "ax1"], [lo], keepdims=0),
        helper.make_node("Add", [idx, "one_f"], [f"{hi}_i1"]),
        helper.make_node("Mul", [mask, f"{hi}_i1"], [f"{hi}_a"]),
        helper.make_node("ReduceMax", [f"{hi}_a", "ax1"], [hi], keepdims=0),
    ]


def blob_detector(
    path: Path, *, imgsz: int = 320, min_side: float = 12.0, batch: int | None = None
) -> Path:
    """Write the detector (dynamic H/W, ``batch`` None: dynamic) with its edgetk spec."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from toolkit.model.modelfile import write_spec
    from toolkit.model.spec import InputSpec, ModelSpec, OutputSpec, PreprocessSpec

    f32 = np.float32
    inits = [
        numpy_helper.from_array(np.array(v, dtype), n)
        for n, v, dtype in [
            ("zero_i", 0, np.int64), ("one_i", 1, np.int64), ("one_f", 1.0, f32),
            ("big", 1e6, f32), ("thr", 0.8, f32), ("minside", min_side, f32),
            ("half", 0.5, f32), ("score", 0.9, f32), ("ax1", [1], np.int64),
            ("ax2", [2], np.int64), ("ax_last", [-1], np.int64),
        ]
    ]  # fmt: skip
    nodes = [
        helper.make_node("ReduceMean", ["images", "ax1"], ["gray"], keepdims=0),  # [N, H, W]
        helper.make_node("Greater", ["gray", "thr"], ["bright"]),
        helper.make_node("Cast", ["bright"], ["mask"], to=1),
        helper.make_node("ReduceMax", ["mask", "ax1"], ["cols"], keepdims=0),  # [N, W]
        helper.make_node("ReduceMax", ["mask", "ax2"], ["rows"], keepdims=0),  # [N, H]
        *_range_nodes(helper, 3, "xs"),
        *_range_nodes(helper, 2, "ys"),
        *_extent_nodes(helper, "cols", "xs", "x1", "x2"),
        *_extent_nodes(helper, "rows", "ys", "y1", "y2"),
        helper.make_node("Sub", ["x2", "x1"], ["w"]),
        helper.make_node("Sub", ["y2", "y1"], ["h"]),
        helper.make_node("Add", ["x1", "x2"], ["sx"]),
        helper.make_node("Mul", ["sx", "half"], ["cx"]),
        helper.make_node("Add", ["y1", "y2"], ["sy"]),
        helper.make_node("Mul", ["sy", "half"], ["cy"]),
        helper.make_node("Min", ["w", "h"], ["side"]),
        helper.make_node("GreaterOrEqual", ["side", "minside"], ["big_enough"]),
        helper.make_node("Cast", ["big_enough"], ["fired"], to=1),
        helper.make_node("Mul", ["fired", "score"], ["conf"]),
        *[
            helper.make_node("Unsqueeze", [v, "ax_last"], [f"{v}_u"])
            for v in ("cx", "cy", "w", "h", "conf")
        ],
        helper.make_node("Concat", ["cx_u", "cy_u", "w_u", "h_u", "conf_u"], ["rows5"], axis=1),
        helper.make_node("Unsqueeze", ["rows5", "ax_last"], ["output0"]),
    ]
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch or "batch", 3, "h", "w"])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch or "batch", 5, 1])
    graph = helper.make_graph(nodes, "blob_detector", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    spec = ModelSpec(
        task="detect",
        input=InputSpec(name="images", shape=(batch, 3, imgsz, imgsz)),
        preprocess=PreprocessSpec(resize="letterbox", pad_value=114),
        labels=("defect",),
        output=OutputSpec(format="yolov8", name="output0"),
    )
    write_spec(model, spec)
    onnx.save(model, str(path))
    return path


def frame_with(
    boxes: list[tuple[int, int, int, int]], hw: tuple[int, int] = (480, 640)
) -> np.ndarray:
    """A dark frame with a white rectangle at each ``x1, y1, x2, y2``."""
    img = np.full((*hw, 3), 40, np.uint8)
    for x1, y1, x2, y2 in boxes:
        img[y1:y2, x1:x2] = 255
    return img
