"""Measuring quantization candidates against the float model: agreement and, with --eval,
accuracy (:class:`Measurer`), and the report's ``eval`` entry (:func:`eval_entry`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.evaluate.agreement import agreement, detection_agreement, evaluate, ort_outputs
from toolkit.model.spec import ModelSpec, SpecOverrides
from toolkit.quantize.calibration import CalibrationSet
from toolkit.quantize.gate import agreement_value, drop_pp


class Measurer:
    """Runs the float model once, then measures candidates: agreement and, with --eval, accuracy.

    ``emulate``: candidates run with each Q/DQ pair as float (int32-exact int8), for a model
    whose target computes int8 differently from this CPU's ONNX Runtime kernels (TensorRT;
    8-bit weights on an AVX2-only host). ``candidate_spec`` is stamped into every candidate
    evaluated on --eval, so the backend sees an int8 model of its target.
    """

    def __init__(
        self, proto: Any, spec: ModelSpec, cal: CalibrationSet | None, eval_data: Any,
        tmp: Path, src: Path, tick: Callable[[str], Any], overrides: SpecOverrides | None,
        strict: bool = False,
    ) -> None:  # fmt: skip
        self.spec = spec
        self.candidate_spec = spec
        self.emulate = False
        self.gate_on_accuracy = False
        self.strict = strict
        self.tmp = tmp
        self.eval_data = eval_data
        self.tick = tick
        self.input = spec.input.name
        if cal is not None and cal.holdout.shape[0] > 0:
            self.samples, self.kind = cal.holdout, "held-out calibration samples"
        elif cal is not None:
            self.samples, self.kind = cal.calib, "calibration samples (none held out)"
        else:  # fp16 without --calib: random inputs of the model's shape
            c, (h, w) = spec.input.channels, spec.input.hw
            self.samples = np.random.default_rng(0).standard_normal((8, c, h, w)).astype(np.float32)
            self.kind = "random inputs"
        self.reference = ort_outputs(proto, self.samples, self.input)
        self.float_eval = None
        if eval_data is not None:
            self.float_eval = evaluate(
                src, eval_data, overrides=overrides, progress=tick("eval float"), strict=strict
            )
        self._n = 0

    @property
    def agreement_metric(self) -> str:
        return "box_f1_50_95" if self.spec.task == "detect" else "top1_agreement"

    def agreement(self, candidate: Any) -> dict[str, Any]:
        out = ort_outputs(candidate, self.samples, self.input, emulate=self.emulate)
        result = {"inputs": self.kind, **agreement(self.reference, out, self.spec.task),
                  "emulated": self.emulate}  # fmt: skip
        if self.spec.task == "detect":
            det = detection_agreement(self.spec, self.reference, out)
            result["box_f1"], result["box_f1_50_95"] = det["box_f1"], det["box_f1_50_95"]
            result["detection"] = det
        return result

    def measure(self, candidate: Any) -> dict[str, Any]:
        """The gate metric of ``candidate`` (``metric``, ``value``), with its ``agreement``
        and, with --eval, its ``accuracy``."""
        a = self.agreement(candidate)
        value = agreement_value(a)
        result = {"metric": self.agreement_metric, "value": value, "agreement": a,
                  "agreement_value": value, "accuracy": None}  # fmt: skip
        if self.eval_data is not None:
            acc = self.accuracy_of(candidate)
            result["accuracy"] = acc
            if self.gate_on_accuracy:
                result.update(metric=acc["metric"], value=acc["value"])
        return result

    def accuracy_of(self, candidate: Any) -> dict[str, Any]:
        from toolkit.model.modelfile import write_spec

        self._n += 1
        path = self.tmp / f"candidate_{self._n}.onnx"
        write_spec(candidate, self.candidate_spec)
        _save_plain(candidate, path)
        result = evaluate(path, self.eval_data, progress=self.tick("eval quantized"),
                          strict=self.strict, emulate=self.emulate)  # fmt: skip
        path.unlink(missing_ok=True)
        return result

    def eval_notes(self) -> list[str]:
        """What the --eval set lost to unreadable images (the same ones for every candidate)."""
        from toolkit.data.images import SkippedImage, skipped_text

        details = (self.float_eval or {}).get("details") or {}
        skipped = [SkippedImage(d["source"], d["reason"]) for d in details.get("skipped", [])]
        return [f"--eval {skipped_text(skipped)}"] if skipped else []

    @property
    def float_value(self) -> float:
        return 1.0 if self.float_eval is None else float(self.float_eval["value"])


def _save_plain(proto: Any, path: Path) -> None:
    import onnx

    big = proto.ByteSize() > 1_500_000_000
    onnx.save_model(proto, str(path), save_as_external_data=big, location=path.name + ".data")


def eval_entry(m: Measurer, metric: dict[str, Any]) -> dict[str, Any] | None:
    """The report's ``eval``: float and quantized accuracy on --eval (None without it)."""
    acc = metric.get("accuracy")
    if m.float_eval is None or acc is None:
        return None
    return {
        "data": str(m.eval_data),
        "metric": acc["metric"],
        "float": m.float_eval["value"],
        "quantized": acc["value"],
        "drop": drop_pp(m.float_value, acc["value"]),
        "float_details": m.float_eval["details"],
        "quantized_details": acc.get("details"),
    }
