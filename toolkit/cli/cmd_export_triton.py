"""`edgetk export-triton MODEL -o repo/`: a Triton model repository from an ONNX file or engine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from toolkit.cli import options as opt
from toolkit.cli.common import cli_command, console, print_json

if TYPE_CHECKING:
    from toolkit.model.spec import SpecOverrides

ModelArg = Annotated[str, typer.Argument(help="An edgetk .onnx file or a TensorRT .engine.")]
RepoOpt = Annotated[Path, typer.Option("--output", "-o", help="The model repository folder.")]
NameOpt = Annotated[
    str | None, typer.Option("--name", help="The model's name (default: the file's stem).")
]
MaxBatchOpt = Annotated[int, typer.Option("--max-batch", help="Triton's max_batch_size.")]
PreferredOpt = Annotated[
    str | None,
    typer.Option("--preferred", help="Preferred batch sizes, comma list (default 2,4,8...)."),
]
DelayOpt = Annotated[
    int, typer.Option("--queue-delay", help="Dynamic batcher queue delay, microseconds.")
]
InstancesOpt = Annotated[int, typer.Option("--instances", help="Model instances.")]
KindOpt = Annotated[
    str | None, typer.Option("--kind", help="cpu | gpu (default: cpu for ONNX, gpu for a plan).")
]


def _sizes(text: str | None) -> tuple[int, ...] | None:
    from toolkit.errors import BadInputError

    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as e:
        raise BadInputError(f"--preferred must be a comma list of integers, got {text!r}") from e


@cli_command
@opt.spec_options()
def command(
    model: ModelArg,
    output: RepoOpt = Path("model_repository"),
    name: NameOpt = None,
    max_batch: MaxBatchOpt = 8,
    preferred: PreferredOpt = None,
    queue_delay: DelayOpt = 2000,
    instances: InstancesOpt = 1,
    kind: KindOpt = None,
    spec: SpecOverrides = opt.GROUP,
    force: opt.ForceOpt = False,
    json_out: opt.JsonOpt = False,
    verbose: opt.VerboseOpt = False,
) -> None:
    """Write a Triton model repository: config.pbtxt derived from the file, dynamic batching,
    instance groups, and the edgetk spec as the 'edgetk' parameter (clients need no flags).

    Example: edgetk export-triton defects.onnx -o model_repository/ --max-batch 16
    """
    from toolkit.export.triton import TritonOptions, write_repository

    options = TritonOptions(
        name=name, max_batch=max_batch, preferred=_sizes(preferred),
        queue_delay_us=queue_delay, instances=instances, kind=kind,
    )  # fmt: skip
    repo = write_repository(
        model, output, options, overrides=None if spec.is_empty() else spec, force=force
    )
    if json_out:
        print_json(repo.to_dict())
        return
    batching = f"max_batch_size {repo.max_batch_size}" if repo.max_batch_size else "fixed batch"
    console.print(f"wrote {repo.model_dir} ({repo.platform}, {batching})")
    console.print(f"serve it: tritonserver --model-repository={Path(output).resolve()}")
