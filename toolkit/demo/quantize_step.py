"""The demo's int8 step: cpu-target int8 with accuracy numbers and an fp32-vs-int8 benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_quantize_step(
    workdir: str | Path,
    float_onnx: str | Path,
    eval_data: str | Path | None,
    *,
    quick: bool = False,
    max_drop: float | None = 0.5,
) -> dict[str, Any]:
    """Quantize the demo model for the CPU, measure the accuracy drop, benchmark fp32 vs int8.

    The latency ratio is reported as measured: on a model as small as the demo classifier the
    Q/DQ overhead can eat the int8 gain, which larger models keep
    (benchmarks/quantize_resnet18.py).

    Calibration uses the training images beside ``eval_data`` (``data/train`` for
    ``data/val``) when they are there, else the synthetic generator. Writes
    ``workdir/model.int8.onnx`` (replaced on re-runs) unless the accuracy gate rejects it.

    Args:
        workdir: the demo's work folder.
        float_onnx: the float model.
        eval_data: the held-out ImageFolder (None: agreement with the float model only).
        quick: a small calibration set and a short benchmark (smoke runs, tests).
        max_drop: the accuracy gate in percentage points (None: measure only; not used in
            ``quick`` runs, whose one-epoch model is too weak to gate).

    Returns:
        ``{"output", "passed", "target", "calibration_count", "float_top1", "int8_top1",
        "drop_pt", "top1_agreement", "kept_float", "sizes", "benchmark": [...]}``.
    """
    from toolkit.quantize.api import quantize_model

    out = Path(workdir) / "model.int8.onnx"
    calib = _calibration_source(eval_data)
    report = quantize_model(
        float_onnx,
        out,
        precision="int8",
        target="cpu",
        calib=calib,
        calib_size=32 if quick else 200,
        eval_data=eval_data,
        max_drop=None if quick else max_drop,
        force=True,
    )
    result = _result(report, calib)
    if report.passed:
        _add_benchmark(result, float_onnx, out, iters=10 if quick else 100)
    return result


def _calibration_source(eval_data: str | Path | None) -> str:
    """The training images beside ``eval_data`` when there are some, else ``synthetic``."""
    if eval_data is not None and (Path(eval_data).parent / "train").is_dir():
        return str(Path(eval_data).parent / "train")
    return "synthetic"


def _result(report: Any, calib: str) -> dict[str, Any]:
    """The step's summary of the quantize report (the benchmark still empty)."""
    return {
        "output": report.output,
        "passed": report.passed,
        "target": "cpu",
        "calibration": calib,
        "calibration_count": (report.calibration or {}).get("count"),
        "float_top1": report.eval["float"] if report.eval else None,
        "int8_top1": report.eval["quantized"] if report.eval else None,
        "drop_pt": report.eval["drop"] if report.eval else None,
        "top1_agreement": report.agreement.get("top1_agreement"),
        "kept_float": list(report.kept_float),
        "sizes": dict(report.sizes),
        "seconds": report.seconds,
        "benchmark": [],
    }


def _add_benchmark(result: dict[str, Any], float_onnx: str | Path, out: Path, iters: int) -> None:
    """fp32 vs int8 latency in ONNX Runtime CPU at batch 1, into ``result``."""
    from toolkit.bench.runner import benchmark

    bench = benchmark(
        [str(float_onnx), str(out)], ["ort-cpu"], [1], warmup=max(3, iters // 10), iters=iters
    )
    rows = []
    for r in bench.results:
        p50 = r.latency_ms["p50"] if r.ok and r.latency_ms else None
        rows.append({"model": Path(r.model).name, "precision": r.precision, "p50_ms": p50,
                     "status": r.status})  # fmt: skip
    if len(rows) == 2 and rows[0]["p50_ms"] and rows[1]["p50_ms"]:
        result["int8_vs_fp32_latency"] = round(rows[1]["p50_ms"] / rows[0]["p50_ms"], 3)
    result["benchmark"] = rows
