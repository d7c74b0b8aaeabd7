"""The line outputs' addresses: ``--mqtt``, ``--opcua`` and ``--serve`` parsed and checked,
and the listening socket a server binds (a port in use is a one-line error)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from toolkit.errors import BadInputError
from toolkit.live.redact import redact_url

MQTT_PORTS = {"mqtt": 1883, "mqtts": 8883}
OPCUA_PORT = 4840
DEFAULT_PREFIX = "edgetk"


@dataclass(frozen=True)
class MqttTarget:
    """A parsed ``--mqtt`` URL; ``str()`` never shows the password."""

    tls: bool
    host: str
    port: int
    prefix: str
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    buffer: int = 1000
    ca_file: Path | None = None

    def __str__(self) -> str:
        user = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}/{self.prefix}"


def parse_mqtt(url: str, ca_file: Path | None = None) -> MqttTarget:
    """``--mqtt URL`` (and ``--mqtt-ca``) as a :class:`MqttTarget`; BadInputError if bad."""
    shown = redact_url(url)
    parts = urlsplit(url)
    if parts.scheme not in MQTT_PORTS:
        raise BadInputError(f"--mqtt {shown}: the URL must start with mqtt:// or mqtts://")
    host = parts.hostname
    if not host:
        raise BadInputError(f"--mqtt {shown}: no broker host (mqtt://host:1883/prefix)")
    port = _port(parts, "--mqtt", shown, MQTT_PORTS[parts.scheme])
    prefix = parts.path.strip("/") or DEFAULT_PREFIX
    if "#" in url or "+" in prefix or "//" in prefix:
        raise BadInputError(f"--mqtt {shown}: the topic prefix '{prefix}' has a wildcard or //")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"buffer", "client_id"}
    if unknown:
        raise BadInputError(f"--mqtt {shown}: unknown option {sorted(unknown)[0]} "
                            "(known: buffer, client_id)")  # fmt: skip
    buffer = query.get("buffer", "1000")
    if not buffer.isdigit() or int(buffer) < 1:
        raise BadInputError(f"--mqtt {shown}: buffer must be a whole number >= 1, got {buffer}")
    if ca_file is not None:
        if parts.scheme != "mqtts":
            raise BadInputError("--mqtt-ca is for an mqtts:// broker (TLS)")
        if not Path(ca_file).is_file():
            raise BadInputError(f"--mqtt-ca: file not found: {ca_file}")
    return MqttTarget(
        tls=parts.scheme == "mqtts", host=host, port=port, prefix=prefix,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        client_id=query.get("client_id"), buffer=int(buffer),
        ca_file=Path(ca_file) if ca_file is not None else None,
    )  # fmt: skip


def parse_opcua(url: str) -> tuple[str, int]:
    """``--opcua opc.tcp://host:port`` as (host, port); BadInputError if bad."""
    parts = urlsplit(url)
    shown = redact_url(url)
    if parts.scheme != "opc.tcp" or not parts.hostname:
        raise BadInputError(f"--opcua {shown}: expected opc.tcp://host:port (e.g. "
                            f"opc.tcp://127.0.0.1:{OPCUA_PORT})")  # fmt: skip
    if parts.username or parts.password:
        raise BadInputError(f"--opcua {shown}: no credentials in the URL (the server is anonymous)")
    return parts.hostname, _port(parts, "--opcua", shown, OPCUA_PORT)


def parse_serve(address: str) -> tuple[str, int]:
    """``--serve [host:]port`` as (host, port), host 127.0.0.1 unless given."""
    text = address.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise BadInputError(f"--serve {address}: expected [host:]port with a port in 1-65535 "
                            "(e.g. 127.0.0.1:8080)")  # fmt: skip
    _check_host(host, "--serve", address)
    return host, int(port_text)


def bind_socket(host: str, port: int, option: str) -> socket.socket:
    """A TCP socket bound to (host, port), not yet listening; BadInputError if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        why = "is already in use" if e.errno == 98 else f"cannot be bound ({e.strerror or e})"
        raise BadInputError(f"{option}: port {port} on {host} {why}") from None
    return sock


def _port(parts: object, option: str, shown: str, default: int) -> int:
    try:
        port = parts.port  # type: ignore[attr-defined]
    except ValueError:
        raise BadInputError(f"{option} {shown}: the port must be a number in 1-65535") from None
    if port == 0:
        raise BadInputError(f"{option} {shown}: the port must be a number in 1-65535")
    return int(port) if port is not None else default


def _check_host(host: str, option: str, shown: str) -> None:
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if not host.replace("-", "").replace(".", "").isalnum():
        raise BadInputError(f"{option} {shown}: '{host}' is not a host name or address")
