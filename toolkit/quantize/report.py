"""The quantization report: what ``--json`` prints and the human summary's lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape

from toolkit.spec import ModelSpec


def artifact_size(path: str | Path) -> int:
    """Bytes on disk of an ONNX file with its external-data companion (one artifact)."""
    from toolkit.fileio import onnx_companions

    p = Path(path)
    return p.stat().st_size + sum(q.stat().st_size for q in onnx_companions(p))


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.2f} MB"


@dataclass
class QuantizeReport:
    """Everything ``edgetk quantize`` measured; ``passed`` False means nothing was written."""

    source_model: str
    output: str | None
    precision: str
    target: str | None
    method: str | None
    calibration: dict[str, Any] | None
    sizes: dict[str, Any]
    passed: bool = True
    trt_check: dict[str, Any] | None = None
    agreement: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    kept_float: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    preprocessing: str | None = None
    spec: ModelSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "passed": self.passed,
            "source_model": self.source_model,
            "output": self.output,
            "precision": self.precision,
            "target": self.target,
            "method": self.method,
            "calibration": self.calibration,
            "calibration_count": (self.calibration or {}).get("count", 0),
            "preprocessing": self.preprocessing,
            "tensorrt_check": self.trt_check,
            "agreement": self.agreement,
            "metrics": self._metrics(),
            "drop": None if self.eval is None else self.eval["drop"],
            "gate": self.gate,
            "kept_float": list(self.kept_float),
            "sizes": dict(self.sizes),
            "notes": list(self.notes),
            "seconds": self.seconds,
        }

    def _metrics(self) -> dict[str, Any] | None:
        if self.eval is None:
            return None
        return {
            "data": self.eval["data"],
            "metric": self.eval["metric"],
            "float": self.eval["float"],
            "quantized": self.eval["quantized"],
            "float_details": self.eval.get("float_details"),
            "quantized_details": self.eval.get("quantized_details"),
        }

    def lines(self) -> list[str]:
        """The human summary, one fact per line (rich markup)."""
        what = self.precision + (f" ({self.target} target, {self.method})" if self.target else "")
        out = [f"[bold]{Path(self.source_model).name}[/bold] -> {what}"]
        if self.calibration:
            c = self.calibration
            out.append(f"calibration: {c['count']} samples from {c['source']} ({c['kind']}), "
                       f"{c['held_out']} held out")  # fmt: skip
            # Escaped: a file name such as "img[1].png" is not rich markup.
            out += [f"[yellow]warning:[/yellow] {escape(w)}" for w in c["warnings"]]
        if self.trt_check is not None:
            chk = self.trt_check
            if chk["passed"]:
                out.append("TensorRT check: [green]passed[/green] (symmetric int8, per-channel "
                           "weights, per-tensor activations, float bias)")  # fmt: skip
            else:
                out.append("TensorRT check: [yellow]not TensorRT-compatible[/yellow]: "
                           + "; ".join(chk["problems"]))  # fmt: skip
        a = self.agreement
        if a:
            parts = [f"{a['samples']} {a.get('inputs', 'samples')}"]
            if "top1_agreement" in a:
                parts.append(f"top-1 agreement {a['top1_agreement'] * 100:.1f}%")
            parts.append(f"max abs diff {a['max_abs_diff']:.4g}")
            out.append("vs float: " + ", ".join(parts))
            det = a.get("detection")
            if det:
                frac = det["matched_fraction"]
                out.append(f"boxes vs float: {det['matched']}/{det['float_boxes']} matched"
                           + (f" ({frac * 100:.1f}%)" if frac is not None else "")
                           + f", {det['extra_boxes']} extra, score error {det['score_error']}")  # fmt: skip
        if self.eval is not None:
            e = self.eval
            out.append(f"accuracy ({e['metric']} on {e['data']}): float {e['float'] * 100:.2f}%, "
                       f"{self.precision} {e['quantized'] * 100:.2f}%, drop {e['drop']:.2f} pt")  # fmt: skip
        if self.gate is not None:
            g = self.gate
            steps = len(g.get("steps", [])) - 1
            out.append(f"gate (max drop {g['max_drop']} pt): "
                       + ("[green]passed[/green]" if self.passed else "[red]FAILED[/red]")
                       + (f" after {steps} fallback step(s)" if steps > 0 else ""))  # fmt: skip
            for s in g.get("steps", [])[1:]:
                out.append(f"  float {', '.join(s['kept_float'])}: drop {s['drop']:.2f} pt")
        if self.kept_float:
            out.append("kept in float: " + ", ".join(self.kept_float))
        size = f"size: float {_mb(self.sizes.get('float_bytes'))}"
        if "quantized_bytes" in self.sizes:
            size += f", {self.precision} {_mb(self.sizes['quantized_bytes'])}"
        out.append(size)
        out += [f"note: {escape(n)}" for n in self.notes]
        if self.passed and self.output:
            out.append(f"[green]wrote[/green] {self.output}")
        elif not self.passed:
            out.append("[red]rejected:[/red] the accuracy drop is over the limit; nothing was "
                       "written")  # fmt: skip
        return out
