"""How every edgetk ONNX Runtime session is set up: options, emulation, the raw CPU session.

CPU settings (docs/onnx-runtime.md; measured in docs/benchmarks.md):

- ``graph_optimization_level=ORT_ENABLE_ALL`` (the NCHWc layout transforms only run at ALL).
  The optimized graph is hardware-specific, so it is never saved back to disk.
- intra-op threads = physical cores (hyperthreads add contention, not speed), sequential
  execution (parallel execution with inter-op threads is slower on small machines).
- Spinning (``session.intra_op.allow_spinning``): off unless asked for, in every session, the
  live loop's and the benchmark's alike (:data:`DEFAULT_SPINNING`, :func:`spin_wait`). Idle
  intra-op threads that spin keep cores busy that the loop's capture, preprocess and
  postprocess threads need; off, a loop that waits for frames keeps its latency and frees
  that CPU (docs/onnx-runtime.md). ``edgetk benchmark --spinning`` measures the other setting.

A ``--target tensorrt`` int8 file on ``ort-cpu`` is *emulated*: ONNX Runtime's CPU kernels fuse
Q/DQ into their own int8 arithmetic, which on an x86 CPU without VNNI sums u8 x s8 pairs in
int16 and saturates (docs/benchmarks.md has a classifier that lost 13 points that way).
TensorRT computes the same file with int32 sums and exact dequantization, so on the CPU each
Q/DQ pair runs as float (``session.disable_quant_qdq``): the accuracy is TensorRT's, the
latency is nobody's int8 latency. GPU providers run the file for real and never emulate.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any

from toolkit.backends.base import session_threads
from toolkit.errors import BackendUnavailableError, ToolkitError
from toolkit.model.spec import ModelSpec

log = logging.getLogger(__name__)

# What an emulating session computes (``Session.emulated``), and the line commands print.
EMULATED_TRT = "TensorRT int8 semantics on CPU"
EMULATION_NOTE = f"emulated: {EMULATED_TRT} (Q/DQ run as float)"
# ORT's switch that leaves Q/DQ nodes unfused: each pair quantizes and dequantizes in float.
_NO_QDQ_FUSION = "session.disable_quant_qdq"


# Whether idle ORT intra-op threads spin, when a command does not say (the module notes).
DEFAULT_SPINNING = False


def spin_wait(spinning: bool | None = None) -> bool:
    """The intra-op spin wait of an ORT session: ``spinning``, else :data:`DEFAULT_SPINNING`
    (the one default the live loop and ``edgetk benchmark`` share)."""
    return DEFAULT_SPINNING if spinning is None else bool(spinning)


def emulation_note(emulated: str) -> str:
    """The line commands print for a session's ``emulated`` value."""
    return EMULATION_NOTE if emulated == EMULATED_TRT else f"emulated: {emulated}"


def import_ort() -> Any:
    """``import onnxruntime``, or a BackendUnavailableError saying how to install it."""
    try:
        import onnxruntime
    except ImportError as e:  # a core dependency, but a broken install should say so
        raise BackendUnavailableError(
            "onnxruntime is not installed: pip install onnxruntime (or onnxruntime-gpu)"
        ) from e
    return onnxruntime


def ort_errors(*names: str) -> tuple[type[BaseException], ...]:
    """ONNX Runtime's exception classes (they derive from Exception, not RuntimeError)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return tuple(c for n in names if isinstance(c := getattr(state, n, None), type))


MODEL_ERRORS = ("InvalidGraph", "InvalidProtobuf", "NoSuchFile", "NotImplemented", "ModelLoaded")
RUN_ERRORS = ("Fail", "EPFail", "RuntimeException", "InvalidArgument", "NotImplemented")


def first_line(e: BaseException | str, limit: int = 300) -> str:
    """An error's text on one line, at most ``limit`` characters (for one-line messages)."""
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_trt_int8(spec: ModelSpec | None) -> bool:
    """True for an int8 file quantized for ``--target tensorrt`` (emulated on ``ort-cpu``)."""
    if spec is None or spec.precision != "int8":
        return False
    info = spec.extra.get("quantization")
    return isinstance(info, dict) and info.get("target") == "tensorrt"


def recorded_spec(model: Any) -> ModelSpec | None:
    """The edgetk spec stored in ``model`` (an .onnx path, a ModelProto or its serialized
    bytes), None if it has none.

    Unlike :func:`toolkit.model.modelfile.read_spec`, nothing is inferred for a foreign file: a bare
    graph (e.g. a quantizer's candidate) has no precision or target to go by.
    """
    from toolkit.model.modelfile import load_onnx, read_metadata
    from toolkit.model.spec import METADATA_KEY

    if isinstance(model, (str, Path)):
        proto = load_onnx(model, load_weights=False)
    elif isinstance(model, bytes):
        import onnx

        proto = onnx.load_model_from_string(model)
    else:
        proto = model
    text = read_metadata(proto).get(METADATA_KEY)
    return None if text is None else ModelSpec.from_json(text)


def session_options(ort: Any, *, threads: int, spinning: bool, emulate: bool) -> Any:
    """The SessionOptions of every edgetk ORT session (see the module notes for the numbers)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    spin = "1" if spinning else "0"
    so.add_session_config_entry("session.intra_op.allow_spinning", spin)
    so.add_session_config_entry("session.inter_op.allow_spinning", spin)
    if emulate:
        so.add_session_config_entry(_NO_QDQ_FUSION, "1")
    # Errors only: "some nodes were not assigned to the preferred EP" warnings on GPU
    # providers are expected (shape ops run on the CPU) and would clutter every command.
    so.log_severity_level = 3
    return so


def new_session(ort: Any, model: str | bytes, so: Any, providers: list[Any]) -> Any:
    """``InferenceSession`` with ONNX Runtime's stdout chatter captured and logged instead."""
    captured = io.StringIO()
    try:
        # enable_fallback=0: a provider that fails to start raises instead of silently
        # becoming CPU; older ORT versions ignore it and print "EP Error" on stdout, which
        # is captured so that --json output stays one document.
        with contextlib.redirect_stdout(captured):
            return ort.InferenceSession(
                model, sess_options=so, providers=providers, enable_fallback=0
            )
    finally:
        if captured.getvalue().strip():
            log.warning("onnxruntime: %s", first_line(captured.getvalue()))


def cpu_inference_session(
    model: Any, *, emulate: bool | None = None, threads: int | None = None
) -> Any:
    """A raw ORT CPU ``InferenceSession`` for ``model`` (an .onnx path, a ModelProto or its
    serialized bytes), with :class:`~toolkit.backends.ort.OrtSession`'s options, for code that
    needs ORT's own API (any output, no spec).

    ``emulate``: Q/DQ as float; None decides from the spec stored in ``model``
    (:func:`is_trt_int8`). A model that does not load is a :class:`ToolkitError` (these are
    models edgetk made, not the user's input).
    """
    ort = import_ort()
    if emulate is None:
        emulate = is_trt_int8(recorded_spec(model))
    n = session_threads(threads)
    so = session_options(ort, threads=n, spinning=spin_wait(), emulate=emulate)
    if isinstance(model, (str, Path)):
        src: str | bytes = str(model)
    else:
        src = model if isinstance(model, bytes) else model.SerializeToString()
    try:
        return new_session(ort, src, so, ["CPUExecutionProvider"])
    except (*ort_errors(*MODEL_ERRORS, *RUN_ERRORS), RuntimeError, ValueError) as e:
        raise ToolkitError(f"ONNX Runtime cannot load the converted model: {first_line(e)}") from e
