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

from toolkit.errors import BadInputError, OutputExistsError
from toolkit.export.checks import (
    check_batch_axis,
    check_graph,
    check_hw_axes,
    check_opset,
    name_io,
    output_shapes,
)
from toolkit.export.checks import simplify as slim_graph
from toolkit.export.outputs import dry_run, settle_spec
from toolkit.export.parity import (
    ParityOptions,
    ParityReport,
    checked_parity,
    combined,
    sample_inputs,
)
from toolkit.fileio import check_output, save_onnx
from toolkit.model.spec import ModelSpec, SpecOverrides, parse_imgsz, portable_spec
from toolkit.tasks.rect import DEFAULT_STRIDE

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
    dynamic_hw: bool = False
    parity_sizes: list[list[int]] = field(default_factory=list)  # (h, w) of the parity inputs
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
    dynamic_hw: bool = False,
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
        dynamic_hw: a detector with a dynamic height and width (rect inputs), see _parity.

    Raises:
        OutputExistsError: ``output`` exists and ``force`` is false (checked first).
        BadInputError: bad options, or a model that does not run at the given input size.
        ExportError: the exporter failed or produced something other than asked.
        ParityError: the parity check failed (with ``check``).
    """
    started = time.perf_counter()
    out = check_output(output, force)  # before the slow part: fail fast
    _validate(batch, max_batch, opset, samples, atol, rtol)
    overrides = _merge_overrides(overrides, imgsz, channels)
    loaded = _load(model, weights, num_classes, overrides)
    opts = _Options(batch, max_batch, opset, simplify, check, atol, rtol, samples, seed,
                    DEFAULT_STRIDE if dynamic_hw else None)  # fmt: skip
    graph = _to_onnx(loaded, overrides, opts)
    parity = _parity(loaded.module, graph, opts, out)
    spec = _write(graph, loaded.source, opts, out, force)
    return _report(out, loaded.source, graph, opts, parity, spec, started)


def _parity(module: Any, graph: _Graph, opts: _Options, out: Path) -> ParityReport:
    """The parity check at the export size, as one report with a rect size for dynamic H/W
    (``--dynamic-hw``: a detector's height and width are any multiple of the stride 32, as
    ``spec.extra["stride"]`` records, for rect inputs, :mod:`toolkit.tasks.rect`)."""
    sizes = _parity_sizes(graph.spec, opts.hw_stride)
    return combined([checked_parity(module, graph.proto, _at(graph.spec, hw), opts.parity, out)
                     for hw in sizes])  # fmt: skip


def _parity_sizes(spec: ModelSpec, stride: int | None) -> list[tuple[int, int]]:
    """The export size, and for dynamic H/W also a rect one (3/4 of the height)."""
    h, w = spec.input.hw
    if stride is None:
        return [(h, w)]
    short = max(stride, (h * 3 // 4) // stride * stride)
    return [(h, w), (short, w) if short != h else (h, w + stride)]


def _at(spec: ModelSpec, hw: tuple[int, int]) -> ModelSpec:
    if hw == spec.input.hw:
        return spec
    n, c = spec.input.shape[:2]
    return spec.with_changes(input=replace(spec.input, shape=(n, c, *hw)))


def _check_dynamic_hw(spec: ModelSpec, stride: int) -> None:
    """Only a letterbox detector takes rect inputs, at sizes that are stride multiples."""
    if spec.task != "detect":
        raise BadInputError(
            f"--dynamic-hw applies to detectors (rect inference), not to a {spec.task} model"
        )
    h, w = spec.input.hw
    if h % stride or w % stride:
        raise BadInputError(
            f"--dynamic-hw needs --imgsz sides that are multiples of the stride {stride}, "
            f"got {h}x{w}"
        )


@dataclass(frozen=True)
class _Options:
    """The export options :func:`export_onnx` checked (see its arguments)."""

    batch: int | None
    max_batch: int | None
    opset: int | None
    simplify: bool
    check: bool
    atol: float
    rtol: float
    samples: int
    seed: int
    hw_stride: int | None = None  # --dynamic-hw: the input's H and W are multiples of it

    @property
    def dynamic(self) -> bool:
        return self.batch is None

    @property
    def parity(self) -> ParityOptions:
        return ParityOptions(self.batch, self.max_batch, self.samples, self.atol, self.rtol,
                             self.seed, self.check)  # fmt: skip


@dataclass
class _Graph:
    """The exported, checked (and simplified) graph, before the spec is written into it."""

    proto: Any
    spec: ModelSpec
    output_name: str
    exporter: str
    opset: int
    lines: list[str]
    export_seconds: float
    nodes_before: int
    nodes_after: int


def _load(
    model: str | Path | LoadedModel,
    weights: str | None,
    num_classes: int | None,
    overrides: SpecOverrides,
) -> LoadedModel:
    """The PyTorch model to export, with ``overrides`` applied to its spec."""
    from toolkit.loading import LoadedModel, load_model

    if isinstance(model, LoadedModel):
        if weights is not None or num_classes is not None:
            raise BadInputError("weights and num_classes apply to a model reference")
        return replace(model, spec=overrides.apply(model.spec))
    return load_model(str(model), weights=weights, num_classes=num_classes, overrides=overrides)


def _to_onnx(loaded: LoadedModel, overrides: SpecOverrides, opts: _Options) -> _Graph:
    """Dry-run, export, check and simplify the graph; settle the spec from the outputs."""
    import torch

    spec = loaded.spec
    # The example batch is 2 for a dynamic axis: torch specializes size-1 dimensions.
    example = torch.from_numpy(sample_inputs(spec, [opts.batch or 2], opts.seed)[0])
    ref_outputs = dry_run(loaded.module, example, loaded.source, opts.dynamic)
    spec = settle_spec(spec, loaded.spec_is_default, overrides, ref_outputs, opts.dynamic)
    if opts.hw_stride is not None:
        _check_dynamic_hw(spec, opts.hw_stride)
    first_name = "logits" if spec.output.format == "logits" else "output"
    names = [first_name] + [f"output{i}" for i in range(1, len(ref_outputs))]

    t0 = time.perf_counter()
    proto, exporter, lines = _export(
        loaded.module, example, names, opts.dynamic, opts.max_batch, opts.opset, opts.hw_stride
    )
    export_seconds = time.perf_counter() - t0
    got_opset = check_opset(proto, opts.opset, lines)
    name_io(proto, INPUT_NAME, first_name)
    check_batch_axis(proto, opts.dynamic, opts.batch)
    if opts.hw_stride is not None:
        check_hw_axes(proto)
    proto = check_graph(proto)
    nodes_before = len(proto.graph.node)
    if opts.simplify:
        proto = check_graph(_simplify(proto))
        check_batch_axis(proto, opts.dynamic, opts.batch)
        if opts.hw_stride is not None:
            check_hw_axes(proto)
    return _Graph(proto, spec, first_name, exporter, got_opset, lines, export_seconds,
                  nodes_before, len(proto.graph.node))  # fmt: skip


def _write(graph: _Graph, source: str, opts: _Options, out: Path, force: bool) -> ModelSpec:
    """Embed the final spec (fp32, the input's name and shape, portable paths) and write."""
    from toolkit.model.modelfile import write_spec

    spec = graph.spec
    c, (h, w) = spec.input.channels, spec.input.hw
    spec = spec.with_changes(
        input=replace(spec.input, name=INPUT_NAME, shape=(opts.batch, c, h, w)),
        output=replace(spec.output, name=graph.output_name),
        precision="fp32",
        source=source,
    )
    if opts.hw_stride is not None:
        extra = {**spec.extra, "stride": opts.hw_stride, "dynamic_hw": True}
        spec = spec.with_changes(extra=extra)
    # Files it names are recorded relative to the output's folder: the ONNX file and its
    # net.py / weights can then move together, and `--backend torch` runs from anywhere.
    spec = portable_spec(spec, out.parent)
    write_spec(graph.proto, spec)
    if out.exists() and not force:  # it appeared while we were exporting
        raise OutputExistsError(f"output exists: {out} (pass --force to overwrite)")
    save_onnx(graph.proto, out)
    return spec


def _report(
    out: Path,
    source: str,
    graph: _Graph,
    opts: _Options,
    parity: ParityReport,
    spec: ModelSpec,
    started: float,
) -> ExportReport:
    return ExportReport(
        output=str(out),
        source=source,
        exporter=graph.exporter,
        opset=graph.opset,
        input_name=INPUT_NAME,
        input_shape=list(spec.input.shape),
        output_shapes=output_shapes(graph.proto),
        dynamic_batch=opts.dynamic,
        nodes_before=graph.nodes_before,
        nodes_after=graph.nodes_after,
        simplified=opts.simplify,
        file_size_bytes=out.stat().st_size,
        export_seconds=round(graph.export_seconds, 3),
        total_seconds=round(time.perf_counter() - started, 3),
        parity=parity,
        spec=spec,
        dynamic_hw=opts.hw_stride is not None,
        parity_sizes=[list(hw) for hw in _parity_sizes(graph.spec, opts.hw_stride)],
        log=graph.lines,
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


def _export(
    module: Any,
    example: Any,
    names: list[str],
    dynamic: bool,
    max_batch: int | None,
    opset: int | None,
    hw_stride: int | None = None,
) -> tuple[Any, str, list[str]]:
    from toolkit.export.torch_onnx import torch_to_onnx

    return torch_to_onnx(module, example, output_names=names, dynamic=dynamic,
                         max_batch=max_batch, opset=opset, hw_stride=hw_stride)  # fmt: skip


def _simplify(proto: Any) -> Any:
    from toolkit.export.torch_onnx import quiet_exporter

    with quiet_exporter():  # onnxslim may print; keep stdout for --json
        return slim_graph(proto)
