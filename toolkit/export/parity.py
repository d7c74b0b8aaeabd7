"""Parity: run the exported graph in ONNX Runtime (CPU) and the model in PyTorch eager.

Inputs are seeded random *images* (uniform 0..255 pixels), scaled and normalized by the
model's spec, so the activations are in the range the model will see in use.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from toolkit.model.spec import ModelSpec

log = logging.getLogger(__name__)


@dataclass
class ParityReport:
    """How closely ONNX Runtime reproduces PyTorch.

    ``rel_error`` is ``max |ort - torch| / max |torch|``; ``passed`` means
    ``max_abs_diff <= atol + rtol * max |torch|``. ``top1_agreement`` (classifiers only) is
    the fraction of rows whose argmax matches. ``status`` is ``passed``, ``failed`` or
    ``skipped: <why>``.
    """

    status: str
    max_abs_diff: float | None = None
    rel_error: float | None = None
    top1_agreement: float | None = None
    samples: int = 0
    rows: int = 0
    batch_sizes: tuple[int, ...] = ()
    atol: float = 0.0
    rtol: float = 0.0
    passed: bool = False
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["batch_sizes"] = list(self.batch_sizes)
        return d


def sample_inputs(spec: ModelSpec, batch_sizes: list[int], seed: int = 0) -> list[np.ndarray]:
    """Seeded random images, preprocessed the way the spec says (scale, mean, std)."""
    rng = np.random.default_rng(seed)
    c, (h, w) = spec.input.channels, spec.input.hw
    pre = spec.preprocess
    mean = np.asarray(pre.mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(pre.std, dtype=np.float32).reshape(1, -1, 1, 1)
    out = []
    for n in batch_sizes:
        pixels = rng.integers(0, 256, size=(n, c, h, w)).astype(np.float32)
        out.append(((pixels * np.float32(pre.scale) - mean) / std).astype(np.float32))
    return out


def flatten_outputs(value: Any) -> list[Any]:
    """A model's output (tensor, tuple, list or dict of them) as a flat list, in order."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in flatten_outputs(v)]
    return []  # None and Python scalars are not graph outputs


def check_parity(
    module: Any,
    model_bytes: bytes,
    spec: ModelSpec,
    *,
    batch_sizes: list[int],
    atol: float,
    rtol: float,
    classifier: bool,
    seed: int = 0,
) -> ParityReport:
    """Compare ONNX Runtime (CPU) with PyTorch eager on seeded inputs.

    Returns a report with ``status="failed"`` and a ``reason`` when the outputs differ in
    count or shape, or beyond tolerance. ONNX Runtime errors propagate to the caller.
    """
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    in_name = session.get_inputs()[0].name
    inputs = sample_inputs(spec, batch_sizes, seed)
    max_diff, max_ref, agree, rows = 0.0, 0.0, 0, 0
    reason = None
    for x in inputs:
        got = session.run(None, {in_name: x})
        with torch.no_grad():
            ref = [t.detach().float().numpy() for t in flatten_outputs(module(torch.from_numpy(x)))]
        if len(got) != len(ref):
            reason = f"ONNX Runtime gave {len(got)} outputs, PyTorch {len(ref)}"
            break
        for g, r in zip(got, ref, strict=True):
            if g.shape != r.shape:
                reason = (
                    f"output shape {list(g.shape)} in ONNX Runtime vs {list(r.shape)} in PyTorch"
                )
                break
            if not (np.isfinite(g).all() and np.isfinite(r).all()):
                reason = "non-finite values in the outputs"
                break
            if r.size:
                max_diff = max(max_diff, float(np.max(np.abs(g.astype(np.float64) - r))))
                max_ref = max(max_ref, float(np.max(np.abs(r))))
        if reason:
            break
        if classifier and ref[0].ndim == 2:
            agree += int(np.sum(got[0].argmax(1) == ref[0].argmax(1)))
        rows += x.shape[0]
    base = {
        "samples": len(inputs),
        "rows": rows,
        "batch_sizes": tuple(batch_sizes),
        "atol": atol,
        "rtol": rtol,
    }
    if reason:
        return ParityReport(status="failed", reason=reason, **base)  # type: ignore[arg-type]
    if max_diff > atol + rtol * max_ref:
        reason = f"max abs diff {max_diff:.3g} > tolerance {atol + rtol * max_ref:.3g}"
    return ParityReport(
        status="failed" if reason else "passed",
        max_abs_diff=max_diff,
        rel_error=max_diff / max_ref if max_ref > 0 else 0.0,
        top1_agreement=agree / rows if classifier and rows else None,
        passed=reason is None,
        reason=reason,
        **base,  # type: ignore[arg-type]
    )
