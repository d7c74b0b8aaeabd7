"""Gradient heatmaps on the PyTorch model: Grad-CAM, Grad-CAM++, LayerCAM, saliency.

Grad-CAM and saliency are captum's (``LayerGradCam``, ``Saliency``). captum has no Grad-CAM++
or LayerCAM, so those two are written here on one forward hook and ``torch.autograd.grad``
(a dozen lines each; pytorch-grad-cam has them but pulls the non-headless ``opencv-python``).

The score a map explains is a class logit for a classifier; for a detector, the class scores
of the anchors whose boxes match the target box (chosen once on the unchanged image).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from toolkit.errors import BadInputError, MissingDependencyError
from toolkit.explain.heat import resize
from toolkit.explain.source import get_layer, import_torch
from toolkit.explain.targets import MATCH_IOU, Target
from toolkit.model.spec import ModelSpec

GRADIENT_METHODS = ("gradcam", "gradcam++", "layercam", "saliency")
# Anchors of a detector that make up one box's score (the best-matching ones).
TOP_ANCHORS = 10

ScoreFn = Callable[[Any], Any]


def import_captum() -> Any:
    try:
        import captum.attr
    except ImportError as e:
        raise MissingDependencyError("captum", "explain", "gradient heatmaps") from e
    return captum.attr


def _det_view(out: Any, fmt: str) -> tuple[Any, Any]:
    """A detector's raw output -> (boxes cx, cy, w, h ``[N, A, 4]``, class scores ``[N, A, C]``)."""
    if fmt == "yolov8":
        t = out.transpose(1, 2)
        return t[..., :4], t[..., 4:]
    if fmt == "yolov5":
        return out[..., :4], out[..., 5:] * out[..., 4:5]
    raise BadInputError(
        f"gradient heatmaps need a yolov8 or yolov5 output, this detector's is {fmt} "
        "(use --method occlusion)"
    )


def _xyxy(cxcywh: Any) -> Any:
    c, wh = cxcywh[..., :2], cxcywh[..., 2:]
    return import_torch().cat([c - wh / 2, c + wh / 2], -1)


def _anchors_for(boxes: Any, scores: Any, target: Target) -> Any:
    """The anchors of image 0 that stand for ``target``: IoU >= MATCH_IOU, best scores first."""
    torch = import_torch()

    ref = torch.tensor([target.box], dtype=boxes.dtype)
    b = _xyxy(boxes[0])
    lt = torch.maximum(b[:, :2], ref[:, :2])
    rb = torch.minimum(b[:, 2:], ref[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1) + (ref[0, 2:] - ref[0, :2]).prod() - inter
    iou = inter / union.clamp(min=1e-9)
    s = scores[0, :, target.class_id]
    ok = iou >= MATCH_IOU
    rank = torch.where(ok, s, s * iou - 1.0)  # none match: the best IoU-weighted one
    return torch.argsort(rank, descending=True)[: TOP_ANCHORS if ok.any() else 1]


def score_fn(module: Any, spec: ModelSpec, x: Any, target: Target) -> ScoreFn:
    """``f(raw output) -> [N]`` score of ``target`` (fixed anchors for a detector)."""
    torch = import_torch()
    c = target.class_id
    if target.box is None:
        return lambda out: out.reshape(out.shape[0], -1)[:, c]
    fmt = spec.output.format
    with torch.no_grad():
        boxes, scores = _det_view(module(x), fmt)
    idx = _anchors_for(boxes, scores, target)
    return lambda out: _det_view(out, fmt)[1][:, idx, c].sum(1)


def _act_grad(module: Any, layer: Any, x: Any, fn: ScoreFn) -> tuple[Any, Any]:
    """(activation, d score / d activation) of ``layer``, image 0: ``[K, h, w]`` each."""
    torch = import_torch()
    got: dict[str, Any] = {}
    hook = layer.register_forward_hook(lambda _m, _i, o: got.__setitem__("a", o))
    try:
        with torch.enable_grad():
            # Frozen weights: the input carries the graph to the activation.
            s = fn(module(x.clone().requires_grad_(True))).sum()
            (g,) = torch.autograd.grad(s, got["a"])
    finally:
        hook.remove()
    return got["a"].detach()[0], g[0]


def gradcam_pp(a: Any, g: Any) -> Any:
    """Grad-CAM++ weights (Chattopadhay et al. 2018, the exp-score closed form)."""
    g2, g3 = g**2, g**3
    denom = 2 * g2 + a.sum((1, 2), keepdim=True) * g3
    alpha = g2 / denom.where(denom != 0, denom.new_ones(()))
    w = (alpha * g.clamp(min=0)).sum((1, 2), keepdim=True)
    return (w * a).sum(0).clamp(min=0)


def layercam(a: Any, g: Any) -> Any:
    """LayerCAM (Jiang et al. 2021): each position weighted by its own positive gradient."""
    return (g.clamp(min=0) * a).sum(0).clamp(min=0)


def gradient_map(
    module: Any, spec: ModelSpec, x: np.ndarray, target: Target, method: str, layer: str
) -> np.ndarray:
    """One gradient heatmap over the network input, float32 ``[H, W]``.

    Args:
        module: the PyTorch model (eval mode). x: one preprocessed input ``[1, C, H, W]``.
        method: one of :data:`GRADIENT_METHODS`. layer: the CAM layer's name (not saliency).
    """
    torch = import_torch()
    if method not in GRADIENT_METHODS:
        raise BadInputError(f"unknown gradient method '{method}' ({', '.join(GRADIENT_METHODS)})")
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    fn = score_fn(module, spec, xt, target)
    hw = (int(x.shape[2]), int(x.shape[3]))
    if method == "saliency":
        attr = import_captum().Saliency(lambda t: fn(module(t)))
        with torch.enable_grad():
            sal = attr.attribute(xt.clone().requires_grad_(True), abs=True)
        return sal[0].amax(0).numpy().astype(np.float32)
    sub = get_layer(module, layer)
    if method == "gradcam":
        cam = import_captum().LayerGradCam(lambda t: fn(module(t)), sub)
        with torch.enable_grad():
            out = cam.attribute(xt, relu_attributions=True)
        return resize(out[0].sum(0).detach().numpy(), hw)
    a, g = _act_grad(module, sub, xt, fn)
    heat = gradcam_pp(a, g) if method == "gradcam++" else layercam(a, g)
    return resize(heat.numpy(), hw)
