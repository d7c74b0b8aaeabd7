"""The quantization report: what ``--json`` prints and the human summary's lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape

from toolkit.model.spec import ModelSpec


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
    decode_float: list[str] = field(default_factory=list)  # a detector's decode tail (in kept)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    preprocessing: str | None = None
    spec: ModelSpec | None = None
    isa: dict[str, Any] | None = None  # IsaChoice.to_dict() (int8)

    def _float_parts(self) -> list[str]:
        """The float layers for people: the decode tail as one item, then the gate's layers."""
        tail = set(self.decode_float)
        head = [f"the box decoding ({len(tail)} nodes, no weights)"] if tail else []
        return head + [n for n in self.kept_float if n not in tail]

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
            "isa": self.isa,
            "agreement": self.agreement,
            "metrics": self._metrics(),
            "drop": None if self.eval is None else self.eval["drop"],
            "gate": self.gate,
            "kept_float": list(self.kept_float),
            "decode_float": list(self.decode_float),
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
        out += _isa_lines(self.isa)
        if self.trt_check is not None:
            chk = self.trt_check
            if chk["passed"]:
                out.append("TensorRT check: [green]passed[/green] (symmetric int8, per-channel "
                           "weights, per-tensor activations, float bias)")  # fmt: skip
            else:
                out.append("TensorRT check: [yellow]not TensorRT-compatible[/yellow]: "
                           + "; ".join(chk["problems"]))  # fmt: skip
        out += _agreement_lines(self.agreement)
        if self.eval is not None:
            e = self.eval
            out.append(f"accuracy ({e['metric']} on {e['data']}): float {e['float'] * 100:.2f}%, "
                       f"{self.precision} {e['quantized'] * 100:.2f}%, drop {e['drop']:.2f} pt")  # fmt: skip
        if self.gate is not None:
            out += _gate_lines(self.gate, self.passed)
        if self.precision == "int8" or self.kept_float:
            out.append("kept in float: " + (", ".join(self._float_parts()) or "none"))
        out.append(_size_line(self.sizes, self.precision))
        out += [f"note: {escape(n)}" for n in self.notes]
        if self.passed and self.output:
            out.append(f"[green]wrote[/green] {self.output}")
        elif not self.passed:
            out.append("[red]rejected:[/red] " + _rejection(self.gate) + "; nothing was written")
        return out


def _isa_lines(isa: dict[str, Any] | None) -> list[str]:
    if not isa:
        return []
    if isa["cpu_isa"] is None:
        return ["instruction set: any (TensorRT accumulates int8 in int32)"]
    weights = ("7-bit weights (reduce_range: no int8 dot product, ONNX Runtime sums pairs in "
               "int16)" if isa["reduce_range"] else "8-bit weights (int8 dot product, int32 sums)")  # fmt: skip
    who = "this machine" if isa["chosen_by"] == "this machine" else (
        f"{isa['chosen_by']}; this machine is {isa['host_isa']}")  # fmt: skip
    return [f"made for {isa['cpu_isa']} CPUs ({who}): {weights}"]


def _agreement_lines(a: dict[str, Any]) -> list[str]:
    if not a:
        return []
    parts = [f"{a['samples']} {a.get('inputs', 'samples')}"]
    if "top1_agreement" in a:
        parts.append(f"top-1 agreement {a['top1_agreement'] * 100:.1f}%")
    parts.append(f"max abs diff {a['max_abs_diff']:.4g}")
    if a.get("emulated"):
        parts.append("Q/DQ as float")
    out = ["vs float: " + ", ".join(parts)]
    det = a.get("detection")
    if det:
        frac = det["matched_fraction"]
        out.append(f"boxes vs float: {det['matched']}/{det['float_boxes']} matched"
                   + (f" ({frac * 100:.1f}%)" if frac is not None else "")
                   + f", {det['extra_boxes']} extra, box F1 {det['box_f1']:.3f} (IoU 0.5), "
                   + f"{det['box_f1_50_95']:.3f} (IoU 0.5:0.95), score error "
                   + f"{det['score_error']}")  # fmt: skip
    return out


def _gate_lines(g: dict[str, Any], passed: bool) -> list[str]:
    steps = g.get("steps", [])
    if g.get("kind") == "agreement":
        what = ("mean box F1 over IoU 0.5:0.95" if g.get("metric") == "box_f1_50_95"
                else "top-1 agreement")  # fmt: skip
        head = f"gate ({what} >= {g['min_agreement']:g}% with the float model on {g['inputs']})"
    else:
        head = f"gate (max drop {g['max_drop']} pt)"
    out = [head + ": " + ("[green]passed[/green]" if passed else "[red]FAILED[/red]")
           + (f" after {len(steps) - 1} fallback step(s)" if len(steps) > 1 else "")]  # fmt: skip
    for i, s in enumerate(steps):
        if i == 0 and len(steps) == 1 and passed:
            break  # one line says it: passed with no fallback
        layers = ", ".join(s["kept_float"]) if s["kept_float"] else "none (all int8)"
        text = f"  float {layers}: "
        if g.get("kind") != "agreement":
            text += f"drop {s['drop']:.2f} pt, "
        if s.get("agreement") is not None:
            text += f"agreement {s['agreement'] * 100:.1f}%"
        out.append(text.rstrip(", "))
    return out


def _rejection(g: dict[str, Any] | None) -> str:
    if g is None or g.get("kind") != "agreement":
        return "the accuracy drop is over the limit"
    last = (g.get("steps") or [{}])[-1].get("value", 0.0)
    return (f"agreement with the float model {last * 100:.1f}% is under "
            f"{g['min_agreement']:g}% with at most {g['max_fallback']} layer(s) in float "
            "(raise --max-fallback, or lower --min-agreement)")  # fmt: skip


def _size_line(sizes: dict[str, Any], precision: str) -> str:
    size = f"size: float {_mb(sizes.get('float_bytes'))}"
    if "quantized_bytes" in sizes:
        size += f", {precision} {_mb(sizes['quantized_bytes'])}"
    elif "rejected_bytes" in sizes:
        size += f", {precision} {_mb(sizes['rejected_bytes'])} (not written)"
    return size
