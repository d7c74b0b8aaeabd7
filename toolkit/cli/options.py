"""The options several commands share, and option groups: typer parameters that reach a command
as one object (the pattern of Polygraphy's ``tools/args``).

A group is a builder function: its parameters are the options, declared with typer's
``Annotated`` types as a command's are; its result is what the command gets. :func:`option_group`
puts the builder's parameters into the command's signature in place of one of the command's
parameters, and calls the builder with their values: a command declares ``spec: SpecOverrides``
once instead of ten spec flags, and ``--help`` lists the flags where that parameter stands.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection, Mapping
from typing import Annotated, Any, TypeVar

import typer

from toolkit.model.spec import SpecOverrides, parse_floats, parse_imgsz, parse_labels, parse_scale

F = TypeVar("F", bound=Callable[..., Any])
# A builder, or (builder, the names of the parameters taken from it).
Group = Callable[..., Any] | tuple[Callable[..., Any], tuple[str, ...]]

# The default of a parameter that a group fills (the decorator always passes the value).
GROUP: Any = None

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show debug logs and tracebacks.")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")]
BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        help="auto | ort-cpu | ort-cuda | ort-trt | tensorrt | openvino[:CPU|GPU|NPU] | "
        "triton://host:port/model | torch",
    ),
]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", help="CPU threads (default: physical cores).")
]
WeightsOpt = Annotated[
    str | None, typer.Option("--weights", help="A state dict (.pt/.pth/.safetensors) to load.")
]
ModelSourceOpt = Annotated[
    str | None,
    typer.Option(
        "--model-source",
        help="The PyTorch model an .onnx file came from (file.py:Name, zoo:NAME...), for "
        "--backend torch; its checkpoint is --weights. A file's own record is trusted only "
        "for zoo: models.",
    ),
]
# predict and val: a model they run, images in batches, unreadable images skipped or fatal.
RunModelArg = Annotated[
    str, typer.Argument(help="An .onnx file, or a PyTorch reference with --backend torch.")
]
ImageBatchOpt = Annotated[int, typer.Option("--batch", help="Images per inference call.")]
DetIouOpt = Annotated[float, typer.Option("--iou", help="Detection: NMS IoU threshold.")]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict", help="An unreadable image is an error (exit 2), not skipped and counted."
    ),
]

# Preprocessing / spec flags: they fill the gaps of a foreign model and override ours.
TaskOpt = Annotated[str | None, typer.Option("--task", help="classify | detect")]
LabelsOpt = Annotated[
    str | None, typer.Option("--labels", help="Class names: a file (one per line) or a comma list.")
]
ImgszOpt = Annotated[str | None, typer.Option("--imgsz", help="Input size: N or H,W.")]
ChannelsOpt = Annotated[int | None, typer.Option("--channels", help="Input channels (1 or 3).")]
ColorOpt = Annotated[str | None, typer.Option("--color", help="rgb | bgr | gray")]
ScaleOpt = Annotated[str | None, typer.Option("--scale", help="Pixel scale (default 1/255).")]
MeanOpt = Annotated[str | None, typer.Option("--mean", help="Per-channel mean, comma list.")]
StdOpt = Annotated[str | None, typer.Option("--std", help="Per-channel std, comma list.")]
ResizeOpt = Annotated[
    str | None, typer.Option("--resize", help="letterbox | stretch | center-crop")
]
OutputFormatOpt = Annotated[
    str | None,
    typer.Option("--output-format", help="logits | probs | yolov8 | yolov5 | yolo-nms"),
]


def make_overrides(
    task: TaskOpt = None,
    labels: LabelsOpt = None,
    imgsz: ImgszOpt = None,
    channels: ChannelsOpt = None,
    color: ColorOpt = None,
    scale: ScaleOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    resize: ResizeOpt = None,
    output_format: OutputFormatOpt = None,
) -> SpecOverrides:
    """Parse the spec flags into a validated :class:`SpecOverrides` (the spec group's builder)."""
    from toolkit.errors import BadInputError
    from toolkit.model.spec_schema import COLORS, RESIZE_MODES, TASKS

    if task is not None and task not in TASKS:
        raise BadInputError(f"--task must be one of {', '.join(TASKS)}, got '{task}'")
    if color is not None and color not in COLORS:
        raise BadInputError(f"--color must be one of {', '.join(COLORS)}, got '{color}'")
    if resize is not None and resize not in RESIZE_MODES:
        raise BadInputError(f"--resize must be one of {', '.join(RESIZE_MODES)}, got '{resize}'")
    if channels is not None and channels not in (1, 3):
        raise BadInputError(f"--channels must be 1 or 3, got {channels}")
    return SpecOverrides(
        task=task,
        labels=parse_labels(labels),
        imgsz=parse_imgsz(imgsz),
        channels=channels,
        color=color,
        scale=parse_scale(scale),
        mean=parse_floats(mean, "--mean"),
        std=parse_floats(std, "--std"),
        resize=resize,
        output_format=output_format,
    )


SPEC_FLAGS = tuple(inspect.signature(make_overrides).parameters)
SIZE_FLAGS = ("imgsz", "channels")


def spec_options(
    *names: str, before: Mapping[str, str] | None = None, **groups: Group
) -> Callable[[F], F]:
    """The spec flags ``names`` (default: all ten, in their usual order) as the command's
    ``spec: SpecOverrides`` parameter, listed where that parameter stands.

    ``before`` moves a flag elsewhere in ``--help``: ``{"imgsz": "batch"}`` lists ``--imgsz``
    before the command's ``--batch``. ``groups``: the command's other option groups (see
    :func:`option_group`; a command has one such decorator).
    """
    chosen = names or SPEC_FLAGS
    unknown = set(chosen) - set(SPEC_FLAGS)
    if unknown:
        raise TypeError(f"not spec flags: {sorted(unknown)}")
    return option_group(before=before, spec=(make_overrides, chosen), **groups)


def option_group(before: Mapping[str, str] | None = None, **groups: Group) -> Callable[[F], F]:
    """Fill each command parameter named in ``groups`` from the options of its builder.

    A group is a builder, or ``(builder, names)`` to take only some of the builder's parameters
    (the others keep their defaults). ``before`` maps an option to the command parameter it is
    listed before (default: in place of the group's parameter). The group parameters' types
    are not evaluated: they may be imported for type checkers only. A command takes one such
    decorator, with all its groups.
    """

    def decorate(func: F) -> F:
        sig = _evaluated(func, skip=set(groups))
        members = {at: _members(g) for at, g in groups.items()}
        params = _spliced(sig, members, dict(before or {}))

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for at, group in groups.items():
                build = group[0] if isinstance(group, tuple) else group
                values = {p.name: kwargs.pop(p.name) for p in members[at] if p.name in kwargs}
                kwargs[at] = build(**values)
            return func(*args, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper  # type: ignore[return-value]

    return decorate


def _evaluated(func: Callable[..., Any], skip: Collection[str] = ()) -> inspect.Signature:
    """``func``'s signature with its parameters' string annotations evaluated, but for those in
    ``skip``: a group parameter's type (or a builder's result type) may be imported for type
    checkers only, so that the command module loads the library when it runs, not when the
    CLI starts."""
    sig = inspect.signature(func)
    names = inspect.unwrap(func).__globals__

    def ev(annotation: Any) -> Any:
        return eval(annotation, names) if isinstance(annotation, str) else annotation

    params = [p if p.name in skip else p.replace(annotation=ev(p.annotation))
              for p in sig.parameters.values()]  # fmt: skip
    return sig.replace(parameters=params, return_annotation=inspect.Signature.empty)


def _members(group: Group) -> list[inspect.Parameter]:
    build, names = group if isinstance(group, tuple) else (group, None)
    params = _evaluated(build).parameters
    return [params[n] for n in (names if names is not None else params)]


def _spliced(
    sig: inspect.Signature, members: dict[str, list[inspect.Parameter]], before: dict[str, str]
) -> list[inspect.Parameter]:
    """The command's parameters with each group parameter replaced by its options."""
    missing = set(members) - set(sig.parameters)
    if missing:
        raise TypeError(f"the command has no parameter {sorted(missing)} for an option group")
    stray = set(before) - {p.name for params in members.values() for p in params}
    if stray:
        raise TypeError(f"not options of a group: {sorted(stray)}")
    moved: dict[str, list[inspect.Parameter]] = {}
    for params in members.values():
        for p in params:
            if p.name in before:
                moved.setdefault(before[p.name], []).append(p)
    out: list[inspect.Parameter] = []
    for p in sig.parameters.values():
        out += moved.pop(p.name, [])
        if p.name in members:
            out += [q for q in members[p.name] if q.name not in before]
        else:
            out.append(p)
    if moved:
        raise TypeError(f"no parameter {sorted(moved)} to list options before")
    return [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in out]


def check_model_source(model_source: str | None, backends: list[str], models: list[str]) -> None:
    """``--model-source`` only means something to the torch backend running an .onnx file."""
    from toolkit.errors import BadInputError

    if model_source is None:
        return
    if "torch" not in [b.strip().lower() for b in backends]:
        raise BadInputError("--model-source is used by --backend torch only")
    if not any(m.lower().endswith(".onnx") for m in models):
        raise BadInputError(
            "--model-source names the PyTorch model of an .onnx MODEL; give a PyTorch "
            "reference as MODEL directly instead"
        )
