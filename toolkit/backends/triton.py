"""``triton://host:port/model``: a model on a Triton server, through gRPC (``tritonclient``).

The session reads everything from the server: inputs, outputs and ``max_batch_size`` from the
model's metadata and config, the edgetk spec from the config's ``edgetk`` parameter (written by
``edgetk export-triton`` and ``edgetk serve``), so a station needs no flags. A batch larger
than the server's ``max_batch_size`` is sent in chunks. When the server is on this machine
(loopback), tensors travel through system shared memory, not the gRPC message: one copy
into the region, none through protobuf.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from toolkit.backends.base import Session, TensorInfo
from toolkit.backends.ort_options import first_line
from toolkit.errors import BackendUnavailableError, BadInputError, ToolkitError
from toolkit.model.spec import ModelSpec, SpecOverrides

log = logging.getLogger(__name__)

HINT = 'pip install "edgetk[serve]"'
SPEC_PARAMETER = "edgetk"
DEFAULT_PORT = 8001
_URL = re.compile(r"^triton://(?P<host>\[[^\]]+\]|[^:/]+)(?::(?P<port>\d+))?/(?P<model>[^/]+)"
                  r"(?:/(?P<version>\d+))?/?$")  # fmt: skip
_LOCAL = ("localhost", "127.0.0.1", "[::1]")
_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TritonUrl:
    host: str
    port: int
    model: str
    version: str = ""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def local(self) -> bool:
        return self.host.lower() in _LOCAL


def parse_url(url: str) -> TritonUrl:
    """``triton://host[:port]/model[/version]`` (port default 8001, Triton's gRPC port)."""
    m = _URL.match(url.strip())
    if m is None:
        raise BadInputError(f"bad Triton backend '{url}' (expected triton://host:port/model)")
    port = int(m.group("port") or DEFAULT_PORT)
    return TritonUrl(m.group("host"), port, m.group("model"), m.group("version") or "")


def import_grpc_client() -> Any:
    try:
        import tritonclient.grpc as grpcclient
    except ImportError as e:
        raise BackendUnavailableError(f"tritonclient[grpc] is not installed: {HINT}") from e
    return grpcclient


def triton_status() -> str | None:
    """None when the triton client can be used here (the server is checked on open)."""
    try:
        import_grpc_client()
    except BackendUnavailableError as e:
        return str(e)
    return None


def _spec_from_config(config: Any, url: str, overrides: SpecOverrides | None) -> ModelSpec:
    param = config.parameters.get(SPEC_PARAMETER) if config.parameters else None
    if param is None or not param.string_value:
        raise BadInputError(
            f"{url}: the model's config has no '{SPEC_PARAMETER}' parameter (serve it with "
            "edgetk export-triton or edgetk serve, which record the spec)"
        )
    spec = ModelSpec.from_json(param.string_value)
    return spec if overrides is None else overrides.apply(spec)


class TritonSession(Session):
    """A client of one model on a Triton server (gRPC).

    Args:
        url: ``triton://host:port/model[/version]``.
        overrides: command-line spec values applied on top of the server's spec.
        shared_memory: pass tensors through system shared memory; None (default): when the
            server is on this machine.
    """

    backend: ClassVar[str] = "triton"

    def __init__(
        self, url: str, *, overrides: SpecOverrides | None = None,
        shared_memory: bool | None = None,
    ) -> None:  # fmt: skip
        grpc = import_grpc_client()
        from tritonclient.utils import InferenceServerException

        self._grpc, self._error = grpc, InferenceServerException
        self.url = parse_url(url)
        self._shm: _SharedMemory | None = None
        try:
            self._client = grpc.InferenceServerClient(self.url.address)
            ready = self._client.is_model_ready(self.url.model, self.url.version)
        except InferenceServerException as e:
            raise BackendUnavailableError(
                f"{url}: Triton server not reachable at {self.url.address}: {first_line(e)}"
            ) from e
        if not ready:
            raise BackendUnavailableError(f"{url}: model '{self.url.model}' is not ready there")
        meta = self._client.get_model_metadata(self.url.model, self.url.version)
        config = self._client.get_model_config(self.url.model, self.url.version).config
        self.spec = _spec_from_config(config, url, overrides)
        self.precision = self.spec.precision
        self.server_max_batch = int(config.max_batch_size)
        self.inputs = [self._info(t) for t in meta.inputs]
        self.outputs = [self._info(t) for t in meta.outputs]
        self._datatypes = {t.name: t.datatype for t in (*meta.inputs, *meta.outputs)}
        self.shared_memory = self.url.local if shared_memory is None else shared_memory
        if self.shared_memory:
            self._shm = self._open_shared_memory()
            self.shared_memory = self._shm is not None

    def _open_shared_memory(self) -> _SharedMemory | None:
        """Shared memory regions, or None when the server refuses them (then plain gRPC)."""
        shm = _SharedMemory(self._client, self._datatypes)
        try:
            shm.probe()
        except self._error as e:
            log.info("%s: no shared memory (%s); tensors go in the gRPC messages",
                     self.url.address, first_line(e))  # fmt: skip
            shm.close()
            return None
        return shm

    @staticmethod
    def _info(t: Any) -> TensorInfo:
        from tritonclient.utils import triton_to_np_dtype

        dtype = triton_to_np_dtype(t.datatype)
        if dtype is None or np.dtype(dtype).kind not in "biuf":
            raise BadInputError(f"tensor '{t.name}' has type {t.datatype}: not a numeric tensor")
        shape = tuple(int(d) if int(d) > 0 else None for d in t.shape)
        return TensorInfo(name=t.name, shape=shape, dtype=np.dtype(dtype))

    @property
    def device(self) -> str:  # type: ignore[override]
        return f"triton:{self.url.address}"

    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = next(iter(inputs.values())).shape[0]
        step = self.server_max_batch
        if step <= 0 or batch <= step:
            return self._call(inputs)
        parts = [self._call({k: v[i : i + step] for k, v in inputs.items()})
                 for i in range(0, batch, step)]  # fmt: skip
        return {t.name: np.concatenate([p[t.name] for p in parts]) for t in self.outputs}

    def _call(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._shm is not None:
            shapes = self._output_shapes(inputs)
            if shapes is not None:
                try:
                    return self._shm.infer(self.url, inputs, shapes)
                except self._error as e:
                    raise ToolkitError(f"triton inference failed: {first_line(e)}") from e
        grpc = self._grpc
        fed = []
        for name, arr in inputs.items():
            t = grpc.InferInput(name, list(arr.shape), self._datatypes[name])
            t.set_data_from_numpy(arr)
            fed.append(t)
        wanted = [grpc.InferRequestedOutput(t.name) for t in self.outputs]
        try:
            res = self._client.infer(self.url.model, fed, self.url.version, outputs=wanted)
        except self._error as e:
            raise ToolkitError(f"triton inference failed: {first_line(e)}") from e
        return {t.name: res.as_numpy(t.name) for t in self.outputs}

    def _output_shapes(self, inputs: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]] | None:
        """Output shapes for this batch, None when a non-batch axis is dynamic."""
        batch = next(iter(inputs.values())).shape[0]
        shapes = {}
        for t in self.outputs:
            dims = list(t.shape)
            if self.server_max_batch > 0 and dims:
                dims[0] = batch
            if any(d is None for d in dims):
                return None
            shapes[t.name] = tuple(int(d) for d in dims)  # type: ignore[arg-type]
        return shapes

    def _close(self) -> None:
        if self._shm is not None:
            self._shm.close()
        with contextlib.suppress(self._error):  # a server gone at exit
            self._client.close()

    def describe(self) -> dict[str, object]:
        """Backend, server, model, max batch, whether shared memory is used."""
        info = super().describe()
        info.update(
            server=self.url.address,
            model=self.url.model,
            server_max_batch=self.server_max_batch,
            shared_memory=self.shared_memory,
        )
        return info


class _SharedMemory:
    """One input and one output region of system shared memory, grown when a call needs it."""

    def __init__(self, client: Any, datatypes: dict[str, str]) -> None:
        import tritonclient.utils.shared_memory as shm

        self._shm, self._client, self._datatypes = shm, client, datatypes
        self._tag = f"edgetk_{os.getpid()}_{id(self):x}"
        self._regions: dict[str, tuple[Any, int]] = {}

    def _region(self, kind: str, size: int) -> Any:
        have = self._regions.get(kind)
        if have is not None and have[1] >= size:
            return have[0]
        if have is not None:
            self._drop(kind)
        name = f"{self._tag}_{kind}"
        handle = self._shm.create_shared_memory_region(name, f"/{name}", size)
        self._client.register_system_shared_memory(name, f"/{name}", size)
        self._regions[kind] = (handle, size)
        return handle

    def probe(self) -> None:
        """Register a small region: raises when the server restricts shared memory."""
        self._region("in", 1 << 16)

    def infer(
        self, url: TritonUrl, inputs: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]
    ) -> dict[str, np.ndarray]:
        from tritonclient import grpc

        arrays = list(inputs.items())
        in_h = self._region("in", sum(a.nbytes for _, a in arrays))
        self._shm.set_shared_memory_region(in_h, [a for _, a in arrays])
        fed, offset = [], 0
        for name, arr in arrays:
            t = grpc.InferInput(name, list(arr.shape), self._datatypes[name])
            t.set_shared_memory(f"{self._tag}_in", arr.nbytes, offset)
            fed.append(t)
            offset += arr.nbytes
        sizes = {n: int(np.prod(s)) * _itemsize(self._datatypes[n]) for n, s in shapes.items()}
        out_h = self._region("out", sum(sizes.values()))
        wanted, offsets, offset = [], {}, 0
        for name, size in sizes.items():
            o = grpc.InferRequestedOutput(name)
            o.set_shared_memory(f"{self._tag}_out", size, offset)
            wanted.append(o)
            offsets[name] = offset
            offset += size
        self._client.infer(url.model, fed, url.version, outputs=wanted)
        return {
            n: self._shm.get_contents_as_numpy(
                out_h, _np_dtype(self._datatypes[n]), s, offsets[n]
            ).copy()
            for n, s in shapes.items()
        }

    def _drop(self, kind: str) -> None:
        handle, _ = self._regions.pop(kind)
        try:
            self._client.unregister_system_shared_memory(f"{self._tag}_{kind}")
        finally:
            self._shm.destroy_shared_memory_region(handle)

    def close(self) -> None:
        for kind in list(self._regions):
            try:
                self._drop(kind)
            except Exception as e:
                log.debug("shared memory %s: %s", kind, e)


def _np_dtype(datatype: str) -> np.dtype:
    from tritonclient.utils import triton_to_np_dtype

    return np.dtype(triton_to_np_dtype(datatype))


def _itemsize(datatype: str) -> int:
    return _np_dtype(datatype).itemsize
