"""Verdicts as OPC UA nodes (asyncua, ``edgetk[line]``): ``--opcua opc.tcp://127.0.0.1:4840``.

How PLCs and SCADA systems poll: edgetk serves a small node set that changes live, in the
namespace ``urn:edgetk`` (string node ids; ``<src>`` is the source's name, ``<class>`` a label):

| node id | type | what |
| --- | --- | --- |
| ``edgetk.State`` | String | ``running``, then ``stopped`` |
| ``edgetk.Fps`` / ``edgetk.Frames`` | Double / Int64 | the station's rate and frames |
| ``edgetk.Ok`` / ``edgetk.Ng`` | Int64 | verdicts so far |
| ``edgetk.Counts.<class>`` | Int64 | results per class (boxes, or the top class) |
| ``edgetk.Sources.<src>.Verdict`` | String | the last verdict, ``OK`` / ``NG`` |
| ``edgetk.Sources.<src>.Sequence`` | Int64 | +1 per verdict: a PLC sees a new one by it |
| ``edgetk.Sources.<src>.Frame`` / ``.Part`` / ``.Ts`` | Int64 / Int64 / String | which one |
| ``edgetk.Sources.<src>.Event`` | String | the verdict's event (the events file's JSON) |
| ``edgetk.Sources.<src>.Live`` / ``.Lost`` / ``.Fps`` | Boolean / Boolean / Double | status |

The server is anonymous, without security, and binds where the URL says (127.0.0.1 by
default): put it on a machine's control network only behind that network's own protection.
asyncua is LGPL-3.0: it is an optional extra so that edgetk itself stays Apache-2.0 for those
who never install it. The server's event loop runs on a thread of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from typing import Any

import numpy as np

from toolkit.line.urls import bind_socket
from toolkit.line.webstate import event_classes
from toolkit.live.sinks import Sink, SinkError

log = logging.getLogger(__name__)

NAMESPACE = "urn:edgetk"
START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 5.0
_SOURCE_NODES = (
    ("Verdict", "String", ""), ("Sequence", "Int64", 0), ("Frame", "Int64", -1),
    ("Part", "Int64", -1), ("Ts", "String", ""), ("Event", "String", ""),
    ("Live", "Boolean", False), ("Lost", "Boolean", False), ("Fps", "Double", 0.0),
)  # fmt: skip


def node_key(name: str) -> str:
    """A source or class name as it appears in node ids (``rtsp://***@h/x`` -> ``rtsp_h_x``)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name.replace("***@", "")).strip("_")[:64] or "source"


class OpcuaSink(Sink):
    """Serves the node set of the module on ``opc.tcp://host:port/``."""

    name = "opcua"
    needs_image = False

    def __init__(self, host: str = "127.0.0.1", port: int = 4840, *, station: str = "edgetk"):
        bind_socket(host, port, "--opcua").close()  # a taken port: a clear error, first
        self.url, self.station = f"opc.tcp://{host}:{port}/", station
        self.ok = self.ng = 0
        self._seq: dict[str, int] = {}
        self._counts: dict[str, int] = {}
        self._nodes: dict[str, Any] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="opcua", daemon=True)
        self._thread.start()
        self._server: Any = None
        try:
            self._call(self._start(host, port), START_TIMEOUT_S)
        except BaseException:
            self._stop_loop()
            raise
        log.info("OPC UA server on %s", self.url)

    def verdict(self, event: dict[str, Any], image: np.ndarray | None) -> None:
        src = node_key(str(event.get("source", "")))
        self._seq[src] = self._seq.get(src, 0) + 1
        self.ok += event.get("verdict") == "OK"
        self.ng += event.get("verdict") == "NG"
        for label in event_classes(event):
            self._counts[label] = self._counts.get(label, 0) + 1
        values = {
            f"edgetk.Sources.{src}.Verdict": str(event.get("verdict")),
            f"edgetk.Sources.{src}.Sequence": self._seq[src],
            f"edgetk.Sources.{src}.Frame": int(event.get("frame", -1)),
            f"edgetk.Sources.{src}.Part": int(event.get("part", -1)),
            f"edgetk.Sources.{src}.Ts": str(event.get("ts", "")),
            f"edgetk.Sources.{src}.Event": json.dumps(event, separators=(", ", ": ")),
            "edgetk.Ok": self.ok,
            "edgetk.Ng": self.ng,
            **{f"edgetk.Counts.{node_key(k)}": n for k, n in self._counts.items()},
        }
        self._call(self._write(values, src))

    def status(self, report: dict[str, Any]) -> None:
        values: dict[str, Any] = {
            "edgetk.Fps": float(report.get("fps") or 0.0),
            "edgetk.Frames": int(report.get("frames") or 0),
        }
        for name, fig in (report.get("sources") or {}).items():
            src = node_key(name)
            values[f"edgetk.Sources.{src}.Live"] = bool(fig.get("live", not fig.get("lost")))
            values[f"edgetk.Sources.{src}.Lost"] = bool(fig.get("lost", False))
            values[f"edgetk.Sources.{src}.Fps"] = float(fig.get("fps") or 0.0)
        self._call(self._write(values, *{node_key(n) for n in report.get("sources") or {}}))

    def close(self) -> None:
        try:
            if self._server is not None:
                self._call(self._write({"edgetk.State": "stopped"}))
                self._call(self._server.stop(), START_TIMEOUT_S)
        finally:
            self._stop_loop()

    def _call(self, coro: Any, timeout: float = CALL_TIMEOUT_S) -> Any:
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)
        except TimeoutError as e:
            raise SinkError("opcua", f"the OPC UA server did not answer in {timeout:.0f} s") from e
        except OSError as e:
            raise SinkError("opcua", f"OPC UA server on {self.url}: {e.strerror or e}") from e

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()

    async def _start(self, host: str, port: int) -> None:
        from asyncua import Server, ua

        server = Server()
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name(f"edgetk {self.station}")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self._idx = await server.register_namespace(NAMESPACE)
        self._root = await server.nodes.objects.add_object(
            ua.NodeId("edgetk", self._idx), ua.QualifiedName("EdgeTK", self._idx)
        )
        for key, vtype, value in (
            ("State", "String", "running"), ("Fps", "Double", 0.0), ("Frames", "Int64", 0),
            ("Ok", "Int64", 0), ("Ng", "Int64", 0),
        ):  # fmt: skip
            await self._add(self._root, f"edgetk.{key}", key, value, vtype)
        self._counts_folder = await self._folder(self._root, "edgetk.Counts", "Counts")
        self._sources_folder = await self._folder(self._root, "edgetk.Sources", "Sources")
        await server.start()
        self._server = server

    async def _write(self, values: dict[str, Any], *sources: str) -> None:
        from asyncua import ua

        for src in sources:
            if f"edgetk.Sources.{src}.Verdict" not in self._nodes:
                await self._add_source(src)
        for key, value in values.items():
            node = self._nodes.get(key)
            if node is None and key.startswith("edgetk.Counts."):
                node = await self._add(self._counts_folder, key, key.rsplit(".", 1)[1], 0, "Int64")
            if node is not None:
                vtype = getattr(ua.VariantType, self._types[key])
                await node.write_value(ua.Variant(value, vtype))

    async def _add_source(self, src: str) -> None:
        from asyncua import ua

        obj = await self._sources_folder.add_object(
            ua.NodeId(f"edgetk.Sources.{src}", self._idx), ua.QualifiedName(src, self._idx)
        )
        for key, vtype, value in _SOURCE_NODES:
            await self._add(obj, f"edgetk.Sources.{src}.{key}", key, value, vtype)

    async def _folder(self, parent: Any, node_id: str, name: str) -> Any:
        from asyncua import ua

        return await parent.add_folder(
            ua.NodeId(node_id, self._idx), ua.QualifiedName(name, self._idx)
        )

    async def _add(self, parent: Any, node_id: str, name: str, value: Any, vtype: str) -> Any:
        from asyncua import ua

        node = await parent.add_variable(
            ua.NodeId(node_id, self._idx), ua.QualifiedName(name, self._idx),
            ua.Variant(value, getattr(ua.VariantType, vtype)),
        )  # fmt: skip
        self._nodes[node_id] = node
        self._types = getattr(self, "_types", {})
        self._types[node_id] = vtype
        return node
