"""The native ``tensorrt`` backend: a TensorRT engine behind the Session protocol.

- named I/O tensors (``num_io_tensors``, ``get_tensor_name/mode/dtype``), dynamic batch through
  ``set_input_shape`` within the engine's profile, output shapes from the context;
- device buffers (``cudaMalloc``) and pinned host buffers (``cudaMallocHost``) through
  cuda-python (no pycuda), reused across calls and grown only when a bigger batch comes;
- one non-default stream: H2D copies, ``execute_async_v3``, D2H copies, one synchronize;
- FP16 I/O: inputs are cast by :meth:`Session.infer` to the engine's dtype, fp16 outputs
  come back as float32 like every other backend's;
- timing in trtexec's words after each call (``last_timing``): ``latency_ms`` = H2D + GPU
  compute + D2H, ``gpu_compute_ms`` = the enqueued work alone (CUDA events);
- optional CUDA graph (``cuda_graph=True``): for a repeated shape the whole copy+compute
  sequence is captured once and replayed with one launch.

The engine's sidecar (``model.engine.json``) is checked before TensorRT sees the plan.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from toolkit.backends.base import Session, TensorInfo
from toolkit.backends.cuda_buffer import HostDeviceBuffer
from toolkit.errors import BackendUnavailableError, BadInputError, ToolkitError
from toolkit.model.spec import SpecOverrides
from toolkit.platform.gpu import (
    GpuIdentity,
    cuda_call,
    gpu_identity,
    import_cudart,
    import_tensorrt,
    no_gpu_message,
    trt_logger,
)

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "edgetk[tensorrt]"'
# (name, shape) of the engine's inputs or outputs; None: a dynamic axis.
_Shapes = list[tuple[str, tuple[int | None, ...]]]


def is_engine(model: str | Path) -> bool:
    """True for a TensorRT plan path (``.engine``, ``.plan``, ``.trt``)."""
    return Path(str(model)).suffix.lower() in (".engine", ".plan", ".trt")


def tensorrt_status() -> str | None:
    """None when the tensorrt backend can run here, else why not (cheap, never raises)."""
    try:
        import tensorrt  # noqa: F401
    except (ImportError, OSError):
        return f"tensorrt is not installed ({INSTALL_HINT})"
    try:
        from toolkit.platform.gpu import cuda_device_count

        import_cudart()
    except BadInputError:
        return f"cuda-python is not installed ({INSTALL_HINT})"
    if cuda_device_count() == 0:
        return "no CUDA device found (tensorrt is installed, the GPU or its driver is not usable)"
    return None


class TensorRTSession(Session):
    """A TensorRT engine (``.engine`` plan, with or without its sidecar).

    Args:
        path: the plan file; ``path.json`` (the sidecar) gives the spec and is checked
            against this machine's TensorRT and GPU.
        overrides: spec flags; they fill the gaps of an engine without a sidecar.
        device_id: the CUDA device.
        cuda_graph: capture copies + inference in a CUDA graph per input shape.

    Raises:
        MissingDependencyError: tensorrt or cuda-python is missing (names the extra).
        BadInputError: missing file, mismatched TensorRT/GPU, a plan TensorRT cannot load.
    """

    backend: ClassVar[str] = "tensorrt"

    def __init__(
        self,
        path: str | Path,
        *,
        overrides: SpecOverrides | None = None,
        device_id: int = 0,
        cuda_graph: bool = False,
    ) -> None:
        from toolkit.model.sidecar import read_sidecar

        self.path = Path(path)
        trt = import_tensorrt("the tensorrt backend")
        cudart = import_cudart("the tensorrt backend")
        if not self.path.is_file():
            raise BadInputError(f"engine file not found: {self.path}")
        self._trt, self._cudart = trt, cudart
        self.device_id = int(device_id)
        self.use_cuda_graph = bool(cuda_graph)
        self._stream: Any = None
        self._buffers: dict[str, HostDeviceBuffer] = {}
        cuda_call(cudart, cudart.cudaSetDevice(self.device_id))

        info = read_sidecar(self.path)
        self.gpu = self._check_machine(info)
        self._load_engine()
        ins, outs = self._read_io()
        self._settle_spec(info, ins, outs, overrides)  # before the stream is created
        self._stream = cuda_call(cudart, cudart.cudaStreamCreate())  # non-default stream
        self._events = [cuda_call(cudart, cudart.cudaEventCreate()) for _ in range(4)]
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._graph_exec: Any = None
        self._graph_key: tuple[Any, ...] | None = None
        self.last_timing: dict[str, float | None] = {}

    # -- construction ----------------------------------------------------------------------
    def _check_machine(self, info: Any) -> GpuIdentity:
        """This GPU; the sidecar (when there is one) must name this TensorRT and GPU."""
        from toolkit.model.sidecar import check_compatible

        gpu = gpu_identity(self.device_id)
        if info is not None:
            check_compatible(self.path, info, tensorrt=str(self._trt.__version__), gpu=gpu.name,
                             compute_capability=gpu.compute_capability)  # fmt: skip
        return gpu

    def _load_engine(self) -> None:
        """The runtime, the deserialized engine and its execution context."""
        trt = self._trt
        self._log = trt_logger(trt)
        try:
            self._runtime = trt.Runtime(self._log)
        except (RuntimeError, TypeError) as e:
            raise BackendUnavailableError(no_gpu_message(trt, self._log, e)) from e
        engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            detail = "; ".join(self._log.errors[-2:]) or "not a TensorRT plan for this version"
            raise BadInputError(
                f"TensorRT {trt.__version__} cannot load {self.path.name}: {detail}"
            )
        self._engine = engine
        self._ctx = engine.create_execution_context()
        if self._ctx is None:
            raise ToolkitError(f"TensorRT could not create an execution context for {self.path}")

    def _read_io(self) -> tuple[_Shapes, _Shapes]:
        """The engine's named inputs and outputs (None: a dynamic axis), their dtypes,
        buffers and the profile of each dynamic input."""
        engine, trt = self._engine, self._trt
        self._in_names: list[str] = []
        self._out_names: list[str] = []
        self._dtypes: dict[str, np.dtype] = {}
        ins: _Shapes = []
        outs: _Shapes = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            shape = tuple(None if d < 0 else int(d) for d in engine.get_tensor_shape(name))
            self._dtypes[name] = dtype
            self._buffers[name] = HostDeviceBuffer(self._cudart, dtype)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self._in_names.append(name)
                ins.append((name, shape))
            else:
                self._out_names.append(name)
                outs.append((name, shape))
        self._profiles = {
            n: tuple(tuple(int(d) for d in s) for s in engine.get_tensor_profile_shape(n, 0))
            for n, shape in ins
            if None in shape
        }
        self.inputs = [TensorInfo(n, s, self._dtypes[n]) for n, s in ins]
        # fp16 outputs are handed back as float32, as the other backends do.
        self.outputs = [TensorInfo(n, s, self._out_dtype(n)) for n, s in outs]
        return ins, outs

    def _settle_spec(
        self, info: Any, ins: _Shapes, outs: _Shapes, overrides: SpecOverrides | None
    ) -> None:
        """The spec and precision: the sidecar's, else what the engine's I/O tells."""
        from toolkit.model.modelfile import check_override_labels
        from toolkit.model.sidecar import spec_from_engine_io

        if info is not None:
            self.spec = overrides.apply(info.spec) if overrides is not None else info.spec
            self.precision = info.precision
        else:
            fp16_io = any(d == np.float16 for d in self._dtypes.values())
            self.precision = "fp16" if fp16_io else "unknown"
            self.spec = spec_from_engine_io(ins, outs, overrides, precision=self.precision)
        check_override_labels(self.spec, outs, overrides)

    # -- properties ------------------------------------------------------------------------
    @property
    def device(self) -> str:  # type: ignore[override]
        return f"cuda:{self.device_id}"

    @property
    def max_batch(self) -> int | None:
        """The profile's largest batch (a static batch otherwise)."""
        first = self.inputs[0].name
        if first in self._profiles:
            return self._profiles[first][2][0]
        return self.inputs[0].shape[0]

    def _out_dtype(self, name: str) -> np.dtype:
        dt = self._dtypes[name]
        return np.dtype(np.float32) if dt == np.float16 else dt

    # -- running ---------------------------------------------------------------------------
    def _set_shapes(self, inputs: dict[str, np.ndarray]) -> bool:
        """Apply new input shapes to the context; True when any changed."""
        changed = False
        for name, arr in inputs.items():
            if self._shapes.get(name) == arr.shape:
                continue
            if name in self._profiles:
                lo, _, hi = self._profiles[name]
                if any(not a <= d <= b for d, a, b in zip(arr.shape, lo, hi, strict=True)):
                    raise BadInputError(
                        f"input '{name}' shape {list(arr.shape)} is outside the engine's profile "
                        f"{list(lo)}..{list(hi)}: rebuild with a larger --max-batch"
                    )
            if not self._ctx.set_input_shape(name, tuple(int(d) for d in arr.shape)):
                raise BadInputError(f"TensorRT rejected shape {list(arr.shape)} for '{name}'")
            self._shapes[name] = arr.shape
            changed = True
        return changed

    def _bind(self, name: str, shape: tuple[int, ...]) -> bool:
        nbytes = int(np.prod(shape)) * self._dtypes[name].itemsize
        buf = self._buffers[name]
        moved = buf.ensure(nbytes)
        if moved and not self._ctx.set_tensor_address(name, buf.device):
            raise ToolkitError(f"TensorRT rejected the buffer of '{name}'")
        return moved

    def _enqueue(self, shapes: dict[str, tuple[int, ...]], timed: bool) -> None:
        """Copies in, inference, copies out, on the stream (captured in graph mode)."""
        cudart, stream = self._cudart, self._stream
        ev = self._events
        if timed:
            cuda_call(cudart, cudart.cudaEventRecord(ev[0], stream))
        self._copy(self._in_names, shapes, to_device=True)
        if timed:
            cuda_call(cudart, cudart.cudaEventRecord(ev[1], stream))
        if not self._ctx.execute_async_v3(int(stream)):
            raise ToolkitError(f"TensorRT inference failed: {'; '.join(self._log.errors[-2:])}")
        if timed:
            cuda_call(cudart, cudart.cudaEventRecord(ev[2], stream))
        self._copy(self._out_names, shapes, to_device=False)
        if timed:
            cuda_call(cudart, cudart.cudaEventRecord(ev[3], stream))

    def _copy(self, names: list[str], shapes: dict[str, tuple[int, ...]], to_device: bool) -> None:
        """Asynchronous copies of the ``names`` buffers, host to device or back, on the stream."""
        cudart = self._cudart
        kinds = cudart.cudaMemcpyKind
        kind = kinds.cudaMemcpyHostToDevice if to_device else kinds.cudaMemcpyDeviceToHost
        for name in names:
            b = self._buffers[name]
            n = int(np.prod(shapes[name])) * b.dtype.itemsize
            dst, src = (b.device, b.host) if to_device else (b.host, b.device)
            cuda_call(cudart, cudart.cudaMemcpyAsync(dst, src, n, kind, self._stream))

    def _capture(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Record the whole sequence as a CUDA graph (after one plain run of this shape)."""
        cudart = self._cudart
        self._drop_graph()
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        cuda_call(cudart, cudart.cudaStreamBeginCapture(self._stream, mode))
        try:
            self._enqueue(shapes, timed=False)
        finally:
            graph = cuda_call(cudart, cudart.cudaStreamEndCapture(self._stream))
        self._graph_exec = cuda_call(cudart, cudart.cudaGraphInstantiate(graph, 0))
        cudart.cudaGraphDestroy(graph)

    def _drop_graph(self) -> None:
        if self._graph_exec is not None:
            self._cudart.cudaGraphExecDestroy(self._graph_exec)
        self._graph_exec = None
        self._graph_key = None

    def _elapsed(self, a: int, b: int) -> float:
        ev = self._events
        return float(cuda_call(self._cudart, self._cudart.cudaEventElapsedTime(ev[a], ev[b])))

    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart = self._cudart
        changed = self._set_shapes(inputs)
        shapes: dict[str, tuple[int, ...]] = {n: tuple(inputs[n].shape) for n in self._in_names}
        moved = False
        for name in self._in_names:
            moved |= self._bind(name, shapes[name])
        for name in self._out_names:
            shape = tuple(int(d) for d in self._ctx.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise ToolkitError(
                    f"output '{name}' has a data-dependent shape {list(shape)}; engines with "
                    "such outputs (e.g. NMS plugins) are not supported by this backend"
                )
            shapes[name] = shape
            moved |= self._bind(name, shape)
        for name in self._in_names:
            self._buffers[name].host_array(shapes[name])[...] = inputs[name]

        key = tuple(shapes[n] for n in self._in_names)
        if self.use_cuda_graph and (changed or moved or self._graph_key != key):
            self._drop_graph()
        if self.use_cuda_graph and self._graph_exec is None and not changed and not moved:
            self._capture(shapes)  # this shape already ran once: TensorRT is initialized
            self._graph_key = key
        if self._graph_exec is not None:
            ev = self._events
            cuda_call(cudart, cudart.cudaEventRecord(ev[0], self._stream))
            cuda_call(cudart, cudart.cudaGraphLaunch(self._graph_exec, self._stream))
            cuda_call(cudart, cudart.cudaEventRecord(ev[3], self._stream))
            cuda_call(cudart, cudart.cudaStreamSynchronize(self._stream))
            self.last_timing = {"latency_ms": self._elapsed(0, 3), "gpu_compute_ms": None,
                                "h2d_ms": None, "d2h_ms": None, "cuda_graph": True}  # fmt: skip
        else:
            self._enqueue(shapes, timed=True)
            cuda_call(cudart, cudart.cudaStreamSynchronize(self._stream))
            self.last_timing = {
                "latency_ms": self._elapsed(0, 3),
                "h2d_ms": self._elapsed(0, 1),
                "gpu_compute_ms": self._elapsed(1, 2),
                "d2h_ms": self._elapsed(2, 3),
            }
        out: dict[str, np.ndarray] = {}
        for name in self._out_names:
            host = self._buffers[name].host_array(shapes[name])
            # a copy: the pinned buffer is overwritten by the next call
            out[name] = host.astype(self._out_dtype(name), copy=True)
        return out

    def _close(self) -> None:
        cudart = self._cudart
        self._drop_graph()
        for b in self._buffers.values():
            b.free()
        for e in getattr(self, "_events", []):
            cudart.cudaEventDestroy(e)
        if self._stream is not None:
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None
        # context before engine before runtime: TensorRT's destruction order
        self._ctx = None
        self._engine = None
        self._runtime = None

    def describe(self) -> dict[str, object]:
        """Backend, device, precision, TensorRT version, GPU, profile, CUDA graph use."""
        info = super().describe()
        info.update(
            model=str(self.path),
            tensorrt=str(self._trt.__version__),
            gpu=self.gpu.name,
            compute_capability=self.gpu.compute_capability,
            profile={n: [list(s) for s in p] for n, p in self._profiles.items()},
            cuda_graph=self.use_cuda_graph,
        )
        return info


def open_tensorrt(path: str | Path, *, overrides: SpecOverrides | None = None) -> TensorRTSession:
    """Open an engine in the tensorrt backend; refuse an ONNX file with how to build one."""
    if not is_engine(path):
        raise BackendUnavailableError(
            f"the tensorrt backend runs TensorRT engines; build one first: "
            f"edgetk build {path} -o {Path(str(path)).with_suffix('.engine').name}"
        )
    return TensorRTSession(path, overrides=overrides)
