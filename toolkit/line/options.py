"""The line outputs of a run (``--mqtt``, ``--opcua``, ``--serve``): parsed, checked before
any model loads, then opened as sinks of the live loop.

Example:
    >>> line = LineOutputs(mqtt="mqtt://edgetk:pw@127.0.0.1:1883/line1", serve="127.0.0.1:8080")
    >>> check_line_outputs(line)          # BadInputError (exit 2) on a bad URL or a taken port
    >>> sinks = open_line_sinks(line)     # run_live(..., sinks=sinks)
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import BadInputError, MissingDependencyError
from toolkit.line.urls import bind_socket, parse_mqtt, parse_opcua, parse_serve
from toolkit.live.sinks import Sink


@dataclass(frozen=True)
class LineOutputs:
    """Where verdicts go beyond files (None: off).

    Attributes:
        mqtt: ``mqtt[s]://[user[:password]@]host[:port][/prefix][?buffer=N&client_id=ID]``.
        mqtt_ca: the CA file that signs an ``mqtts://`` broker's certificate.
        opcua: ``opc.tcp://host:port`` the OPC UA server listens on.
        serve: ``[host:]port`` of the operator web view (host default 127.0.0.1).
        serve_token: a token the web view asks for (page, streams, events, metrics).
    """

    mqtt: str | None = None
    mqtt_ca: Path | None = None
    opcua: str | None = None
    serve: str | None = None
    serve_token: str | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.mqtt, self.opcua, self.serve))


def check_line_outputs(line: LineOutputs) -> None:
    """Check every line output before anything loads: URLs, ports, extras installed.

    Raises:
        BadInputError: a bad URL or port, a port already taken (web view, OPC UA), a missing
            CA file, or the extra to install (``edgetk[line]``, ``edgetk[serve]``).
    """
    if line.mqtt is not None:
        parse_mqtt(line.mqtt, line.mqtt_ca)
        _need("paho.mqtt", "line", "--mqtt")
    elif line.mqtt_ca is not None:
        raise BadInputError("--mqtt-ca needs --mqtt mqtts://...")
    listening: list[tuple[str, str, int]] = []
    if line.opcua is not None:
        listening.append(("--opcua", *parse_opcua(line.opcua)))
        _need("asyncua", "line", "--opcua")
    if line.serve is not None:
        listening.append(("--serve", *parse_serve(line.serve)))
        for mod in ("starlette", "uvicorn", "prometheus_client"):
            _need(mod, "serve", "--serve")
    elif line.serve_token is not None:
        raise BadInputError("--serve-token needs --serve")
    if len({(h, p) for _, h, p in listening}) < len(listening):
        raise BadInputError("--opcua and --serve ask for the same port")
    for option, host, port in listening:
        bind_socket(host, port, option).close()


def open_line_sinks(line: LineOutputs, *, station: str = "edgetk") -> list[Sink]:
    """The sinks ``line`` asks for, opened (servers listening, broker connecting).

    ``station`` names the station in the status payloads. Check first with
    :func:`check_line_outputs`; a sink that fails to open closes those opened before it.
    """
    check_line_outputs(line)
    sinks: list[Sink] = []
    try:
        if line.mqtt is not None:
            from toolkit.line.mqtt import MqttSink

            sinks.append(MqttSink(parse_mqtt(line.mqtt, line.mqtt_ca), station=station))
        if line.opcua is not None:
            from toolkit.line.opcua import OpcuaSink

            sinks.append(OpcuaSink(*parse_opcua(line.opcua), station=station))
        if line.serve is not None:
            from toolkit.line.web import WebSink

            host, port = parse_serve(line.serve)
            sinks.append(WebSink(host, port, token=line.serve_token, station=station))
    except BaseException:
        for s in sinks:
            s.close()
        raise
    return sinks


def _need(module: str, extra: str, option: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(module, extra, option)
