"""The Session protocol: one object per loaded model and runtime.

The public :meth:`Session.infer` validates names, dtypes and shapes; each backend implements
only ``_infer`` (Polygraphy's runner pattern), so backends stay small.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from toolkit.errors import BadInputError
from toolkit.model.spec import ModelSpec
from toolkit.platform.cpu import default_threads


def session_threads(threads: int | None) -> int:
    """``--threads`` for a CPU session: default the physical cores this process may use."""
    n = default_threads() if threads is None else int(threads)
    if n < 1:
        raise BadInputError(f"--threads must be >= 1, got {threads}")
    return n


@dataclass(frozen=True)
class TensorInfo:
    """A named input or output: shape (``None`` for a dynamic axis) and numpy dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype


class Session(ABC):
    """A model loaded in one runtime.

    Subclasses set ``backend`` and ``precision``, fill ``spec``, ``inputs`` and ``outputs``
    in ``__init__``, and implement ``_infer`` and ``_close``.

    Example:
        >>> with open_session("r18.onnx", backend="ort-cpu") as s:
        ...     out = s.infer({s.inputs[0].name: x})
    """

    backend: ClassVar[str] = ""
    spec: ModelSpec
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    device: str = "cpu"
    precision: str = "fp32"
    # What the session computes instead of running ``precision`` natively (e.g. "TensorRT int8
    # semantics on CPU"): its outputs are the target's, its latency is not. None: native.
    emulated: str | None = None
    _closed: bool = False

    def infer(self, inputs: dict[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        """Run the model. A bare array is taken as the first input."""
        if self._closed:
            raise RuntimeError(f"{self.backend} session is closed")
        if isinstance(inputs, np.ndarray):
            inputs = {self.inputs[0].name: inputs}
        expected = {t.name: t for t in self.inputs}
        missing = set(expected) - set(inputs)
        unknown = set(inputs) - set(expected)
        if missing or unknown:
            raise BadInputError(
                f"input names do not match the model: missing {sorted(missing)}, "
                f"unexpected {sorted(unknown)}"
            )
        fed: dict[str, np.ndarray] = {}
        for name, arr in inputs.items():
            info = expected[name]
            arr = np.asarray(arr)
            if arr.ndim != len(info.shape):
                raise BadInputError(
                    f"input '{name}' must be {len(info.shape)}-D {list(info.shape)}, got {list(arr.shape)}"
                )
            for axis, (want, got) in enumerate(zip(info.shape, arr.shape, strict=True)):
                if want is not None and want != got:
                    raise BadInputError(
                        f"input '{name}' axis {axis} must be {want}, got {got} "
                        f"(model shape {list(info.shape)}, given {list(arr.shape)})"
                    )
            if arr.dtype != info.dtype:
                if arr.dtype.kind not in "biuf":  # strings, objects, complex: no sane cast
                    raise BadInputError(
                        f"input '{name}' must be a numeric array ({info.dtype}), got {arr.dtype}"
                    )
                arr = arr.astype(info.dtype)
            fed[name] = np.ascontiguousarray(arr)
        return self._infer(fed)

    @property
    def input_name(self) -> str:
        return self.inputs[0].name

    @property
    def max_batch(self) -> int | None:
        """The largest batch the model accepts (None: unbounded), from the first input."""
        return self.inputs[0].shape[0]

    @property
    def static_batch(self) -> int | None:
        """The batch every call must have (None: the batch axis is dynamic).

        Not ``max_batch``: a TensorRT profile bounds a dynamic batch without fixing it.
        """
        return self.inputs[0].shape[0]

    @abstractmethod
    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def _close(self) -> None:  # noqa: B027 - optional hook
        pass

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def describe(self) -> dict[str, object]:
        """What ran: backend, device, precision and any runtime details (providers...)."""
        return {"backend": self.backend, "device": self.device, "precision": self.precision}
