"""OPC UA during a real run: an asyncua client on loopback reads nodes that change."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from _brokers import free_port
from _runs import Run, wait_until

pytest.importorskip("asyncua", reason="asyncua (edgetk[line]) is not installed")

from toolkit.line.opcua import NAMESPACE, OpcuaSink, node_key


async def _read(url: str, keys: list[str]) -> dict[str, object]:
    from asyncua import Client

    async with Client(url, timeout=10) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        return {k: await client.get_node(f"ns={idx};s={k}").read_value() for k in keys}


@pytest.mark.slow
def test_a_client_reads_nodes_that_change_during_the_run(det_onnx: Path) -> None:
    sink = OpcuaSink("127.0.0.1", free_port(), station="line1")
    run = Run(det_onnx, "synthetic:size=64x64", [sink], reject="spot")
    src = "edgetk.Sources.synthetic"
    keys = [f"{src}.Sequence", f"{src}.Verdict", f"{src}.Frame", "edgetk.Ng", "edgetk.State",
            "edgetk.Counts.spot", "edgetk.Fps", f"{src}.Live"]  # fmt: skip
    try:
        first = wait_until(
            lambda: (v := _try_read(sink.url, keys)) and v["edgetk.Fps"] > 0 and v, 30, "status"
        )
        time.sleep(0.5)
        second = asyncio.run(_read(sink.url, keys))
    finally:
        summary = run.finish()
    assert first["edgetk.State"] == "running" and first[f"{src}.Verdict"] == "NG"
    assert second[f"{src}.Sequence"] > first[f"{src}.Sequence"] > 0  # it changes live
    assert second["edgetk.Ng"] > first["edgetk.Ng"] and second[f"{src}.Live"] is True
    assert second["edgetk.Counts.spot"] >= second["edgetk.Ng"]
    assert summary["ng"] == sink.ng >= second["edgetk.Ng"]


def _try_read(url: str, keys: list[str]) -> dict[str, object] | None:
    try:
        return asyncio.run(_read(url, keys))
    except Exception:  # the source's nodes appear with its first verdict
        return None


def test_node_keys_are_plain() -> None:
    assert node_key("rtsp://***@10.0.0.5:554/cam") == "rtsp_10_0_0_5_554_cam"
    assert node_key("cam-1") == "cam-1" and node_key("") == "source"
