"""`edgetk serve MODEL --triton`: a Session as a Triton model (PyTriton), batched across clients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from toolkit.cli import options as opt
from toolkit.cli.common import cli_command, err_console, print_json

if TYPE_CHECKING:
    from toolkit.model.spec import SpecOverrides

ModelArg = Annotated[str, typer.Argument(help="An .onnx file or .engine to serve.")]
TritonOpt = Annotated[
    bool, typer.Option("--triton", help="Serve through Triton (PyTriton); the only server here.")
]
NameOpt = Annotated[str, typer.Option("--name", help="The model's name on the server.")]
HostOpt = Annotated[
    str, typer.Option("--host", help="Address to bind (default loopback; 0.0.0.0 for stations).")
]
GrpcOpt = Annotated[int, typer.Option("--grpc-port", help="gRPC port (the stations' port).")]
HttpOpt = Annotated[int, typer.Option("--http-port", help="HTTP port.")]
MetricsOpt = Annotated[int, typer.Option("--metrics-port", help="Prometheus /metrics port.")]
MaxBatchOpt = Annotated[int, typer.Option("--max-batch", help="Triton's max_batch_size.")]
DelayOpt = Annotated[
    int, typer.Option("--queue-delay", help="Dynamic batcher queue delay, microseconds.")
]
HintOpt = Annotated[
    str | None, typer.Option("--hint", help="OpenVINO performance hint: latency | throughput.")
]


@cli_command
@opt.spec_options()
def command(
    model: ModelArg,
    triton: TritonOpt = False,
    backend: opt.BackendOpt = "auto",
    name: NameOpt = "model",
    host: HostOpt = "127.0.0.1",
    grpc_port: GrpcOpt = 8001,
    http_port: HttpOpt = 8000,
    metrics_port: MetricsOpt = 8002,
    max_batch: MaxBatchOpt = 8,
    queue_delay: DelayOpt = 2000,
    threads: opt.ThreadsOpt = None,
    hint: HintOpt = None,
    spec: SpecOverrides = opt.GROUP,
    json_out: opt.JsonOpt = False,
    verbose: opt.VerboseOpt = False,
) -> None:
    """Serve MODEL's Session as a Triton model until Ctrl-C; stations connect with
    --backend triton://HOST:GRPC_PORT/NAME.

    Example: edgetk serve defects.onnx --triton --backend openvino --host 0.0.0.0
    """
    from toolkit.backends import open_session
    from toolkit.errors import BadInputError
    from toolkit.serve import ServeOptions, serve_triton

    if not triton:
        raise BadInputError("give --triton (the one serving protocol edgetk has)")
    options = ServeOptions(
        name=name, host=host, grpc_port=grpc_port, http_port=http_port,
        metrics_port=metrics_port, max_batch=max_batch, queue_delay_us=queue_delay,
    )  # fmt: skip
    overrides = None if spec.is_empty() else spec
    session = open_session(model, backend, overrides=overrides, threads=threads, hint=hint)
    with session as s, serve_triton(s, options) as server:
        info = {"url": server.url, "metrics": server.metrics_url, "session": s.describe()}
        if json_out:
            print_json(info)
        err_console.print(f"serving {model} ({s.backend}) at {server.url}; Ctrl-C stops")
        server.serve_forever()
