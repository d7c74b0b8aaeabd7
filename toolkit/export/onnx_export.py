"""PyTorch -> ONNX: export, check, simplify, compare with PyTorch, embed the spec, write.

Example:
    >>> report = export_onnx("zoo:resnet18", "r18.onnx")
    >>> report.parity.max_abs_diff < 1e-4
    True
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import BadInputError, OutputExistsError, ParityError
from toolkit.export.checks import (
    ExportError,
    check_batch_axis,
    check_graph,
    check_opset,
    name_io,
    output_shapes,
)
from toolkit.export.checks import simplify as slim_graph
from toolkit.export.parity import ParityReport, check_parity, flatten_outputs, sample_inputs
from toolkit.model.spec import ModelSpec, SpecOverrides, parse_imgsz, portable_spec

if TYPE_CHECKING:
    from toolkit.loading import LoadedModel

log = logging.getLogger(__name__)

INPUT_NAME = "images"


@dataclass
class ExportReport:
    """What an export produced and how well it matches PyTorch."""

    output: str
    source: str
    exporter: str
    opset: int
    input_name: str
    input_shape: list[int | None]
    output_shapes: dict[str, list[int | None]]
    dynamic_batch: bool
    nodes_before: int
    nodes_after: int
    simplified: bool
    file_size_bytes: int
    export_seconds: float
    total_seconds: float
    parity: ParityReport
    spec: ModelSpec
    log: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["parity"] = self.parity.to_dict()
        d["spec"] = self.spec.to_dict()
        del d["log"]
        return d


def export_onnx(
    model: str | Path | LoadedModel,
    output: str | Path,
    *,
    weights: str | None = None,
    num_classes: int | None = None,
    imgsz: int | str | tuple[int, int] | None = None,
    channels: int | None = None,
    batch: int | None = None,
    max_batch: int | None = None,
    opset: int | None = None,
    simplify: bool = True,
    check: bool = True,
    force: bool = False,
    overrides: SpecOverrides | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    samples: int = 4,
    seed: int = 0,
) -> ExportReport:
    """Export a PyTorch model to ONNX with its ModelSpec, checked against PyTorch.

    Args:
        model: a model reference (``zoo:resnet18``, ``file.py:Name``...) or a
            :class:`~toolkit.loading.LoadedModel`.
        output: the ``.onnx`` file to write (atomically; never replaced unless ``force``).
        weights, num_classes: passed to :func:`toolkit.loading.load_model`.
        imgsz, channels: input size (int, ``"h,w"`` or a pair) and channels; shortcuts for
            ``overrides``.
        batch: a static batch size; ``None`` (default) exports a dynamic batch axis.
        max_batch: upper bound of the dynamic batch axis (default: unbounded).
        opset: the ONNX opset (default: the exporter's); an opset the exporter cannot
            produce is an error, not a silent substitute.
        simplify: run onnxslim.
        check: raise :class:`ParityError` when ONNX Runtime and PyTorch differ beyond
            ``atol + rtol * max|reference|``; with ``False`` the file is written anyway.
        overrides: spec values (task, labels, preprocessing) that win over the model's.
        samples: parity inputs (dynamic: batches 1, 2, 3, 1...; static: ``batch`` each, at
            most about 8 images in all).
        seed: seed of the example and parity inputs.

    Raises:
        OutputExistsError: ``output`` exists and ``force`` is false (checked first).
        BadInputError: bad options, or a model that does not run at the given input size.
        ExportError: the exporter failed or produced something other than asked.
        ParityError: the parity check failed (with ``check``).
    """
    import torch

    from toolkit.fileio import check_output, save_onnx
    from toolkit.loading import LoadedModel, load_model
    from toolkit.model.modelfile import write_spec

    started = time.perf_counter()
    out = check_output(output, force)  # before the slow part: fail fast
    _validate(batch, max_batch, opset, samples, atol, rtol)
    overrides = _merge_overrides(overrides, imgsz, channels)
    if isinstance(model, LoadedModel):
        if weights is not None or num_classes is not None:
            raise BadInputError("weights and num_classes apply to a model reference")
        loaded = replace(model, spec=overrides.apply(model.spec))
    else:
        loaded = load_model(
            str(model), weights=weights, num_classes=num_classes, overrides=overrides
        )
    spec = loaded.spec
    c, (h, w) = spec.input.channels, spec.input.hw
    dynamic = batch is None

    # The example batch is 2 for a dynamic axis: torch specializes size-1 dimensions.
    example = torch.from_numpy(sample_inputs(spec, [batch or 2], seed)[0])
    ref_outputs = _dry_run(loaded.module, example, loaded.source, dynamic)
    spec = _settle_spec(spec, loaded.spec_is_default, overrides, ref_outputs, dynamic)
    first_name = "logits" if spec.output.format == "logits" else "output"
    names = [first_name] + [f"output{i}" for i in range(1, len(ref_outputs))]

    t0 = time.perf_counter()
    proto, exporter, lines = _export(loaded.module, example, names, dynamic, max_batch, opset)
    export_seconds = time.perf_counter() - t0
    got_opset = check_opset(proto, opset, lines)
    name_io(proto, INPUT_NAME, first_name)
    check_batch_axis(proto, dynamic, batch)
    proto = check_graph(proto)
    nodes_before = len(proto.graph.node)
    if simplify:
        proto = check_graph(_simplify(proto))
        check_batch_axis(proto, dynamic, batch)
    nodes_after = len(proto.graph.node)

    parity = _parity(loaded.module, proto, spec, batch, max_batch, samples, atol, rtol, seed, check)
    if check and not parity.passed:
        raise ParityError(
            f"ONNX Runtime differs from PyTorch: {parity.reason} ({_numbers(parity)}); "
            f"{out} was not written (--no-check writes it anyway)"
        )

    spec = spec.with_changes(
        input=replace(spec.input, name=INPUT_NAME, shape=(batch, c, h, w)),
        output=replace(spec.output, name=first_name),
        precision="fp32",
        source=loaded.source,
    )
    # Files it names are recorded relative to the output's folder: the ONNX file and its
    # net.py / weights can then move together, and `--backend torch` runs from anywhere.
    spec = portable_spec(spec, out.parent)
    write_spec(proto, spec)
    if out.exists() and not force:  # it appeared while we were exporting
        raise OutputExistsError(f"output exists: {out} (pass --force to overwrite)")
    save_onnx(proto, out)
    return ExportReport(
        output=str(out),
        source=loaded.source,
        exporter=exporter,
        opset=got_opset,
        input_name=INPUT_NAME,
        input_shape=[batch, c, h, w],
        output_shapes=output_shapes(proto),
        dynamic_batch=dynamic,
        nodes_before=nodes_before,
        nodes_after=nodes_after,
        simplified=simplify,
        file_size_bytes=out.stat().st_size,
        export_seconds=round(export_seconds, 3),
        total_seconds=round(time.perf_counter() - started, 3),
        parity=parity,
        spec=spec,
        log=lines,
    )


def _validate(
    batch: int | None,
    max_batch: int | None,
    opset: int | None,
    samples: int,
    atol: float,
    rtol: float,
) -> None:
    import onnx

    if batch is not None and batch < 1:
        raise BadInputError(f"--batch must be at least 1, got {batch}")
    if max_batch is not None:
        if batch is not None:
            raise BadInputError("--max-batch applies to a dynamic batch, not with --batch")
        if max_batch < 2:
            raise BadInputError(
                f"--max-batch must be at least 2, got {max_batch} (or use --batch 1)"
            )
    newest = onnx.defs.onnx_opset_version()
    if opset is not None and not 7 <= opset <= newest:
        raise BadInputError(f"--opset must be between 7 and {newest} (onnx {onnx.__version__})")
    if samples < 1:
        raise BadInputError(f"samples must be at least 1, got {samples}")
    if atol < 0 or rtol < 0:
        raise BadInputError("tolerances must be non-negative")


def _merge_overrides(
    overrides: SpecOverrides | None, imgsz: int | str | tuple[int, int] | None, channels: int | None
) -> SpecOverrides:
    overrides = overrides or SpecOverrides()
    if imgsz is not None:
        text = ",".join(str(s) for s in imgsz) if isinstance(imgsz, (tuple, list)) else imgsz
        overrides = replace(overrides, imgsz=parse_imgsz(text))
    if channels is not None:
        if channels not in (1, 3):
            raise BadInputError(f"--channels must be 1 or 3, got {channels}")
        overrides = replace(overrides, channels=channels)
    return overrides


def _dry_run(module: Any, example: Any, source: str, dynamic: bool) -> list[Any]:
    """One eager forward pass: a wrong input size fails here, before the slow export."""
    import torch

    try:
        with torch.no_grad():
            outputs = flatten_outputs(module(example))
    except Exception as e:  # user code: any error means it cannot run at this size
        if dynamic and _runs_at_batch_one(module, example):
            raise BadInputError(
                f"{source} runs at batch 1 only, so its batch axis cannot be dynamic: "
                "export a static batch with --batch 1"
            ) from e
        shape = "x".join(str(s) for s in example.shape)
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise BadInputError(
            f"{source} fails on a {shape} input: {type(e).__name__}: {first} "
            "(check --imgsz and --channels)"
        ) from e
    if not outputs:
        raise BadInputError(f"{source} returns no tensors")
    return outputs


def _runs_at_batch_one(module: Any, example: Any) -> bool:
    import torch

    try:
        with torch.no_grad():
            module(example[:1])
    except Exception:  # any failure: it does not run at batch 1 either
        return False
    return True


def _settle_spec(
    spec: ModelSpec,
    guess: bool,
    overrides: SpecOverrides,
    outputs: list[Any],
    dynamic: bool,
) -> ModelSpec:
    """Task and output format (guessed from the output shape when the spec is only defaults);
    labels must match the classifier's width."""
    from toolkit.model.modelfile import guess_output_format

    shape = tuple(outputs[0].shape)
    if dynamic:
        shape = (None, *shape[1:])
    if guess and overrides.task is None and overrides.output_format is None:
        try:
            task, fmt = guess_output_format(shape)
        except BadInputError:
            task, fmt = spec.task, spec.output.format
        if task != spec.task or fmt != spec.output.format:
            pre = spec.preprocess
            if task == "detect" and overrides.resize is None:
                pre = replace(pre, resize="letterbox")
            spec = spec.with_changes(
                task=task, output=replace(spec.output, format=fmt), preprocess=pre
            )
    width = shape[1] if len(shape) == 2 else None
    if spec.task == "classify" and spec.labels and width not in (None, len(spec.labels)):
        raise BadInputError(
            f"{len(spec.labels)} labels given but the model outputs {shape[1]} classes"
        )
    return spec


def _export(
    module: Any,
    example: Any,
    names: list[str],
    dynamic: bool,
    max_batch: int | None,
    opset: int | None,
) -> tuple[Any, str, list[str]]:
    from toolkit.export.torch_onnx import torch_to_onnx

    return torch_to_onnx(
        module, example, output_names=names, dynamic=dynamic, max_batch=max_batch, opset=opset
    )


def _simplify(proto: Any) -> Any:
    from toolkit.export.torch_onnx import quiet_exporter

    with quiet_exporter():  # onnxslim may print; keep stdout for --json
        return slim_graph(proto)


def _parity(
    module: Any,
    proto: Any,
    spec: ModelSpec,
    batch: int | None,
    max_batch: int | None,
    samples: int,
    atol: float,
    rtol: float,
    seed: int,
    check: bool,
) -> ParityReport:
    if batch is None:
        # Several batch sizes: also proves the dynamic axis runs in ONNX Runtime.
        sizes = [min(1 + i % 3, max_batch or 3) for i in range(samples)]
    else:
        # About 8 images in all: a large static batch needs fewer calls.
        sizes = [batch] * max(1, min(samples, 8 // batch))
    try:
        return check_parity(
            module,
            proto.SerializeToString(),
            spec,
            batch_sizes=sizes,
            atol=atol,
            rtol=rtol,
            classifier=spec.task == "classify",
            seed=seed + 1,
        )
    except Exception as e:  # onnxruntime raises its own types (Fail, InvalidGraph...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        why = f"ONNX Runtime cannot run the exported model: {type(e).__name__}: {first}"
        if check:
            raise ExportError(f"{why} (--no-check writes the file anyway)") from e
        log.warning("%s", why)
        return ParityReport(status=f"skipped: {why}", reason=why, atol=atol, rtol=rtol)


def _numbers(p: ParityReport) -> str:
    parts = []
    if p.max_abs_diff is not None:
        parts.append(f"max abs diff {p.max_abs_diff:.3g}, rel {p.rel_error:.3g}")
    if p.top1_agreement is not None:
        parts.append(f"top-1 agreement {p.top1_agreement:.1%}")
    parts.append(f"{p.rows} images")
    return ", ".join(parts)
