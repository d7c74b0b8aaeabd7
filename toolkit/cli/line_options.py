"""The line outputs of ``edgetk run``: ``--mqtt``, ``--mqtt-ca``, ``--opcua``, ``--serve``,
``--serve-token`` (an option group for :func:`toolkit.cli.options.spec_options`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from toolkit.line.options import LineOutputs

MqttOpt = Annotated[
    str | None,
    typer.Option(
        "--mqtt", envvar="EDGETK_MQTT",
        help="Verdicts to an MQTT broker: mqtt[s]://user:pass@host:port/prefix (QoS 1, retained "
        "status, last will); also from $EDGETK_MQTT, which keeps the password off the command line.",
    ),
]  # fmt: skip
MqttCaOpt = Annotated[
    Path | None, typer.Option("--mqtt-ca", help="CA file of an mqtts:// broker's certificate.")
]
OpcuaOpt = Annotated[
    str | None,
    typer.Option("--opcua", help="Serve the verdicts as OPC UA nodes: opc.tcp://127.0.0.1:4840."),
]
ServeOpt = Annotated[
    str | None,
    typer.Option(
        "--serve",
        help="Operator web view, /metrics, /health, /events on [host:]port (default host "
        "127.0.0.1; another address must be given).",
    ),
]
ServeTokenOpt = Annotated[
    str | None,
    typer.Option(
        "--serve-token", envvar="EDGETK_SERVE_TOKEN",
        help="A token the web view asks for (?token=, Bearer, or the cookie); /health stays open.",
    ),
]  # fmt: skip


def line_options(
    mqtt: MqttOpt = None,
    mqtt_ca: MqttCaOpt = None,
    opcua: OpcuaOpt = None,
    serve: ServeOpt = None,
    serve_token: ServeTokenOpt = None,
) -> LineOutputs:
    """The line outputs asked for (checked later by ``check_line_outputs``)."""
    from toolkit.line.options import LineOutputs

    return LineOutputs(mqtt, mqtt_ca, opcua, serve, serve_token)
