"""A real Mosquitto broker for the tests: a loopback port, a password file, a temp config."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

USER, PASSWORD = "edgetk", "s3cret-pw"


def mosquitto_missing() -> str | None:
    for tool in ("mosquitto", "mosquitto_passwd"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (Debian package mosquitto)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """mosquitto on 127.0.0.1:``port`` with a password file and persistence in ``folder``."""

    def __init__(self, folder: Path, tls: tuple[Path, Path, Path] | None = None) -> None:
        self.folder, self.port = folder, free_port()
        folder.mkdir(parents=True, exist_ok=True)
        pw = folder / "passwd"
        pw.write_text("")
        subprocess.run(["mosquitto_passwd", "-b", str(pw), USER, PASSWORD], check=True)
        os.chmod(pw, 0o600)
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"user {pwd.getpwuid(os.getuid()).pw_name}",  # as root it would drop to 'mosquitto'
            "allow_anonymous false",
            f"password_file {pw}",
            "persistence true",
            f"persistence_location {folder}/",
            "autosave_interval 1",
            "max_queued_messages 100000",
        ]
        if tls is not None:
            ca, cert, key = tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Broker:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if sig == signal.SIGSTOP:
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None


class Subscriber:
    """A paho client that keeps every message of ``topics`` (a persistent QoS-1 session)."""

    def __init__(self, port: int, *topics: str, client_id: str = "test-sub") -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, Any, bool]] = []
        self.lock, self.topics = threading.Lock(), topics
        self.connected = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
            protocol=mqtt.MQTTv311, clean_session=False,
        )  # fmt: skip
        self.client.username_pw_set(USER, PASSWORD)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        assert self.connected.wait(10), "the subscriber could not connect"

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            for t in self.topics:
                client.subscribe(t, qos=1)
            self.connected.set()

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            payload = msg.payload.decode()
        with self.lock:
            self.messages.append((msg.topic, payload, bool(msg.retain)))

    def on(self, topic: str) -> list[Any]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def wait_for(self, topic: str, n: int, timeout: float = 15) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.on(topic)
            if len(got) >= n:
                return got
            time.sleep(0.02)
        return self.on(topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(port: int, topic: str, timeout: float = 5) -> Any:
    """The retained message on ``topic`` now (a fresh clean client), or None."""
    sub = Subscriber(port, topic, client_id=f"probe-{time.monotonic_ns()}")
    try:
        got = sub.wait_for(topic, 1, timeout)
        return got[-1] if got else None
    finally:
        sub.close()
