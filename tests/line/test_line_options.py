"""The line outputs' addresses: bad URLs and ports are exit 2, before any model loads."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from toolkit.errors import BadInputError
from toolkit.line.options import LineOutputs, check_line_outputs
from toolkit.line.urls import parse_mqtt, parse_serve


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (LineOutputs(mqtt="http://h/x"), r"--mqtt http://h/x: the URL must start with mqtt://"),
        (LineOutputs(mqtt="mqtt://u:pw@h:99999/x"), r"--mqtt mqtt://\*\*\*@h:99999/x: the port"),
        (LineOutputs(mqtt="mqtt:///x"), r"no broker host"),
        (LineOutputs(mqtt="mqtt://h/a/#"), r"wildcard"),
        (LineOutputs(mqtt="mqtt://h/x?buffer=0"), r"buffer must be a whole number"),
        (LineOutputs(mqtt="mqtt://h/x?qos=2"), r"unknown option qos"),
        (LineOutputs(mqtt="mqtt://h/x", mqtt_ca=Path("ca.pem")), r"--mqtt-ca is for an mqtts://"),
        (LineOutputs(mqtt="mqtts://h/x", mqtt_ca=Path("/no/ca.pem")), r"--mqtt-ca: file not found"),
        (LineOutputs(mqtt_ca=Path("ca.pem")), r"--mqtt-ca needs --mqtt"),
        (LineOutputs(opcua="tcp://127.0.0.1:4840"), r"expected opc.tcp://host:port"),
        (LineOutputs(opcua="opc.tcp://127.0.0.1:x"), r"the port must be a number"),
        (LineOutputs(serve="127.0.0.1:0"), r"--serve 127.0.0.1:0: expected \[host:\]port"),
        (LineOutputs(serve="localhost:http"), r"expected \[host:\]port"),
        (LineOutputs(serve="bad host!:8080"), r"is not a host name"),
        (LineOutputs(serve_token="t"), r"--serve-token needs --serve"),
        (LineOutputs(serve="127.0.0.1:48811", opcua="opc.tcp://127.0.0.1:48811"), "same port"),
    ],
)
def test_bad_line_outputs_are_bad_input(line: LineOutputs, message: str) -> None:
    with pytest.raises(BadInputError, match=message) as e:
        check_line_outputs(line)
    assert e.value.exit_code == 2
    assert "pw" not in str(e.value)


@pytest.mark.parametrize("option", ["serve", "opcua"])
def test_an_occupied_port_is_one_clear_line(option: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        addr = f"127.0.0.1:{port}" if option == "serve" else f"opc.tcp://127.0.0.1:{port}"
        with pytest.raises(BadInputError) as e:
            check_line_outputs(LineOutputs(**{option: addr}))
    assert str(e.value) == f"--{option}: port {port} on 127.0.0.1 is already in use"


def test_addresses_parse_with_defaults() -> None:
    t = parse_mqtt("mqtts://line%401:p%40ss@broker.local/plant/line1?buffer=50&client_id=cam")
    assert (t.tls, t.host, t.port, t.prefix) == (True, "broker.local", 8883, "plant/line1")
    assert (t.username, t.password, t.buffer, t.client_id) == ("line@1", "p@ss", 50, "cam")
    assert str(t) == "mqtts://line@1:***@broker.local:8883/plant/line1"
    assert parse_mqtt("mqtt://h").prefix == "edgetk" and parse_mqtt("mqtt://h").port == 1883
    assert parse_serve("8080") == ("127.0.0.1", 8080)  # loopback unless told otherwise
    assert parse_serve("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_serve("[::1]:9000") == ("::1", 9000)
