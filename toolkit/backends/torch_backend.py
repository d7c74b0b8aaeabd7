"""The ``torch`` backend: PyTorch eager, the reference and the baseline of every benchmark.

It runs a PyTorch reference (``zoo:resnet18``, ``file.py:Name``...) through
:func:`toolkit.loading.load_model`, or the PyTorch model an edgetk ONNX file was exported from,
so ``edgetk benchmark r18.onnx --backend ort-cpu,torch`` compares the two runtimes on one model.

A model file never chooses the code that runs. For an ONNX file the PyTorch side is:

- the spec's recorded ``source`` only when it names the toolkit's own zoo (``zoo:NAME``),
  with the recorded ``extra["weights"]`` (relative to the ONNX file's folder) unless
  ``weights`` is given;
- else the reference the user names (``--model-source file.py:Net``), with ``--weights``
  only: recorded weights paths are never read for it (a file could name any path);
- else nothing: the backend is unavailable, and says to pass ``--model-source``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from toolkit.backends.base import Session, TensorInfo, session_threads
from toolkit.errors import (
    BackendUnavailableError,
    BadInputError,
    MissingDependencyError,
    ToolkitError,
)
from toolkit.model.paths import resolve_ref
from toolkit.model.spec import SpecOverrides, check_label_count

log = logging.getLogger(__name__)

SOURCE_HINT = "pass --model-source to run the PyTorch model it came from"
NO_SOURCE = (
    f"torch backend needs a PyTorch model; this ONNX file has no PyTorch source ({SOURCE_HINT})"
)
# The one kind of recorded reference a file may pick: the toolkit's own code.
TRUSTED_PREFIX = "zoo:"
# References whose factory takes num_classes (the zoo and the model hubs).
_HUB_PREFIXES = ("zoo:", "torchvision:", "timm:")


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as e:
        raise MissingDependencyError("torch", None, "the torch backend") from e
    return torch


def _to_numpy(t: Any, torch: Any) -> np.ndarray:
    t = t.detach()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16
        t = t.float()
    return t.cpu().numpy()


class TorchSession(Session):
    """A PyTorch ``nn.Module`` in eager mode under ``torch.inference_mode``.

    Args:
        model: a PyTorch reference, or an edgetk ``.onnx`` file whose spec names its source.
        overrides: command-line spec values.
        threads: intra-op threads (default: physical cores). ``torch.set_num_threads`` is
            process-wide: it is set once here, so the last torch session opened wins.
        weights: a checkpoint to load (default for an ONNX file with a ``zoo:`` source: the
            one it was exported with).
        device: ``cpu`` or ``cuda[:N]``.
        model_source: for an ONNX file, the PyTorch reference to run (``--model-source``),
            instead of a recorded one (see the module's docstring).
    """

    backend: ClassVar[str] = "torch"

    def __init__(
        self,
        model: str | Path,
        *,
        overrides: SpecOverrides | None = None,
        threads: int | None = None,
        weights: str | None = None,
        device: str = "cpu",
        model_source: str | None = None,
    ) -> None:
        torch = _import_torch()
        self._torch = torch
        self.threads = session_threads(threads)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"torch on {device} needs a CUDA build of PyTorch and an NVIDIA GPU "
                f"(this torch is {torch.__version__}, CUDA available: no)"
            )
        self.device = device
        self.source: str
        self.weights: str | None
        if str(model).lower().endswith(".onnx"):
            self._from_onnx(Path(model), overrides, weights, model_source)
        else:
            if model_source is not None:
                raise BadInputError(
                    f"--model-source names the PyTorch model of an .onnx file; '{model}' is "
                    "a PyTorch reference already"
                )
            self._from_reference(str(model), overrides, weights)
        torch.set_num_threads(self.threads)
        self._module = self._module.to(device).eval()
        if not self.outputs:
            self.outputs = self._probe_outputs()
            if overrides is not None and overrides.labels is not None:
                # An ONNX file's labels were checked against its graph; here the forward
                # pass is the first to know the class count.
                check_label_count(self.spec, self.outputs[0].shape, "--labels")
        self._output_names = [o.name for o in self.outputs]

    @property
    def module(self) -> Any:
        """The wrapped ``nn.Module`` (eval mode, on ``device``); read-only."""
        return self._module

    # -- construction ----------------------------------------------------------------------
    def _load(self, ref: str, weights: str | None, num_classes: int | None, overrides: Any) -> Any:
        from toolkit.loading import load_model  # written by the export helper; lazy on purpose

        return load_model(ref, weights=weights, num_classes=num_classes, overrides=overrides)

    def _from_reference(
        self, ref: str, overrides: SpecOverrides | None, weights: str | None
    ) -> None:
        loaded = self._load(ref, weights, None, overrides)
        self._module = loaded.module
        self.spec = loaded.spec
        self.source = loaded.source
        self.weights = loaded.spec.extra.get("weights")
        self.inputs = [TensorInfo(self.spec.input.name, self.spec.input.shape, np.dtype("float32"))]
        self.outputs = []  # learnt from one forward pass below

    def _source_of(
        self, path: Path, weights: str | None, model_source: str | None
    ) -> tuple[str, str | None]:
        """(reference, weights) to build for ONNX file ``path``: see the module's docstring."""
        if model_source is not None:
            return model_source, weights  # the user's own choice, as typed (from the cwd)
        recorded = self.spec.source
        if not recorded or self.spec.extra.get("foreign"):
            raise BackendUnavailableError(NO_SOURCE)
        if not recorded.startswith(TRUSTED_PREFIX):
            # Importing it would run whatever code the file points at (payload.py, os:...).
            raise BackendUnavailableError(
                f"torch backend does not run the PyTorch source recorded in {path.name} "
                f"({recorded[:80]!r}): a model file does not choose the code that runs "
                f"({SOURCE_HINT})"
            )
        recorded_w = str(self.spec.extra.get("weights") or "")
        # "package:..." are a zoo entry's shipped weights: the zoo loads them by itself.
        if weights is None and recorded_w and not recorded_w.startswith("package:"):
            # Export records files relative to the ONNX file's folder: look them up there.
            weights = resolve_ref(recorded_w, path.parent, any_file=True)
            if not Path(weights).is_file():
                raise BackendUnavailableError(
                    f"torch backend: the weights {path.name} was exported with are not found "
                    f"({weights}); pass --weights"
                )
        return recorded, weights

    def _from_onnx(
        self,
        path: Path,
        overrides: SpecOverrides | None,
        weights: str | None,
        model_source: str | None,
    ) -> None:
        from toolkit.model.modelfile import graph_io, load_onnx, read_spec

        self.spec = read_spec(path, overrides)
        ref, weights = self._source_of(path, weights, model_source)
        ins, outs = graph_io(load_onnx(path, load_weights=False))
        num_classes = None
        if ref.startswith(_HUB_PREFIXES) and outs and len(outs[0][1]) == 2:
            num_classes = outs[0][1][1]  # the ONNX head's width (None if dynamic)
        try:
            loaded = self._load(ref, weights, num_classes, None)
        except BadInputError as e:  # ModelLoadError, a moved source file...
            # The ONNX file itself is fine; it is the torch side that cannot run here.
            raise BackendUnavailableError(
                f"torch backend cannot load this model's PyTorch source '{ref}': {e}"
            ) from e
        self._module = loaded.module
        self.source = loaded.source
        self.weights = loaded.spec.extra.get("weights")
        if self.weights is None:
            # Timing is still right; outputs will not match the ONNX file's.
            log.info("torch backend: %s runs without a checkpoint (pass --weights)", ref)
        # Same tensor names as the ONNX file, so one feed dict serves both runtimes.
        self.inputs = []
        for name, shape in ins:
            if name == self.spec.input.name and len(shape) == len(self.spec.input.shape):
                shape = tuple(
                    g if g is not None else s
                    for g, s in zip(shape, self.spec.input.shape, strict=True)
                )
            self.inputs.append(TensorInfo(name, shape, np.dtype("float32")))
        self.outputs = [TensorInfo(n, s, np.dtype("float32")) for n, s in outs]

    def _probe_outputs(self) -> list[TensorInfo]:
        """Output names and shapes from one batch-1 forward pass (a reference has no graph)."""
        shape = self.inputs[0].shape
        if any(d is None for d in shape[1:]):
            return [TensorInfo(self.spec.output.name or "output", (None,), np.dtype("float32"))]
        x = np.zeros((1, *shape[1:]), dtype=np.float32)
        arrays = self._forward({self.inputs[0].name: x}, names=None)
        names = [self.spec.output.name or "output"] if len(arrays) == 1 else list(arrays)
        return [
            TensorInfo(n, (None, *a.shape[1:]), a.dtype)
            for n, a in zip(names, arrays.values(), strict=True)
        ]

    # -- running ---------------------------------------------------------------------------
    def _forward(self, inputs: dict[str, np.ndarray], names: list[str] | None) -> dict[str, Any]:
        torch = self._torch
        args = [torch.from_numpy(inputs[t.name]).to(self.device) for t in self.inputs]
        try:
            with torch.inference_mode():
                out = self._module(*args)
        except RuntimeError as e:
            raise ToolkitError(f"torch inference failed: {' '.join(str(e).split())[:300]}") from e
        if isinstance(out, dict):
            tensors = list(out.values())
            keys = names or [str(k) for k in out]
        else:
            tensors = list(out) if isinstance(out, (tuple, list)) else [out]
            keys = names or [f"output{i}" for i in range(len(tensors))]
        if len(keys) != len(tensors):
            raise ToolkitError(
                f"the PyTorch model returned {len(tensors)} outputs, the ONNX file has {len(keys)}"
            )
        return {k: _to_numpy(t, torch) for k, t in zip(keys, tensors, strict=True)}

    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._forward(inputs, self._output_names)

    def _close(self) -> None:
        del self._module

    def describe(self) -> dict[str, object]:
        """Backend, device, precision, the PyTorch source and threads."""
        info = super().describe()
        info.update(
            source=self.source,
            weights=self.weights,  # None: freshly initialized (outputs differ from the ONNX)
            threads=self.threads,
            torch=self._torch.__version__,
        )
        return info
