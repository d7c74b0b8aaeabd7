"""ONNX Runtime sessions: ``ort-cpu``, ``ort-cuda`` and ``ort-trt``.

Every session is set up by :mod:`toolkit.backends.ort_options` (the CPU settings, and the
emulation of a ``--target tensorrt`` int8 file on ``ort-cpu``).

GPU providers follow docs/tensorrt.md: precision lives in the ONNX file (so ``trt_fp16_enable``
stays off), the TensorRT engine and timing caches live in a folder beside the model, and the
optimization profile comes from the model's input shape. ONNX Runtime silently falls back to
the CPU when a provider fails to start; the providers the session really got are checked, and
a miss is an error.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from toolkit.backends.base import Session, TensorInfo, session_threads
from toolkit.backends.ort_options import (
    EMULATED_TRT,
    MODEL_ERRORS,
    RUN_ERRORS,
    first_line,
    import_ort,
    is_trt_int8,
    new_session,
    ort_errors,
    session_options,
    spin_wait,
)
from toolkit.errors import BackendUnavailableError, BadInputError, ToolkitError
from toolkit.model.spec import ModelSpec, SpecOverrides

log = logging.getLogger(__name__)

GPU_HINT = 'pip install "edgetk[gpu]"'
# The largest batch a TensorRT optimization profile covers when the model's batch is dynamic.
DEFAULT_MAX_BATCH = 32

# ONNX type strings (``NodeArg.type``) -> numpy dtypes.
_ORT_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(uint16)": np.uint16,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


def ort_status(backend: str) -> str | None:
    """None when ``backend`` (ort-cpu/ort-cuda/ort-trt) can be asked for here, else why not."""
    try:
        ort = import_ort()
    except BackendUnavailableError as e:
        return str(e)
    provider = _SESSION_CLASSES[backend].provider
    available = ort.get_available_providers()
    if provider in available:
        return None
    return _missing_provider(backend, provider, available)


def _missing_provider(backend: str, provider: str, available: list[str]) -> str:
    what = "onnxruntime-gpu and an NVIDIA GPU"
    if backend == "ort-trt":
        what = "onnxruntime-gpu built with TensorRT, TensorRT and an NVIDIA GPU"
    return (
        f"{backend} needs {what}: {GPU_HINT} "
        f"({provider} missing; available providers: {', '.join(available)})"
    )


class OrtSession(Session):
    """An ONNX model in ONNX Runtime on the CPU (subclasses add the GPU providers).

    Args:
        path: the ``.onnx`` file (its external ``.onnx.data`` is found beside it).
        overrides: command-line spec values (fill the gaps of a foreign model).
        threads: intra-op threads; default: the physical cores this process may use.
        spinning: let idle ORT threads spin; default
            :func:`~toolkit.backends.ort_options.spin_wait` (off, for the live loop and the
            benchmark alike).
        device_id: the CUDA device (GPU providers only).
        opt_batch: the batch TensorRT optimizes for (ort-trt only; default 1).
        max_batch: the largest batch of the TensorRT profile (ort-trt only).
        emulate: run each Q/DQ pair as float (ort-cpu only). None (the default): for a
            ``--target tensorrt`` int8 file, so that it computes what TensorRT computes;
            False: ONNX Runtime's fused int8 kernels (what this CPU's int8 really gives).

    ``emulated`` says what the session emulates (:data:`EMULATED_TRT`), or is None.
    """

    backend: ClassVar[str] = "ort-cpu"
    provider: ClassVar[str] = "CPUExecutionProvider"

    def __init__(
        self,
        path: str | Path,
        *,
        overrides: SpecOverrides | None = None,
        threads: int | None = None,
        spinning: bool | None = None,
        device_id: int = 0,
        opt_batch: int | None = None,
        max_batch: int | None = None,
        emulate: bool | None = None,
    ) -> None:
        from toolkit.model.modelfile import read_spec

        ort = import_ort()
        self.path = Path(path)
        self.spec = read_spec(self.path, overrides)  # one-line errors for missing/corrupt files
        self.precision = self.spec.precision
        self.threads = session_threads(threads)
        self.spinning = spin_wait(spinning)
        self.device_id = device_id
        self._opt_batch = opt_batch
        self._max_batch = max_batch
        self.emulated = self._emulation(emulate)

        available = ort.get_available_providers()
        if self.provider not in available:
            raise BackendUnavailableError(_missing_provider(self.backend, self.provider, available))
        self._sess = self._create(ort)
        self._check_providers()

        self.inputs = [self._info(a) for a in self._sess.get_inputs()]
        self.outputs = [self._info(a) for a in self._sess.get_outputs()]
        self._output_names = [o.name for o in self.outputs]
        self._check_spec_fits()
        self._run_errors = ort_errors(*RUN_ERRORS)
        self._bad_input = ort_errors("InvalidArgument")

    # -- construction ----------------------------------------------------------------------
    def _emulation(self, emulate: bool | None) -> str | None:
        """What this CPU session emulates: TensorRT's int8 for a tensorrt-target file."""
        on = is_trt_int8(self.spec) if emulate is None else emulate
        return EMULATED_TRT if on else None

    def _session_options(self, ort: Any) -> Any:
        return session_options(
            ort, threads=self.threads, spinning=self.spinning, emulate=self.emulated is not None
        )

    def _providers(self) -> list[Any]:
        return ["CPUExecutionProvider"]

    def _create(self, ort: Any) -> Any:
        so = self._session_options(ort)
        try:
            return new_session(ort, str(self.path), so, self._providers())
        except ort_errors(*MODEL_ERRORS) as e:
            raise BadInputError(f"ONNX Runtime cannot load {self.path}: {first_line(e)}") from e
        except (*ort_errors("Fail", "EPFail", "RuntimeException", "InvalidArgument"),
                RuntimeError, ValueError) as e:  # fmt: skip
            if self.provider == "CPUExecutionProvider":
                raise BadInputError(f"ONNX Runtime cannot load {self.path}: {first_line(e)}") from e
            raise BackendUnavailableError(
                f"{self.backend}: ONNX Runtime could not start {self.provider}: {first_line(e)}"
            ) from e

    def _check_providers(self) -> None:
        used = list(self._sess.get_providers())
        if not used or used[0] != self.provider:
            raise BackendUnavailableError(
                f"{self.backend}: ONNX Runtime did not enable {self.provider} (session got "
                f"{', '.join(used) or 'no providers'}); check the CUDA/cuDNN/TensorRT libraries, "
                "run with --verbose for ONNX Runtime's message"
            )
        self.providers = used

    @staticmethod
    def _info(arg: Any) -> TensorInfo:
        dtype = _ORT_DTYPES.get(arg.type)
        if dtype is None:
            raise BadInputError(f"unsupported tensor type {arg.type} for '{arg.name}'")
        shape = tuple(d if isinstance(d, int) and d > 0 else None for d in arg.shape)
        return TensorInfo(name=arg.name, shape=shape, dtype=np.dtype(dtype))

    def _check_spec_fits(self) -> None:
        """A static image size in the graph must agree with the spec (e.g. after --imgsz)."""
        first = next((t for t in self.inputs if t.name == self.spec.input.name), None)
        if first is None or len(first.shape) != 4:
            return
        for axis, what in ((1, "channels"), (2, "height"), (3, "width")):
            graph, spec = first.shape[axis], self.spec.input.shape[axis]
            if graph is not None and spec is not None and graph != spec:
                raise BadInputError(
                    f"the model's input '{first.name}' has {what} {graph}, the given spec says "
                    f"{spec} (shape {list(first.shape)}; check --imgsz / --channels)"
                )

    # -- running ---------------------------------------------------------------------------
    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            outs = self._sess.run(self._output_names, inputs)
        except self._bad_input as e:
            raise BadInputError(f"ONNX Runtime rejected the input: {first_line(e)}") from e
        except self._run_errors as e:
            raise ToolkitError(f"{self.backend} inference failed: {first_line(e)}") from e
        return dict(zip(self._output_names, outs, strict=True))

    def _close(self) -> None:
        # ORT frees the session (and its GPU memory) when the last reference goes.
        del self._sess

    def describe(self) -> dict[str, object]:
        """Backend, device, precision, the providers really in use, threads and spinning."""
        info = super().describe()
        info.update(
            providers=list(self.providers),
            threads=self.threads,
            spinning=self.spinning,
            model=str(self.path),
            emulated=self.emulated,
        )
        return info


class OrtCudaSession(OrtSession):
    """ONNX Runtime with the CUDA execution provider (CPU only for ops CUDA lacks)."""

    backend: ClassVar[str] = "ort-cuda"
    provider: ClassVar[str] = "CUDAExecutionProvider"

    @property
    def device(self) -> str:  # type: ignore[override]
        return f"cuda:{self.device_id}"

    def _emulation(self, emulate: bool | None) -> str | None:
        # On the GPU the int8 file runs for real (TensorRT, or CUDA's own kernels).
        if emulate:
            raise BadInputError(f"{self.backend} runs int8 for real: only ort-cpu emulates")
        return None

    def _cuda_options(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            # HEURISTIC picks cuDNN conv algorithms without timing every one at the first
            # run of each shape (EXHAUSTIVE, the default, makes the first frames very slow).
            "cudnn_conv_algo_search": "HEURISTIC",
            "arena_extend_strategy": "kSameAsRequested",
        }

    def _providers(self) -> list[Any]:
        return [("CUDAExecutionProvider", self._cuda_options()), "CPUExecutionProvider"]


class OrtTrtSession(OrtCudaSession):
    """ONNX Runtime with the TensorRT execution provider (CUDA, then CPU, for the rest).

    The first run builds a TensorRT engine (seconds to minutes); it is cached in
    ``<model>.trt_cache/`` beside the model, with the timing cache, and reused when the model
    and the profile are unchanged.
    """

    backend: ClassVar[str] = "ort-trt"
    provider: ClassVar[str] = "TensorrtExecutionProvider"

    def _providers(self) -> list[Any]:
        cache = str(self._cache_dir())
        trt: dict[str, Any] = {
            "device_id": self.device_id,
            # Precision lives in the ONNX file (fp16 weights, or int8 QDQ nodes): never let
            # TensorRT lower an fp32 model behind the user's back.
            "trt_fp16_enable": False,
            "trt_int8_enable": False,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": cache,
        }
        trt.update(self._profile_shapes())
        return [
            ("TensorrtExecutionProvider", trt),
            ("CUDAExecutionProvider", self._cuda_options()),
            "CPUExecutionProvider",
        ]

    def _cache_dir(self) -> Path:
        """``<model>.trt_cache`` beside the model; a user cache folder if that is read-only."""
        here = self.path.with_name(f"{self.path.stem}.trt_cache")
        try:
            here.mkdir(parents=True, exist_ok=True)
            return here
        except OSError:
            key = hashlib.sha1(str(self.path.resolve()).encode()).hexdigest()[:10]
            there = Path.home() / ".cache" / "edgetk" / "trt" / f"{self.path.stem}-{key}"
            there.mkdir(parents=True, exist_ok=True)
            return there

    def _profile_shapes(self) -> dict[str, str]:
        from toolkit.model.modelfile import graph_io, load_onnx

        ins, _ = graph_io(load_onnx(self.path, load_weights=False))
        return trt_profile_shapes(
            ins,
            self.spec,
            opt_batch=self._opt_batch or 1,
            max_batch=self._max_batch or DEFAULT_MAX_BATCH,
        )


def trt_profile_shapes(
    inputs: list[tuple[str, tuple[int | None, ...]]],
    spec: ModelSpec,
    *,
    opt_batch: int = 1,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> dict[str, str]:
    """TensorRT EP ``trt_profile_{min,opt,max}_shapes`` for graph inputs with dynamic axes.

    The batch axis spans 1..max_batch (optimized for ``opt_batch``); other dynamic axes take
    the spec's size (``--imgsz``). Empty when nothing is dynamic, or when an axis other than
    the batch is unknown: TensorRT then builds a profile from the first shape it sees.

    Example:
        >>> trt_profile_shapes([("images", (None, 3, 224, 224))], spec, opt_batch=8)
        {'trt_profile_min_shapes': 'images:1x3x224x224', 'trt_profile_opt_shapes':
         'images:8x3x224x224', 'trt_profile_max_shapes': 'images:32x3x224x224'}
    """
    if all(None not in shape for _, shape in inputs):
        return {}
    lo, opt, hi = [], [], []
    for name, shape in inputs:
        dims = list(shape)
        if name == spec.input.name and len(dims) == len(spec.input.shape):
            dims = [g if g is not None else s for g, s in zip(dims, spec.input.shape, strict=True)]
        if any(d is None for d in dims[1:]):
            log.info("no TensorRT profile: '%s' has dynamic axes %s", name, list(shape))
            return {}
        rest = "x".join(str(d) for d in dims[1:])
        if dims[0] is not None:  # a static batch: one shape
            b_lo = b_opt = b_hi = dims[0]
        else:
            b_lo, b_hi = 1, max(1, max_batch)
            b_opt = min(max(1, opt_batch), b_hi)
        lo.append(f"{name}:{b_lo}x{rest}")
        opt.append(f"{name}:{b_opt}x{rest}")
        hi.append(f"{name}:{b_hi}x{rest}")
    return {
        "trt_profile_min_shapes": ",".join(lo),
        "trt_profile_opt_shapes": ",".join(opt),
        "trt_profile_max_shapes": ",".join(hi),
    }


_SESSION_CLASSES: dict[str, type[OrtSession]] = {
    "ort-cpu": OrtSession,
    "ort-cuda": OrtCudaSession,
    "ort-trt": OrtTrtSession,
}


def open_ort(backend: str, path: str | Path, **kwargs: Any) -> OrtSession:
    """Open ``path`` with the ONNX Runtime backend named ``backend``."""
    return _SESSION_CLASSES[backend](path, **kwargs)
