"""``summarize(ref)``: the summary of any model reference (zoo:, PyTorch, ONNX)."""

from __future__ import annotations

from pathlib import Path

from toolkit.errors import BadInputError, ToolkitError
from toolkit.model.spec import SpecOverrides
from toolkit.summary.types import ModelSummary


def summarize(
    model: str | Path,
    *,
    overrides: SpecOverrides | None = None,
    weights: str | None = None,
    depth: int | None = None,
) -> ModelSummary:
    """Summarize a model reference, as ``edgetk inspect`` does.

    ``zoo:NAME`` is built on the meta device (no weights are allocated, so even VGG is
    instant); an ``.onnx`` file goes through ONNX shape inference; any other PyTorch
    reference is loaded with :func:`toolkit.loading.load_model`. The input is batch 1 at
    the model's own size unless ``overrides`` sets ``imgsz`` / ``channels``.

    Args:
        model: ``zoo:NAME``, ``file.onnx``, or another PyTorch reference (``file.py:Name``...).
        overrides: Command-line spec flags; only the input size and channels matter here.
        weights: A state dict for a PyTorch reference (not used for ONNX files).
        depth: Group PyTorch rows at this module depth (see :func:`summarize_module`).

    Example:
        >>> summarize("zoo:vgg16").total_macs
        15470264320
    """
    from toolkit.summary.onnx_summary import summarize_onnx
    from toolkit.summary.torch_summary import summarize_module

    ov = overrides or SpecOverrides()
    ref = str(model)
    suffix = Path(ref).suffix.lower()
    if suffix == ".onnx":
        if weights is not None:
            raise BadInputError("--weights applies to PyTorch models, not to ONNX files")
        return summarize_onnx(ref, imgsz=ov.imgsz, channels=ov.channels)
    if suffix == ".engine":
        raise BadInputError(
            f"cannot inspect a TensorRT engine ({ref}): inspect its ONNX file instead"
        )

    if ref.startswith("zoo:") and weights is None:
        import torch

        from toolkit.zoo import create_model

        # Weights do not change shapes, parameter counts or MACs: build without them.
        with torch.device("meta"):
            module, spec = create_model(ref, in_chans=ov.channels, pretrained=False)
    else:
        try:
            from toolkit.loading import load_model
        except ImportError as e:
            raise ToolkitError(
                f"cannot load '{ref}': PyTorch model loading unavailable ({e})"
            ) from e
        loaded = load_model(ref, weights=weights, overrides=ov)
        module, spec = loaded.module, loaded.spec
    spec = ov.apply(spec)
    h, w = spec.input.hw
    return summarize_module(module, (1, spec.input.channels, h, w), model_name=ref, depth=depth)
