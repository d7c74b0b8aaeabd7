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

from toolkit.errors import BadInputError, ToolkitError


def ort_outputs(model: Any, data: np.ndarray, input_name: str, *, batch: int = 16) -> np.ndarray:
    """The first output of ``model`` (a ModelProto or an .onnx path) over ``data``, in ORT CPU.

    A static-batch model gets exactly its batch per call (the last chunk padded and trimmed).
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    src = model if isinstance(model, (str, Path)) else model.SerializeToString()
    try:
        sess = ort.InferenceSession(
            str(src) if isinstance(src, Path) else src, so, providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # ORT's own exception types: report which model would not load
        raise ToolkitError(f"ONNX Runtime cannot load the converted model: {e}") from e
    first = sess.get_inputs()[0]
    fixed = first.shape[0] if isinstance(first.shape[0], int) and first.shape[0] > 0 else None
    step = fixed or batch
    outs = []
    for start in range(0, len(data), step):
        chunk = data[start : start + step]
        n = len(chunk)
        if fixed is not None and n < fixed:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fixed - n, 0)])
        outs.append(np.asarray(sess.run(None, {input_name: chunk})[0])[:n])
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


def is_yolo_dataset(root: Path) -> bool:
    """A YOLO-format detection set: ``data.yaml``, or ``images/`` beside ``labels/``."""
    return (root / "data.yaml").is_file() or (
        (root / "images").is_dir() and (root / "labels").is_dir()
    )


def check_eval_data(data: str | Path, task: str) -> Path:
    """Validate ``--eval`` before any slow work: a folder of the right kind for the task."""
    root = Path(data)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "not found"
        raise BadInputError(
            f"--eval data set {what}: {data} (expected an ImageFolder or a YOLO-format set)"
        )
    if is_yolo_dataset(root) or task == "detect":
        _detection_validator()
    return root


def _detection_validator() -> Callable[..., dict[str, Any]]:
    try:
        from toolkit.metrics.detection import validate_detector  # type: ignore[attr-defined]
    except ImportError:
        raise BadInputError(
            "detection evaluation is not available in this version "
            "(toolkit.metrics.detection.validate_detector is missing): quantize without --eval, "
            "or evaluate a classifier on an ImageFolder"
        ) from None
    return validate_detector  # type: ignore[no-any-return]


def evaluate(
    model: str | Path, data: str | Path, *, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """The accuracy of an ONNX file on ``data``, as ``edgetk val`` measures it (ORT CPU).

    Returns:
        ``{"metric": "top1" | "map50_95", "value": float, "details": {...}}``.
    """
    from toolkit.backends import open_session

    root = Path(data)
    with open_session(model, "ort-cpu") as session:
        if is_yolo_dataset(root) or session.spec.task == "detect":
            result = _detection_validator()(session, root)
            value = _first_key(result, ("map50_95", "mAP50-95", "map"))
            return {"metric": "map50_95", "value": value, "details": result}
        from toolkit.evaluate import validate_classifier

        result = validate_classifier(session, root, progress=progress)
        return {"metric": "top1", "value": float(result["top1"]), "details": result}


def _first_key(d: dict[str, Any], keys: tuple[str, ...]) -> float:
    for k in keys:
        if d.get(k) is not None:
            return float(d[k])
    raise ToolkitError(f"the detection validator returned none of {', '.join(keys)}")
