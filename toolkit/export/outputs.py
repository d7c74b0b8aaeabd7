"""What the model returns, before the export: the eager dry run, and the spec it settles.

A wrong input size fails in one forward pass here, before the slow export; the output's shape
then names the task and output format of a model whose spec is only defaults.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from toolkit.errors import BadInputError
from toolkit.export.parity import flatten_outputs
from toolkit.model.spec import ModelSpec, SpecOverrides


def dry_run(module: Any, example: Any, source: str, dynamic: bool) -> list[Any]:
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


def settle_spec(
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
