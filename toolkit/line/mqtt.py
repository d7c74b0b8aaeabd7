"""Verdicts to an MQTT broker (paho-mqtt, ``edgetk[line]``): ``--mqtt mqtt://user:pw@host/prefix``.

Topics (``prefix`` from the URL's path, default ``edgetk``):

- ``<prefix>/verdict``: one message per verdict event, QoS 1, the events file's JSON line
  (a frame's event, or a part's with ``"kind": "part"`` under ``--verdict per-part``);
- ``<prefix>/status``: retained, QoS 1: ``{"state": "running", "station", "ts", "fps",
  "frames", "ok", "ng", "counts", "sources", "mqtt"}`` about once a second; ``"stopped"``
  with the final figures on a clean exit; ``{"state": "offline"}`` as the last will, which
  the broker publishes when the process dies or its link goes (kill -9, power, cable).

paho's network thread connects, reconnects with backoff (1 s doubling to 30 s) and holds up to
``buffer`` QoS-1 messages while the broker is away (sent in order on reconnect); past that a
message is dropped and counted (``dropped``). Nothing here waits on the network: this sink's
hooks run on their own thread anyway (:mod:`toolkit.live.fanout`). Credentials go to the broker
only: the URL is shown as ``mqtt://user:***@host:port/prefix``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

import numpy as np

from toolkit.line.urls import MqttTarget
from toolkit.live.sinks import Sink, SinkError
from toolkit.live.sources import utc_iso

log = logging.getLogger(__name__)

RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
KEEPALIVE_S = 10
CLOSE_DRAIN_S = 3.0
_REFUSED = {
    134: "bad user name or password",
    135: "not authorized (check the user name and password)",
}  # CONNACK reason codes


class MqttSink(Sink):
    """Publishes verdicts and the station's status to an MQTT broker (see the module).

    Attributes:
        published: verdict messages handed to the client; delivered: acknowledged by the
            broker; dropped: verdicts lost (buffer full, or still unsent at close);
            connects / disconnects: the link's history.
    """

    name = "mqtt"
    needs_image = False

    def __init__(self, target: MqttTarget, *, station: str = "edgetk") -> None:
        import paho.mqtt.client as mqtt

        self.target, self.station = target, station
        self.verdict_topic = f"{target.prefix}/verdict"
        self.status_topic = f"{target.prefix}/status"
        self.published = self.delivered = self.dropped = 0
        self.connects = self.disconnects = 0
        self._inflight: list[int] = []  # message ids of verdicts not yet acknowledged
        self._acked: set[int] = set()  # acknowledged message ids (paho's thread adds them)
        self._lock = threading.Lock()
        self._refused: str | None = None
        self._last_status: dict[str, Any] = {}
        self._last_acked: set[int] = set()  # what the latest _prune took
        self._client = self._make_client(mqtt)
        self._client.connect_async(target.host, target.port, keepalive=KEEPALIVE_S)
        self._client.loop_start()
        log.info("mqtt: publishing to %s (%s)", target, self.verdict_topic)

    def _make_client(self, mqtt: Any) -> Any:
        t = self.target
        client_id = t.client_id or f"edgetk-{self.station}-{os.getpid()}"
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
            protocol=mqtt.MQTTv311,
        )  # fmt: skip
        if t.username is not None:
            client.username_pw_set(t.username, t.password)
        if t.tls:
            client.tls_set(ca_certs=str(t.ca_file) if t.ca_file else None)
        client.max_queued_messages_set(t.buffer)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.will_set(self.status_topic, self._status_payload("offline"), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    @property
    def connected(self) -> bool:
        return bool(self._client.is_connected())

    def verdict(self, event: dict[str, Any], image: np.ndarray | None) -> None:
        self._check()
        payload = json.dumps(event, separators=(", ", ": "))
        info = self._client.publish(self.verdict_topic, payload, qos=1)
        if self._queue_full(info.rc):
            self.dropped += 1
            return
        self.published += 1
        self._inflight.append(info.mid)
        if len(self._inflight) > 64:
            self._prune()

    def status(self, report: dict[str, Any]) -> None:
        self._check()
        self._prune()
        self._last_status = report
        self._client.publish(
            self.status_topic, self._status_payload("running", report), qos=1, retain=True
        )

    def close(self) -> None:
        """The retained status says ``stopped``; wait a little for what is unsent, then go."""
        try:
            info = self._client.publish(
                self.status_topic, self._status_payload("stopped", self._last_status), qos=1,
                retain=True,
            )  # fmt: skip
            t0, seen = time.monotonic(), set()
            while self._prune() or info.mid not in (seen := seen | self._last_acked):
                waited = time.monotonic() - t0
                if waited > CLOSE_DRAIN_S or (waited > 0.5 and not self.connected):
                    break  # no broker now: waiting brings nothing
                time.sleep(0.02)
            lost = self._prune()
            self.dropped += lost
            self._inflight = []
            if lost:
                log.warning("mqtt: %d verdict messages were not delivered to %s", lost,
                            self.target)  # fmt: skip
            self._client.disconnect()
        finally:
            self._client.loop_stop()

    def _prune(self) -> int:
        """Count what the broker acknowledged; returns the verdicts still unacknowledged."""
        with self._lock:
            acked, self._acked = self._acked, set()
        self._last_acked = acked
        left = [m for m in self._inflight if m not in acked]
        self.delivered += len(self._inflight) - len(left)
        self._inflight = left
        return len(left)

    def _check(self) -> None:
        if self._refused is not None:
            raise SinkError("mqtt", f"the broker {self.target} refused the connection: "
                            f"{self._refused}")  # fmt: skip

    @staticmethod
    def _queue_full(rc: int) -> bool:
        import paho.mqtt.client as mqtt

        return rc == mqtt.MQTT_ERR_QUEUE_SIZE

    def _status_payload(self, state: str, report: dict[str, Any] | None = None) -> str:
        r = report or {}
        body: dict[str, Any] = {"state": state, "station": self.station, "ts": utc_iso(time.time())}
        if state != "offline":
            body.update({k: r[k] for k in ("frames", "fps", "ok", "ng", "counts") if k in r})
            body["sources"] = {
                name: {k: s[k] for k in ("live", "lost", "fps", "frames", "ok", "ng") if k in s}
                for name, s in (r.get("sources") or {}).items()
            }
            body["mqtt"] = {"published": self.published, "dropped": self.dropped}
        return json.dumps(body, separators=(", ", ": "))

    # paho's callbacks (its network thread)
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            code = int(getattr(reason, "value", 0))
            if code in _REFUSED:
                self._refused = _REFUSED[code]
                client.disconnect()  # a wrong password does not get better by retrying
            log.warning("mqtt: %s refused the connection: %s", self.target, reason)
            return
        self.connects += 1
        if self.connects > 1:
            log.warning("mqtt: reconnected to %s", self.target)
        client.publish(
            self.status_topic, self._status_payload("running", self._last_status), qos=1,
            retain=True,
        )  # fmt: skip

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, p: Any) -> None:
        self.disconnects += 1
        if reason.is_failure:
            log.warning("mqtt: lost %s (%s); reconnecting with backoff", self.target, reason)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, p: Any) -> None:
        with self._lock:
            self._acked.add(mid)
