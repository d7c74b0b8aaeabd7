"""What ``quantize_model`` is asked to do: its options, checked before any slow work, and the
gate they set for an int8 model (:func:`gate_rule`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError
from toolkit.evaluate.agreement import check_eval_data
from toolkit.model.spec import ModelSpec
from toolkit.quantize.int8 import METHODS, TARGETS

PRECISIONS = ("fp16", "int8")

# The label-free gate's default, in percent: top-1 agreement (classify), the mean box F1 over
# IoU 0.5:0.95 (detect). A classifier's int8 model that agrees with float on fewer than 99 of
# 100 frames is not "the same model". For boxes, docs/benchmarks.md (issue 11) has where 90
# comes from: the int8 detectors within 1.5 pt mAP50-95 of float scored above it, those 3.6 pt
# below scored under 0.8.
DEFAULT_MIN_AGREEMENT = {"classify": 99.0, "detect": 90.0}


@dataclass(frozen=True)
class QuantizeOptions:
    """The conversion and gate options of one ``quantize_model`` call (see its Args)."""

    precision: str
    target: str
    calib: str | None
    calib_size: int
    method: str
    eval_data: str | Path | None
    max_drop: float | None
    max_fallback: int
    min_agreement: float | None
    cpu: str | None
    seed: int
    strict: bool

    def check(self) -> None:
        """Refuse options that contradict each other or are out of range (no file is read)."""
        _check_args(self)
        if self.min_agreement is not None:
            _check_min_agreement(self.min_agreement, self.precision, self.max_drop,
                                 None if self.eval_data is None else str(self.eval_data))  # fmt: skip
        if self.cpu is not None and self.precision != "int8":
            raise BadInputError("--cpu chooses the instruction set of an int8 --target cpu model")

    def check_model(self, src: Path, spec: ModelSpec) -> None:
        """Refuse a model these options cannot quantize, and an ``--eval`` set it cannot score."""
        if spec.precision != "fp32":
            raise BadInputError(f"{src} is already {spec.precision}: quantize the float model")
        if self.eval_data is not None:
            check_eval_data(self.eval_data, spec.task)
        elif self.max_drop is not None and spec.task != "classify":
            raise BadInputError("--max-drop on a detection model needs --eval DATA (a YOLO set); "
                                "without labels, --min-agreement gates the box agreement")  # fmt: skip


def _check_args(o: QuantizeOptions) -> None:
    if o.precision not in PRECISIONS:
        raise BadInputError(f"--precision must be fp16 or int8, got '{o.precision}'")
    if o.precision == "int8":
        if o.target not in TARGETS:
            raise BadInputError(f"--target must be one of {', '.join(TARGETS)}, got '{o.target}'")
        if o.method not in METHODS:
            raise BadInputError(f"--method must be one of {', '.join(METHODS)}, got '{o.method}'")
        if o.calib is None:
            raise BadInputError("int8 needs calibration data: --calib DIR|VIDEO|FILE.npz|synthetic")
    if o.calib_size < 1:
        raise BadInputError(f"--calib-size must be at least 1, got {o.calib_size}")
    if o.max_drop is not None and o.max_drop < 0:
        raise BadInputError(f"--max-drop must be >= 0 (percentage points), got {o.max_drop}")
    if o.max_fallback < 0:
        raise BadInputError(f"--max-fallback must be >= 0, got {o.max_fallback}")


def _check_min_agreement(
    value: float, precision: str, max_drop: float | None, eval_data: str | None
) -> None:
    # A percentage, like --max-drop's points; a value under 1 is most likely a fraction.
    if not 0 <= value <= 100 or 0 < value < 1:
        hint = f" (a percentage: {value * 100:g} for {value:g})" if 0 < value < 1 else ""
        raise BadInputError(f"--min-agreement must be a percentage 0..100, got {value:g}{hint}")
    if precision != "int8":
        raise BadInputError("--min-agreement gates int8 models (fp16 is checked, not gated)")
    if max_drop is not None:
        raise BadInputError("give --max-drop (the accuracy gate, with --eval) or "
                            "--min-agreement (agreement with the float model), not both")  # fmt: skip
    if eval_data is not None:
        raise BadInputError("--min-agreement is the gate without labels; with --eval, gate "
                            "on accuracy with --max-drop (the agreement is reported)")  # fmt: skip


@dataclass(frozen=True)
class GateRule:
    """What an int8 model is held to: an accuracy drop on --eval, or agreement with float."""

    kind: str  # "accuracy" | "agreement"
    float_value: float  # the float model's value of the gate metric (agreement: 1.0)
    max_drop: float  # percentage points below float_value
    min_agreement: float | None = None  # percent (agreement kind)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "max_drop": self.max_drop,
                "min_agreement": self.min_agreement}  # fmt: skip


def gate_rule(
    task: str, eval_data: Any, max_drop: float | None, min_agreement: float | None,
    float_value: float,
) -> GateRule | None:  # fmt: skip
    """The gate: accuracy with ``--eval`` (None, report only, without ``--max-drop``), else
    agreement with float.

    Labels outrank agreement: on calibration frames unlike the production images (synthetic
    parts for a colour classifier) the float model's own near-ties flip, and agreement
    refuses a model whose --eval accuracy equals float's. Without ``--eval``, ``--max-drop X``
    on a classifier keeps its old meaning (top-1 disagreement with float of at most X points),
    i.e. ``--min-agreement 100-X``.
    """
    if eval_data is not None:
        return None if max_drop is None else GateRule("accuracy", float_value, float(max_drop))
    if max_drop is not None:
        least = 100.0 - float(max_drop)
    else:
        least = DEFAULT_MIN_AGREEMENT.get(task, 99.0) if min_agreement is None else min_agreement
    return GateRule("agreement", 1.0, round(100.0 - least, 6), least)
