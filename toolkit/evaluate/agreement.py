"""Measuring a converted model against its float original: raw outputs and accuracy.

- :func:`agreement`: top-1 agreement and output error on the same (held-out) tensors.
- :func:`evaluate`: the ``edgetk val`` metric on a labelled set (ImageFolder top-1, or a YOLO
  detection set's mAP50-95 when the detection validator is there).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.data.yolo import is_yolo_set
from toolkit.errors import BadInputError, ToolkitError
from toolkit.evaluate.metrics import IOU_THRESHOLDS
from toolkit.model.spec import ModelSpec, SpecOverrides
from toolkit.tasks.batching import padded_chunks


def ort_outputs(
    model: Any, data: np.ndarray, input_name: str, *, batch: int = 16, emulate: bool | None = None
) -> np.ndarray:
    """The first output of ``model`` (a ModelProto or an .onnx path) over ``data``, in ORT CPU.

    The session is ``ort-cpu``'s (:func:`toolkit.backends.ort_options.cpu_inference_session`), so a
    ``--target tensorrt`` int8 model is measured as ``edgetk val`` runs it: each Q/DQ pair as
    float, TensorRT's arithmetic, not this CPU's fused int8 kernels. ``emulate`` forces that
    either way; None decides from the spec stored in ``model`` (a bare candidate graph has
    none: pass ``emulate``). A static-batch model gets exactly its batch per call (the last
    chunk padded, :func:`~toolkit.tasks.batching.padded_chunks`, and trimmed).
    """
    from toolkit.backends.ort_options import cpu_inference_session

    sess = cpu_inference_session(model, emulate=emulate)
    first = sess.get_inputs()[0]
    fixed = first.shape[0] if isinstance(first.shape[0], int) and first.shape[0] > 0 else None
    outs = [
        np.asarray(sess.run(None, {input_name: chunk})[0])[:n]
        for chunk, n in padded_chunks(data, fixed or batch, fixed)
    ]
    return np.concatenate(outs).astype(np.float32)


def output_error(ref: np.ndarray, out: np.ndarray) -> float:
    """Error relative to how much the reference varies across samples (not to its mean):
    a model whose outputs all collapse to the same vector scores ~1, a faithful one ~0."""
    spread = ref - ref.mean(axis=0, keepdims=True)
    denom = float(np.linalg.norm(spread)) or float(np.linalg.norm(ref)) or 1.0
    return float(np.linalg.norm(out - ref) / denom)


def agreement(ref: np.ndarray, out: np.ndarray, task: str = "classify") -> dict[str, Any]:
    """Top-1 agreement (classifiers) and output differences between two models' outputs."""
    result: dict[str, Any] = {
        "samples": int(ref.shape[0]),
        "max_abs_diff": float(np.max(np.abs(out - ref))) if ref.size else 0.0,
        "mean_abs_diff": float(np.mean(np.abs(out - ref))) if ref.size else 0.0,
        "relative_error": round(output_error(ref, out), 6) if ref.size else 0.0,
    }
    if task == "classify" and ref.ndim == 2 and ref.size:
        result["top1_agreement"] = float(np.mean(ref.argmax(1) == out.argmax(1)))
    return result


def check_eval_data(data: str | Path, task: str) -> Path:
    """Validate ``--eval`` before any slow work: a folder (or data.yaml) of the right kind."""
    root = Path(data)
    if not root.exists() or (root.is_file() and root.suffix not in (".yaml", ".yml")):
        what = "is not a folder" if root.exists() else "not found"
        raise BadInputError(
            f"--eval data set {what}: {data} (expected an ImageFolder or a YOLO-format set)"
        )
    if is_yolo_set(root) or task == "detect":
        _detection_validator()
        if task != "detect":
            raise BadInputError(f"--eval {data} is a detection set, but the model is a classifier")
    return root


def _detection_validator() -> Callable[..., dict[str, Any]]:
    try:
        from toolkit.evaluate.detect import validate_detector
    except ImportError:
        raise BadInputError(
            "detection evaluation is not available in this version "
            "(toolkit.evaluate.detect.validate_detector is missing): quantize without --eval"
        ) from None
    return validate_detector


def detection_agreement(
    spec: ModelSpec, ref: np.ndarray, out: np.ndarray, *, conf: float = 0.25, iou: float = 0.5
) -> dict[str, Any]:
    """How well a converted detector's boxes match the float one's on the same inputs.

    Each float box (confidence >= ``conf``, after NMS) is matched to the converted model's
    unmatched box of the same class with the highest IoU >= ``iou``. The same matching at each
    IoU of 0.50, 0.55 ... 0.95 gives ``box_f1_50_95``, the mean box F1 over those thresholds:
    like mAP50-95 it sees boxes that moved, which F1 at IoU 0.5 does not
    (docs/benchmarks.md, issue 11).

    Returns:
        ``{"float_boxes", "matched", "matched_fraction", "extra_boxes", "score_error",
        "box_f1", "box_f1_50_95"}`` (``score_error``: mean |confidence difference| over
        matched boxes; ``box_f1``: 2 * matched / (float + converted boxes) at ``iou``).
    """
    from toolkit.tasks.boxes import box_iou, greedy_match
    from toolkit.tasks.detect import DetectTask
    from toolkit.tasks.preprocess import FrameMeta

    task = DetectTask(spec, conf=conf)
    h, w = spec.input.hw
    metas = [FrameMeta((h, w), (1.0, 1.0), (0.0, 0.0))] * len(ref)
    key = spec.output.name or "output"
    dets_ref = task.postprocess({key: ref}, metas)
    dets_out = task.postprocess({key: out}, metas)
    n_ref = n_out = matched = 0
    matched_at = np.zeros(len(IOU_THRESHOLDS), np.int64)
    score_err: list[float] = []
    for a, b in zip(dets_ref, dets_out, strict=True):
        n_ref, n_out = n_ref + len(a), n_out + len(b)
        ious = box_iou(a.xyxy, b.xyxy) if len(a) and len(b) else np.zeros((len(a), len(b)))
        ious[a.class_id[:, None] != b.class_id[None, :]] = -1.0  # other classes never match
        order = np.argsort(-a.confidence)
        match = greedy_match(ious, order, iou)
        hits = [int(i) for i in order if match[i] >= 0]
        matched += len(hits)
        score_err += [abs(float(a.confidence[i]) - float(b.confidence[match[i]])) for i in hits]
        matched_at += [int((greedy_match(ious, order, t) >= 0).sum()) for t in IOU_THRESHOLDS]
    return {
        "float_boxes": n_ref,
        "matched": matched,
        "matched_fraction": round(matched / n_ref, 4) if n_ref else None,
        "extra_boxes": n_out - matched,
        "score_error": round(float(np.mean(score_err)), 5) if score_err else None,
        "box_f1": _f1(matched, n_ref + n_out),
        "box_f1_50_95": round(float(np.mean([_f1(m, n_ref + n_out) for m in matched_at])), 4),
    }


def _f1(matched: int, boxes: int) -> float:
    """2 * matched / (float + converted boxes); no boxes in either: 1.0 (they agree)."""
    return 1.0 if boxes == 0 else round(2.0 * matched / boxes, 4)


def evaluate(
    model: str | Path,
    data: str | Path,
    *,
    overrides: SpecOverrides | None = None,
    progress: Callable[[int, int], None] | None = None,
    strict: bool = False,
    emulate: bool | None = None,
) -> dict[str, Any]:
    """The accuracy of an ONNX file on ``data``, as ``edgetk val`` measures it (ORT CPU).

    A detector is scored with mAP50-95 on the set's ``val`` split. Unreadable images are
    skipped (listed in ``details["skipped"]``) unless ``strict``. A ``--target tensorrt`` int8
    file runs with TensorRT's int8 semantics (``emulate``: as in :func:`ort_outputs`).

    Returns:
        ``{"metric": "top1" | "map50_95", "value": float, "details": {...}, "emulated":
        "TensorRT int8 semantics on CPU" | None}``.
    """
    from toolkit.backends.ort import open_ort

    root = Path(data)
    with open_ort("ort-cpu", model, overrides=overrides, emulate=emulate) as session:
        if is_yolo_set(root) or session.spec.task == "detect":
            result = _detection_validator()(session, root, progress=progress, strict=strict)
            value = _first_key(result, ("map50_95", "mAP50-95", "map"))
            return {"metric": "map50_95", "value": value, "details": result,
                    "emulated": session.emulated}  # fmt: skip
        from toolkit.evaluate.classify import validate_classifier

        result = validate_classifier(session, root, progress=progress, strict=strict)
        return {"metric": "top1", "value": float(result["top1"]), "details": result,
                "emulated": session.emulated}  # fmt: skip


def _first_key(d: dict[str, Any], keys: tuple[str, ...]) -> float:
    for k in keys:
        if d.get(k) is not None:
            return float(d[k])
    raise ToolkitError(f"the detection validator returned none of {', '.join(keys)}")
