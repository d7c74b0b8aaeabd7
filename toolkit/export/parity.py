"""Parity: run the exported graph in ONNX Runtime (CPU) and the model in PyTorch eager.

Inputs are seeded random *images* (uniform 0..255 pixels), scaled and normalized by the
model's spec, so the activations are in the range the model will see in use.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ParityError, ToolkitError
from toolkit.export.checks import ExportError
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


@dataclass(frozen=True)
class ParityOptions:
    """How an export checks parity: its batch (None: dynamic, up to ``max_batch``), how many
    samples, the tolerances, the seed, and whether a failure stops the export (``check``)."""

    batch: int | None
    max_batch: int | None
    samples: int
    atol: float
    rtol: float
    seed: int
    check: bool

    def batch_sizes(self) -> list[int]:
        if self.batch is None:
            # Several batch sizes: also proves the dynamic axis runs in ONNX Runtime.
            return [min(1 + i % 3, self.max_batch or 3) for i in range(self.samples)]
        # About 8 images in all: a large static batch needs fewer calls.
        return [self.batch] * max(1, min(self.samples, 8 // self.batch))


def checked_parity(
    module: Any, proto: Any, spec: ModelSpec, opts: ParityOptions, out: Path
) -> ParityReport:
    """The export's parity check of the graph ``proto`` against ``module``.

    With ``opts.check``, a graph ONNX Runtime cannot run is an ExportError and a failed check
    a ParityError (``out`` is not written); without it both are only reported.
    """
    try:
        report = check_parity(
            module,
            proto.SerializeToString(),
            spec,
            batch_sizes=opts.batch_sizes(),
            atol=opts.atol,
            rtol=opts.rtol,
            classifier=spec.task == "classify",
            seed=opts.seed + 1,
        )
    except Exception as e:  # onnxruntime raises its own types (Fail, InvalidGraph...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        why = f"ONNX Runtime cannot run the exported model: {type(e).__name__}: {first}"
        if opts.check:
            raise ExportError(f"{why} (--no-check writes the file anyway)") from e
        log.warning("%s", why)
        return ParityReport(status=f"skipped: {why}", reason=why, atol=opts.atol, rtol=opts.rtol)
    if opts.check and not report.passed:
        raise ParityError(
            f"ONNX Runtime differs from PyTorch: {report.reason} ({parity_numbers(report)}); "
            f"{out} was not written (--no-check writes it anyway)"
        )
    return report


def combined(reports: list[ParityReport]) -> ParityReport:
    """Several parity reports (one per input size) as one: the worst differences, all the
    images, passed only when every one passed; the first failure's reason."""
    first = reports[0]
    if len(reports) == 1:
        return first
    failed = next((r for r in reports if not r.passed), None)
    diffs = [r.max_abs_diff for r in reports if r.max_abs_diff is not None]
    rels = [r.rel_error for r in reports if r.rel_error is not None]
    tops = [r.top1_agreement for r in reports if r.top1_agreement is not None]
    return ParityReport(
        status=failed.status if failed is not None else first.status,
        max_abs_diff=max(diffs) if diffs else None,
        rel_error=max(rels) if rels else None,
        top1_agreement=min(tops) if tops else None,
        samples=sum(r.samples for r in reports),
        rows=sum(r.rows for r in reports),
        batch_sizes=tuple(b for r in reports for b in r.batch_sizes),
        atol=first.atol,
        rtol=first.rtol,
        passed=failed is None,
        reason=failed.reason if failed is not None else None,
    )


def parity_numbers(p: ParityReport) -> str:
    """The report's numbers in one phrase (differences, top-1 agreement, images)."""
    parts = []
    if p.max_abs_diff is not None:
        parts.append(f"max abs diff {p.max_abs_diff:.3g}, rel {p.rel_error:.3g}")
    if p.top1_agreement is not None:
        parts.append(f"top-1 agreement {p.top1_agreement:.1%}")
    parts.append(f"{p.rows} images")
    return ", ".join(parts)


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
    session = _ort_session(model_bytes)
    inputs = sample_inputs(spec, batch_sizes, seed)
    reason, max_diff, max_ref, agree, rows = _run_all(session, module, inputs, classifier)
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


def _ort_session(model_bytes: bytes) -> Any:
    """The fp32 graph in ort-cpu's CPU session, without emulation (the backend's one builder,
    :func:`~toolkit.backends.ort_options.cpu_inference_session`). A graph ONNX Runtime cannot
    load raises ONNX Runtime's own error, which the caller names."""
    from toolkit.backends.ort_options import cpu_inference_session

    try:
        return cpu_inference_session(model_bytes, emulate=False)
    except ToolkitError as e:
        raise (e.__cause__ or e) from None


def _run_all(
    session: Any, module: Any, inputs: list[np.ndarray], classifier: bool
) -> tuple[str | None, float, float, int, int]:
    """Run every input in both runtimes: ``(reason, max |ort - torch|, max |torch|, top-1
    agreements, rows)``; ``reason`` says why the outputs cannot be compared (it stops there)."""
    import torch

    in_name = session.get_inputs()[0].name
    max_diff, max_ref, agree, rows = 0.0, 0.0, 0, 0
    for x in inputs:
        got = session.run(None, {in_name: x})
        with torch.no_grad():
            ref = [t.detach().float().numpy() for t in flatten_outputs(module(torch.from_numpy(x)))]
        reason, diff, top = _compare(got, ref)
        if reason:
            return reason, max_diff, max_ref, agree, rows
        max_diff, max_ref = max(max_diff, diff), max(max_ref, top)
        if classifier and ref[0].ndim == 2:
            agree += int(np.sum(got[0].argmax(1) == ref[0].argmax(1)))
        rows += x.shape[0]
    return None, max_diff, max_ref, agree, rows


def _compare(got: list[Any], ref: list[Any]) -> tuple[str | None, float, float]:
    """``(reason, max |got - ref|, max |ref|)`` of one batch; ``reason`` says why the outputs
    cannot be compared (count, shape, non-finite values), else it is None."""
    if len(got) != len(ref):
        return f"ONNX Runtime gave {len(got)} outputs, PyTorch {len(ref)}", 0.0, 0.0
    max_diff, max_ref = 0.0, 0.0
    for g, r in zip(got, ref, strict=True):
        if g.shape != r.shape:
            why = f"output shape {list(g.shape)} in ONNX Runtime vs {list(r.shape)} in PyTorch"
            return why, 0.0, 0.0
        if not (np.isfinite(g).all() and np.isfinite(r).all()):
            return "non-finite values in the outputs", 0.0, 0.0
        if r.size:
            max_diff = max(max_diff, float(np.max(np.abs(g.astype(np.float64) - r))))
            max_ref = max(max_ref, float(np.max(np.abs(r))))
    return None, max_diff, max_ref
