"""Static int8 QDQ quantization with ONNX Runtime, for a deployment target.

One QDQ file cannot serve both targets (docs/onnx-runtime.md; the numbers are in
docs/benchmarks.md):

- ``tensorrt``: symmetric int8 activations and weights, per-channel weights on the output
  channel axis, float bias (docs/tensorrt.md, what NVIDIA ModelOpt passes to ONNX Runtime).
  On an x86 CPU it runs no faster than fp32.
- ``cpu``: uint8 (asymmetric) activations, int8 per-channel weights, the U8S8 layout that ONNX
  Runtime's AVX2/NEON kernels want. TensorRT refuses it (uint8 zero points). The weights are
  7-bit (``reduce_range``) for a CPU without int8 dot-product instructions
  (:func:`choose_isa`): there ONNX Runtime sums u8 x s8 pairs in int16 (vpmaddubsw), and full
  8-bit weights saturate it (255 * 127 * 2 > 32767).

Calibration methods: ``minmax`` is the fastest and lightest; ``entropy`` and ``percentile``
keep activation histograms (far more memory); with onnxruntime 1.32 ``entropy``'s bin options
are not passed through.

:class:`Int8Quantizer` runs ONNX Runtime's pre-processing once, calibrates once (the ranges
are cached in a JSON file), and can then re-quantize cheaply with some nodes kept in float
(the accuracy gate's fallback).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import BadInputError, ToolkitError
from toolkit.interrupts import interrupted_chain, keep_interrupts
from toolkit.quantize.calibration import Progress, make_reader

log = logging.getLogger(__name__)

TARGETS = ("tensorrt", "cpu")
METHODS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True)
class IsaChoice:
    """The CPU instruction set an int8 model is made for, and what follows from it."""

    cpu_isa: str | None  # avx2 | vnni | arm; None for the tensorrt target (int32 accumulation)
    reduce_range: bool  # 7-bit weights
    host_isa: str  # this machine's
    chosen_by: str  # "this machine" | "--cpu" | "target tensorrt"
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"cpu_isa": self.cpu_isa, "reduce_range": self.reduce_range,
                "host_isa": self.host_isa, "chosen_by": self.chosen_by}  # fmt: skip


def choose_isa(target: str, cpu: str | None, host_isa: str | None = None) -> IsaChoice:
    """The instruction set and weight range for ``target`` (``cpu``: ``--cpu`` or this machine).

    ``host_isa`` is this machine's (read from /proc/cpuinfo when None): full-range weights
    asked for on an AVX2-only host get a note that this host cannot run them exactly.
    """
    from toolkit.platform.cpu import INT8_ISAS, int8_features, needs_reduce_range

    if cpu is not None and cpu not in INT8_ISAS:
        raise BadInputError(f"--cpu must be one of {', '.join(INT8_ISAS)}, got '{cpu}'")
    host = host_isa or int8_features()["isa"]
    if target != "cpu":
        if cpu is not None:
            raise BadInputError(
                f"--cpu applies to --target cpu only (target {target}: TensorRT accumulates "
                "int8 in int32 on every GPU)"
            )
        return IsaChoice(None, False, host, f"target {target}")
    isa = cpu or host
    reduce = needs_reduce_range(isa)
    note = None
    if not reduce and needs_reduce_range(host):
        note = (
            f"made for {isa} (8-bit weights): this CPU ({host}) cannot run them exactly, ONNX "
            "Runtime's AVX2 kernels saturate int16 sums; check it with the model made for avx2 "
            f"(--cpu avx2) or run it on a {isa.upper()} machine"
        )
    return IsaChoice(isa, reduce, host, "--cpu" if cpu else "this machine", note)


def target_settings(target: str, reduce_range: bool = False) -> dict[str, Any]:
    """``quantize_static`` keyword arguments (besides the method) for ``target``.

    ``reduce_range``: 7-bit weights (cpu target only: TensorRT accumulates in int32).
    """
    from onnxruntime.quantization import QuantFormat, QuantType

    # Per-channel weights along the output-channel axis of each convolution.
    axes = {"QDQOpTypePerChannelSupportToAxis": {"Conv": 0, "ConvTranspose": 1}}
    common = {"quant_format": QuantFormat.QDQ, "weight_type": QuantType.QInt8, "per_channel": True}
    if target == "tensorrt":
        return {
            **common,
            "activation_type": QuantType.QInt8,
            "extra_options": {
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "QuantizeBias": False,
                "DedicatedQDQPair": False,
                "QDQKeepRemovableActivations": True,
                **axes,
            },
        }
    if target == "cpu":
        return {
            **common,
            "activation_type": QuantType.QUInt8,
            "reduce_range": reduce_range,
            "extra_options": {"ActivationSymmetric": False, "WeightSymmetric": True, **axes},
        }
    raise BadInputError(f"--target must be one of {', '.join(TARGETS)}, got '{target}'")


def calibrate_method(method: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    table = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if method not in table:
        raise BadInputError(f"--method must be one of {', '.join(METHODS)}, got '{method}'")
    return table[method]


# The working folder is one per process: ORT calls that write into it run one at a time.
_CWD_LOCK = threading.Lock()


@contextlib.contextmanager
def working_folder(folder: Path) -> Iterator[None]:
    """Run the block with ``folder`` as the working folder, restored on every exit.

    ORT's symbolic shape inference saves ``sym_shape_infer_temp.onnx`` and a ``<uuid>.data``
    file into the working folder when it gives up (onnxruntime/tools/symbolic_shape_infer.py,
    a fixed relative name: no argument moves it), and leaves them there. Inside our private
    temporary folder they go away with it, and a user's own file of that name is never
    touched. The working folder is process-wide: the lock orders our own callers, and every
    path handed to ORT inside the block is absolute.
    """
    with _CWD_LOCK:
        before = os.getcwd()
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(before)


def preprocess_model(model: Any, workdir: Path) -> tuple[Path, str]:
    """ONNX Runtime's ``quant_pre_process`` (shape inference + optimization) into ``workdir``.

    A loaded ModelProto is passed, not a path: it breaks on a path with external data in a
    temporary folder (docs/onnx-runtime.md). Symbolic shape inference fails on some
    graphs (YOLO heads) and the optimizer on unoptimized exports, so lighter variants are
    tried in turn; the last resort quantizes the graph as it is.

    Returns:
        The prepared model's path and which pre-processing was applied.
    """
    workdir = workdir.resolve()
    out = workdir / "prepared.onnx"
    big = model.ByteSize() > 1_500_000_000
    kwargs: dict[str, Any] = {"save_as_external_data": big, "all_tensors_to_one_file": big}
    attempts = (
        ("full", {}),
        ("onnx shape inference + optimization", {"skip_symbolic_shape": True}),
        ("onnx shape inference", {"skip_symbolic_shape": True, "skip_optimization": True}),
    )
    # ORT logs each failed variant with a traceback at ERROR level: ours says it in one line.
    ort_log = logging.getLogger("onnxruntime.quantization.shape_inference")
    level = ort_log.level
    ort_log.setLevel(logging.CRITICAL)
    try:
        # keep_interrupts: a Ctrl-C must not read as "this variant failed, try the next".
        with keep_interrupts(), working_folder(workdir):
            return _first_working(model, out, kwargs, attempts, big)
    finally:
        ort_log.setLevel(level)


def _first_working(
    model: Any, out: Path, kwargs: dict[str, Any], attempts: Any, big: bool
) -> tuple[Path, str]:
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    for label, extra in attempts:
        # A copy each time: on failure, quant_pre_process leaves the proto pointing at external
        # data files in its deleted temporary folder.
        attempt = onnx.ModelProto()
        attempt.CopyFrom(model)
        try:
            quant_pre_process(attempt, out, **kwargs, **extra)
            return out, label
        except Exception as e:  # ORT raises bare Exception here: try the next variant
            if interrupted_chain(e):  # a Ctrl-C that ORT re-raised as something else
                raise KeyboardInterrupt from None
            log.info("quant_pre_process (%s) failed: %s: %s", label, type(e).__name__, e)
    log.warning("ONNX Runtime's quantization pre-processing failed; quantizing the graph as is")
    onnx.save_model(model, str(out), save_as_external_data=big, location="prepared.onnx.data")
    return out, "none (pre-processing failed)"


def input_batching(model: Any, input_name: str) -> tuple[int, bool]:
    """(calibration batch size, whether it is fixed) from the model's input shape."""
    for value in model.graph.input:
        if value.name == input_name:
            dim = value.type.tensor_type.shape.dim[0] if value.type.tensor_type.shape.dim else None
            if dim is not None and dim.HasField("dim_value") and dim.dim_value > 0:
                return int(dim.dim_value), True
    return 8, False


class Int8Quantizer:
    """Pre-process and calibrate once, quantize as often as needed (some nodes kept float).

    Use as a context manager: the temporary folder (prepared model, calibration cache) is
    removed on exit.
    """

    def __init__(
        self,
        model: Any,
        calib: np.ndarray,
        input_name: str,
        *,
        target: str,
        method: str = "minmax",
        progress: Progress | None = None,
        reduce_range: bool = False,
    ) -> None:
        self.settings = target_settings(target, reduce_range)
        self.method = calibrate_method(method)
        self.target = target
        self.calib = calib
        self.input_name = input_name
        self.progress = progress
        self._tmp = Path(tempfile.mkdtemp(prefix="edgetk-quant-")).resolve()
        try:
            self.prepared, self.preprocessing = preprocess_model(model, self._tmp)
        except BaseException:  # Ctrl-C too: __exit__ never runs for a failed __init__
            self.close()
            raise
        self.batch, self.fixed = input_batching(model, input_name)
        self._cache = self._tmp / "calibration.json"
        self._count = 0

    def __enter__(self) -> Int8Quantizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def quantize(self, exclude: Sequence[str] = ()) -> Any:
        """The QDQ ModelProto, with the nodes named in ``exclude`` left in float."""
        import onnx
        from onnxruntime.quantization import quantize_static

        self._count += 1
        out = self._tmp / f"int8_{self._count}.onnx"
        first = not self._cache.exists()
        reader = make_reader(
            self.calib,
            self.input_name,
            batch=self.batch,
            fixed=self.fixed,
            progress=self.progress if first else None,
        )
        try:
            with keep_interrupts(), working_folder(self._tmp):
                quantize_static(
                    str(self.prepared),
                    str(out),
                    reader,
                    calibrate_method=self.method,
                    nodes_to_exclude=list(exclude),
                    calibration_cache_path=str(self._cache),
                    use_external_data_format=self.prepared.stat().st_size > 1_500_000_000,
                    **self.settings,
                )
        except (ValueError, RuntimeError, TypeError, KeyError) as e:
            raise ToolkitError(f"ONNX Runtime quantization failed: {type(e).__name__}: {e}") from e
        proto = onnx.load(str(out))
        for p in self._tmp.glob(f"int8_{self._count}.onnx*"):
            p.unlink(missing_ok=True)
        if exclude:
            keep_inputs_float(proto, set(exclude))
        return proto


def keep_inputs_float(model: Any, names: set[str]) -> None:
    """Feed the named nodes float tensors: bypass the activation Q/DQ pairs on their inputs.

    ``nodes_to_exclude`` leaves a node unquantized, but its input tensor may still be quantized
    by its producer (a Conv followed by Relu keeps a Q/DQ on the Conv output in the symmetric
    layout), so an outlier-range tensor would still be crushed. Q/DQ nodes left unused are
    removed. Modifies ``model`` in place.
    """
    graph = model.graph
    producer = {out: n for n in graph.node for out in n.output}
    for node in graph.node:
        if node.name not in names:
            continue
        for i, tensor in enumerate(node.input):
            dq = producer.get(tensor)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            q = producer.get(dq.input[0])
            if q is not None and q.op_type == "QuantizeLinear":
                node.input[i] = q.input[0]
    graph_outputs = {o.name for o in graph.output}
    while True:
        used = {name for n in graph.node for name in n.input} | graph_outputs
        dead = [
            n for n in graph.node
            if n.op_type in ("QuantizeLinear", "DequantizeLinear")
            and not any(o in used for o in n.output)
        ]  # fmt: skip
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    used = {name for n in graph.node for name in n.input}
    stale = [t for t in graph.initializer if t.name not in used]
    for t in stale:
        graph.initializer.remove(t)
