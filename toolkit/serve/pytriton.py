"""Any edgetk Session as a Triton model, through PyTriton's bundled ``tritonserver``.

PyTriton starts a real Triton server (its Python backend) whose model forwards each dynamic
batch to a function in this process: the Session's ``infer``. Triton's dynamic batcher merges
the requests of several clients into one call. The model's config carries the edgetk spec as
the ``edgetk`` parameter, so ``--backend triton://host:8001/model`` needs no flags.

Two things about PyTriton 0.7 on this stack (docs/scale-out.md):

- The Python-backend stub is an embedded interpreter: it must load *this* interpreter's
  ``libpython3.X.so``, so its folder goes first on ``LD_LIBRARY_PATH`` of the server.
- The stub's pybind11 (2.10/2.11) predates numpy 2: an output tensor built from a numpy 2
  array arrives empty (0 bytes), and ``as_numpy()`` of an input gives the right shape over the
  wrong values. Under numpy 2 the proxy model PyTriton installs moves both through DLPack
  instead (:func:`_numpy2_proxy`), which is exact. The patch is
  applied to the files PyTriton sends to the server, never to the installed package.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.backends.base import Session
from toolkit.errors import BadInputError, MissingDependencyError, ToolkitError

log = logging.getLogger(__name__)

HINT = 'pip install "edgetk[serve]" (and nvidia-pytriton, see docs/scale-out.md)'
SPEC_PARAMETER = "edgetk"
_TENSOR_LINE = b"pb_utils.Tensor(name, value)"
_DLPACK_LINE = b"pb_utils.Tensor.from_dlpack(name, _edgetk_capsule(value))"
_INPUT_LINE = b"input_tensor.as_numpy()"
_INPUT_DLPACK = b"_edgetk_np.from_dlpack(input_tensor)"
_ANCHOR = b"def _wrap_response("
# Put before the proxy's _wrap_response: a DLPack capsule the stub can take without numpy's
# capsule destructor complaining (the stub renames a consumed capsule "used_dlpack", numpy
# expects "used_dltensor"): numpy's own capsule is marked used, and a bare one carries the
# pointer; the stub calls the DLManagedTensor's deleter when it is done, as DLPack says.
_CAPSULE_HELPER = b"""import ctypes as _ct

import numpy as _edgetk_np

_CAPI = _ct.pythonapi
_CAPI.PyCapsule_GetPointer.restype = _ct.c_void_p
_CAPI.PyCapsule_GetPointer.argtypes = [_ct.py_object, _ct.c_char_p]
_CAPI.PyCapsule_SetName.argtypes = [_ct.py_object, _ct.c_char_p]
_CAPI.PyCapsule_New.restype = _ct.py_object
_CAPI.PyCapsule_New.argtypes = [_ct.c_void_p, _ct.c_char_p, _ct.c_void_p]
_DLTENSOR = b"dltensor"
_USED = b"used_dltensor"


def _edgetk_capsule(value):
    cap = value.__dlpack__()
    ptr = _CAPI.PyCapsule_GetPointer(cap, _DLTENSOR)
    _CAPI.PyCapsule_SetName(cap, _USED)
    return _CAPI.PyCapsule_New(ptr, _DLTENSOR, None)


"""


@dataclass(frozen=True)
class ServeOptions:
    """Where and how the model is served.

    Attributes:
        name: the model's name on the server (``triton://host:port/<name>``).
        host: the address every endpoint binds (loopback by default).
        grpc_port, http_port, metrics_port: Triton's ports (metrics: Prometheus ``/metrics``).
        max_batch: Triton's ``max_batch_size`` (ignored for a fixed-batch model).
        queue_delay_us: how long the dynamic batcher waits to fill a batch.
        preferred: preferred batch sizes (default: none, Triton takes what is queued).
        log_file: where the server's own log goes (default: a file in the temp folder, so
            that ``--json`` stays one document on stdout).
    """

    name: str = "model"
    host: str = "127.0.0.1"
    grpc_port: int = 8001
    http_port: int = 8000
    metrics_port: int = 8002
    max_batch: int = 8
    queue_delay_us: int = 2000
    preferred: tuple[int, ...] | None = None
    log_file: Path | None = None


def import_pytriton() -> Any:
    try:
        import pytriton.triton as triton
    except ImportError as e:
        raise MissingDependencyError(f"nvidia-pytriton is not installed: {HINT}") from e
    return triton


def _numpy2_proxy(model: Any) -> None:
    """Make the proxy model PyTriton ships build its outputs through DLPack (numpy 2)."""
    if int(np.__version__.split(".")[0]) < 2:
        return
    original = model.get_proxy_model_files

    def patched() -> dict[str, bytes]:
        files = dict(original())
        key = next((k for k in files if k.endswith("/model.py")), None)
        needed = (_TENSOR_LINE, _INPUT_LINE, _ANCHOR)
        if key is None or not all(n in files[key] for n in needed):
            raise ToolkitError(
                "this nvidia-pytriton version is not the one edgetk adapts to numpy 2 "
                "(0.7.x): install nvidia-pytriton 0.7, or numpy < 2 in a separate environment"
            )
        text = files[key].replace(_TENSOR_LINE, _DLPACK_LINE).replace(_INPUT_LINE, _INPUT_DLPACK)
        files[key] = text.replace(_ANCHOR, _CAPSULE_HELPER + _ANCHOR, 1)
        return files

    model.get_proxy_model_files = patched


@contextlib.contextmanager
def _libpython_first() -> Iterator[None]:
    """The interpreter's lib folder first on LD_LIBRARY_PATH while the server starts."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    old = os.environ.get("LD_LIBRARY_PATH")
    parts = [p for p in (old or "").split(os.pathsep) if p]
    if libdir and libdir not in parts:
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([libdir, *parts])
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LD_LIBRARY_PATH", None)
        else:
            os.environ["LD_LIBRARY_PATH"] = old


def _tensors(session: Session, batched: bool) -> tuple[list[Any], list[Any]]:
    from pytriton.model_config import Tensor

    def one(t: Any) -> Any:
        dims = t.shape[1:] if batched else t.shape
        return Tensor(name=t.name, dtype=t.dtype.type, shape=tuple(d or -1 for d in dims))

    return [one(t) for t in session.inputs], [one(t) for t in session.outputs]


def _infer_fn(session: Session) -> Any:
    from pytriton.decorators import batch

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        return session.infer(inputs)

    return infer


def _security(triton_mod: Any, o: ServeOptions) -> Any:
    """PyTriton's token-protected endpoints, less shared memory on a loopback address.

    Shared memory only works between processes of one machine; on loopback, the clients that
    can reach the server are this machine's anyway, and they use it to skip the gRPC copies.
    """
    protected = list(triton_mod.DEFAULT_PROTECTED_ENDPOINTS)
    if o.host in ("127.0.0.1", "localhost", "::1"):
        protected = [e for e in protected if e != "shared-memory"]
    return triton_mod.TritonSecurityConfig(restricted_endpoints=protected)


class TritonServer:
    """A running PyTriton server with one model; stop it with :meth:`close` (or ``with``).

    Attributes:
        url: what clients pass as ``--backend`` (``triton://127.0.0.1:8001/model``).
    """

    def __init__(self, session: Session, options: ServeOptions) -> None:
        triton_mod = import_pytriton()
        from pytriton.model_config import DynamicBatcher, ModelConfig

        self.session, self.options = session, options
        batched = session.static_batch is None
        ins, outs = _tensors(session, batched)
        batcher = DynamicBatcher(
            max_queue_delay_microseconds=options.queue_delay_us,
            preferred_batch_size=list(options.preferred) if options.preferred else None,
        )
        config = ModelConfig(
            batching=batched, max_batch_size=options.max_batch if batched else 0, batcher=batcher
        )
        self._triton = triton_mod.Triton(
            config=self._config(triton_mod, options), security_config=_security(triton_mod, options)
        )
        self._triton.bind(
            model_name=options.name, infer_func=_infer_fn(session), inputs=ins, outputs=outs,
            config=config, strict=True,
        )  # fmt: skip
        model = self._model()
        model._get_triton_model_config().backend_parameters[SPEC_PARAMETER] = session.spec.to_json()
        _numpy2_proxy(model)
        try:
            with _libpython_first():
                self._triton.run()
        except Exception as e:
            self._triton.stop()
            raise ToolkitError(f"the Triton server did not start: {e}") from e
        self.url = f"triton://{options.host}:{options.grpc_port}/{options.name}"
        self.metrics_url = f"http://{options.host}:{options.metrics_port}/metrics"

    @staticmethod
    def _config(triton_mod: Any, o: ServeOptions) -> Any:
        return triton_mod.TritonConfig(
            grpc_address=o.host, grpc_port=o.grpc_port, http_address=o.host,
            http_port=o.http_port, metrics_address=o.host, metrics_port=o.metrics_port,
            exit_on_error=True, allow_sagemaker=False, allow_vertex_ai=False,
            log_file=o.log_file or Path(tempfile.gettempdir()) / f"edgetk-triton-{o.grpc_port}.log",
        )  # fmt: skip

    def _model(self) -> Any:
        models = list(self._triton._model_manager.models)
        if len(models) != 1:  # pragma: no cover - one bind above
            raise ToolkitError("PyTriton did not register the model")
        return models[0]

    def serve_forever(self) -> None:
        """Block until Ctrl-C or the server stops."""
        self._triton.serve()

    def close(self) -> None:
        self._triton.stop()

    def __enter__(self) -> TritonServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_triton(session: Session, options: ServeOptions | None = None) -> TritonServer:
    """Start a Triton server that serves ``session``; the caller owns both.

    Example:
        >>> with open_session("defects.onnx", "ort-cpu") as s, serve_triton(s) as server:
        ...     server.serve_forever()  # stations: --backend triton://127.0.0.1:8001/model
    """
    o = options or ServeOptions()
    if o.max_batch < 1:
        raise BadInputError(f"--max-batch must be >= 1, got {o.max_batch}")
    if len({o.grpc_port, o.http_port, o.metrics_port}) != 3:
        raise BadInputError("the gRPC, HTTP and metrics ports must differ")
    return TritonServer(session, o)
