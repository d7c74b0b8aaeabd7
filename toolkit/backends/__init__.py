"""Runtimes behind one :class:`~toolkit.backends.base.Session` protocol.

``open_session`` picks the implementation by name; ``backend_status`` says which ones can run
here and, for the others, what is missing. Asking for a backend that cannot run is an error
naming the missing piece: a session never falls back to another runtime silently (``auto``
is the one explicit "best available" choice).

Example:
    >>> from toolkit.backends import open_session
    >>> with open_session("r18.onnx", "ort-cpu") as s:
    ...     logits = s.infer(x)["logits"]
"""

from __future__ import annotations

import logging
from pathlib import Path

from toolkit.backends.base import Session, TensorInfo
from toolkit.backends.tensorrt import is_engine
from toolkit.errors import BackendUnavailableError, BadInputError
from toolkit.model.spec import SpecOverrides

log = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = (
    "ort-cpu", "ort-cuda", "ort-trt", "tensorrt", "openvino", "openvino:CPU", "openvino:GPU",
    "openvino:NPU", "triton", "torch",
)  # fmt: skip
# ``auto`` for an ONNX file: the first of these that opens. OpenVINO takes part with an Intel
# accelerator only: on a CPU alone ort-cpu is the measured default (docs/benchmarks.md) and
# the one that emulates a TensorRT int8 file's arithmetic.
AUTO_ORDER: tuple[str, ...] = (
    "tensorrt", "ort-trt", "ort-cuda", "openvino:GPU", "openvino:NPU", "ort-cpu",
)  # fmt: skip
_ORT = ("ort-cpu", "ort-cuda", "ort-trt")
# How the triton backend is named: a gRPC URL (``triton`` alone is its status in ``info``).
TRITON_FORM = "triton://host:port/model"

__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "Session",
    "TensorInfo",
    "backend_status",
    "is_backend_name",
    "is_engine",
    "is_onnx",
    "open_session",
    "tensorrt_status",
]


def is_onnx(model: str | Path) -> bool:
    """True for an ``.onnx`` path (the ORT backends' input); anything else is a PyTorch reference."""
    return str(model).lower().endswith(".onnx")


def tensorrt_status() -> str | None:
    """None when the native ``tensorrt`` backend can run here, else why not."""
    from toolkit.backends.tensorrt import tensorrt_status as _status

    return _status()


def _torch_status() -> str | None:
    try:
        import torch  # noqa: F401
    except (ImportError, OSError) as e:
        return f"torch cannot be imported ({type(e).__name__}: {e}): pip install torch"
    return None


def backend_status() -> dict[str, str | None]:
    """Each backend name -> None when it can run here, else the reason it cannot.

    Cheap (no model is loaded) and never raises. A GPU provider that ONNX Runtime lists may
    still fail to start (missing CUDA libraries); opening a session checks that for real.
    """
    from toolkit.backends.ort import ort_status

    status: dict[str, str | None] = {}
    for name in BACKENDS:
        try:
            if name in _ORT:
                status[name] = ort_status(name)
            elif name == "tensorrt":
                status[name] = tensorrt_status()
            elif name.startswith("openvino"):
                from toolkit.backends.openvino import openvino_status

                status[name] = openvino_status(name)
            elif name == "triton":
                from toolkit.backends.triton import triton_status

                status[name] = triton_status()
            else:
                status[name] = _torch_status()
        except (ImportError, OSError, RuntimeError) as e:
            status[name] = f"{type(e).__name__}: {e}"
    return status


def is_backend_name(backend: str) -> bool:
    """True for a name :func:`open_session` takes (``auto``, :data:`BACKENDS`, a Triton URL)."""
    try:
        _check_name(backend)
    except BadInputError:
        return False
    return True


def _check_name(backend: str) -> str:
    name = backend.strip()
    if name.lower().startswith("triton://"):
        return name
    if name.lower().startswith("openvino"):
        from toolkit.backends.openvino import parse_device

        device = parse_device(name)
        return "openvino" if device == "AUTO" else f"openvino:{device}"
    name = name.lower()
    if name not in ("auto", *BACKENDS) or name == "triton":
        names = ", ".join(TRITON_FORM if b == "triton" else b for b in BACKENDS)
        raise BadInputError(f"unknown backend '{backend}' (expected one of: auto, {names})")
    return name


def open_session(
    model: str | Path,
    backend: str = "auto",
    *,
    overrides: SpecOverrides | None = None,
    threads: int | None = None,
    weights: str | None = None,
    spinning: bool | None = None,
    opt_batch: int | None = None,
    model_source: str | None = None,
    hint: str | None = None,
) -> Session:
    """Load ``model`` in the runtime named ``backend``.

    Args:
        model: an ``.onnx`` file, or a PyTorch reference (``zoo:NAME``, ``file.py:Name``...)
            for the ``torch`` backend.
        backend: ``auto`` (:data:`AUTO_ORDER`), :data:`BACKENDS`, ``triton://host:port/model``.
        overrides: command-line spec values (fill the gaps of a foreign ONNX file).
        threads: CPU intra-op threads (default: physical cores).
        weights: a PyTorch checkpoint for the torch backend (ONNX files carry their weights).
        spinning: let ONNX Runtime's idle threads spin (default off, shared by the live loop
            and the benchmark: :func:`toolkit.backends.ort_options.spin_wait`).
        opt_batch: the batch a TensorRT profile is tuned for (ort-trt).
        model_source: the PyTorch reference the torch backend runs for an ``.onnx`` file
            (``--model-source``). Without it, only a recorded ``zoo:`` source runs: a file's
            metadata never picks the code that is imported. Other backends refuse it.
        hint: OpenVINO's performance hint, ``latency`` (default) or ``throughput``.

    Raises:
        BadInputError: unknown backend name, missing or corrupt model.
        BackendUnavailableError: the backend cannot run here (the message says what is missing).
    """
    name = _check_name(backend)
    if model_source is not None and name != "torch":
        raise BadInputError("--model-source is used by --backend torch only")
    if name.startswith(("triton://", "openvino")) or hint is not None:
        return _open_other(model, name, overrides, threads, hint)
    if is_engine(model):
        name = _engine_backend(model, name)
    if name == "auto":
        return _open_auto(model, overrides, threads, weights, spinning, opt_batch)
    if name == "tensorrt":
        return _open_tensorrt(model, overrides)
    if name == "torch":
        from toolkit.backends.torch_backend import TorchSession

        return TorchSession(
            model, overrides=overrides, threads=threads, weights=weights, model_source=model_source
        )
    return _open_ort_file(model, name, overrides, threads, spinning, opt_batch)


def _open_ort_file(
    model: str | Path, name: str, overrides: SpecOverrides | None, threads: int | None,
    spinning: bool | None, opt_batch: int | None,
) -> Session:  # fmt: skip
    """An ONNX Runtime session (ort-cpu, ort-cuda, ort-trt) on an ``.onnx`` file."""
    if not is_onnx(model):
        raise BadInputError(
            f"backend {name} runs ONNX files, '{model}' is not one: export it first "
            f"(edgetk export {model} -o model.onnx) or use --backend torch"
        )
    from toolkit.backends.ort import open_ort

    return open_ort(
        name, model, overrides=overrides, threads=threads, spinning=spinning, opt_batch=opt_batch
    )


def _open_other(
    model: str | Path,
    name: str,
    overrides: SpecOverrides | None,
    threads: int | None,
    hint: str | None,
) -> Session:
    """A Triton client (``model`` is not read: the server has it) or an OpenVINO session."""
    if hint is not None and not name.startswith("openvino"):
        raise BadInputError("a performance hint is for the openvino backends only")
    if name.startswith("triton://"):
        from toolkit.backends.triton import TritonSession

        return TritonSession(name, overrides=overrides)
    if is_engine(model) or not is_onnx(model):
        raise BadInputError(
            f"backend {name} runs ONNX files, '{model}' is not one: export it first "
            f"(edgetk export {model} -o model.onnx)"
        )
    from toolkit.backends.openvino import OpenVinoSession

    return OpenVinoSession(
        model, name, overrides=overrides, threads=threads, hint=hint or "latency"
    )


def _engine_backend(model: str | Path, name: str) -> str:
    """A TensorRT plan runs in the tensorrt backend only; auto means that one."""
    if name not in ("auto", "tensorrt"):
        raise BackendUnavailableError(
            f"{model} is a TensorRT engine: only the tensorrt backend runs it"
        )
    return "tensorrt"


def _open_tensorrt(model: str | Path, overrides: SpecOverrides | None) -> Session:
    reason = tensorrt_status()
    if reason is not None:
        raise BackendUnavailableError(reason)
    from toolkit.backends.tensorrt import open_tensorrt

    return open_tensorrt(model, overrides=overrides)


def _open_auto(
    model: str | Path,
    overrides: SpecOverrides | None,
    threads: int | None,
    weights: str | None,
    spinning: bool | None,
    opt_batch: int | None,
) -> Session:
    if not is_onnx(model):
        return open_session(model, "torch", overrides=overrides, threads=threads, weights=weights)
    status = backend_status()
    for name in AUTO_ORDER:
        if status.get(name) is not None and name != "ort-cpu":
            continue
        if name == "tensorrt":  # it runs built engines, not ONNX files (edgetk build)
            continue
        try:
            return open_session(
                model,
                name,
                overrides=overrides,
                threads=threads,
                spinning=spinning,
                opt_batch=opt_batch,
            )
        except BackendUnavailableError as e:
            if name == AUTO_ORDER[-1]:
                raise
            # Listed but not startable (e.g. CUDA libraries missing): auto tries the next.
            log.warning("auto: %s is listed but did not start (%s); trying the next", name, e)
    raise BackendUnavailableError("no backend can run this model here")  # pragma: no cover
