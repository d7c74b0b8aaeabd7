"""`edgetk serve --triton` and the triton:// client, against a real Triton server (PyTriton).

One server per module (start-up ~4 s): the tiny classifier in ort-cpu, served on free
loopback ports with a long queue delay, so that requests of two clients meet in one batch.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from _cli import edgetk_script
from _triton_helpers import free_ports, pytriton_missing

from toolkit.backends import open_session
from toolkit.backends.triton import TritonSession, parse_url
from toolkit.errors import BackendUnavailableError, BadInputError

MISSING = pytriton_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))
MAX_BATCH = 4


@pytest.fixture(scope="module")
def server(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory):
    from toolkit.serve import ServeOptions, serve_triton

    grpc, http, metrics = free_ports(3)
    log = tmp_path_factory.mktemp("triton") / "server.log"
    options = ServeOptions(name="tiny", grpc_port=grpc, http_port=http, metrics_port=metrics,
                           max_batch=MAX_BATCH, queue_delay_us=20_000, log_file=log)  # fmt: skip
    session = open_session(tiny_onnx, "ort-cpu", threads=1)
    try:
        srv = serve_triton(session, options)
    except Exception as e:
        session.close()
        tail = log.read_text(errors="replace")[-300:] if log.exists() else ""
        pytest.skip(f"the Triton server does not start here: {e} {tail}")
    yield srv
    srv.close()
    session.close()


def _metric(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}\{{[^}}]*model=\"tiny\"[^}}]*\}} (\S+)$",
                                            text, re.MULTILINE))  # fmt: skip


@pytest.mark.parametrize("shared_memory", [True, False])
def test_client_matches_the_in_process_session(server, tiny_onnx: Path, shared_memory: bool):
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    with (
        open_session(tiny_onnx, "ort-cpu") as ref,
        TritonSession(server.url, shared_memory=shared_memory) as s,
    ):
        assert s.describe()["shared_memory"] is shared_memory
        assert s.spec == ref.spec  # from the server's config: no flags
        assert [(t.name, t.shape) for t in s.inputs] == [(t.name, t.shape) for t in ref.inputs]
        np.testing.assert_allclose(s.infer(x)["logits"], ref.infer(x)["logits"], atol=1e-5)


def test_a_batch_over_the_servers_max_is_sent_in_chunks(server, tiny_onnx: Path):
    x = np.random.default_rng(1).standard_normal((MAX_BATCH + 3, 3, 32, 32)).astype(np.float32)
    with open_session(tiny_onnx, "ort-cpu") as ref, open_session("-", server.url) as s:
        assert s.backend == "triton" and s.describe()["server_max_batch"] == MAX_BATCH
        np.testing.assert_allclose(s.infer(x)["logits"], ref.infer(x)["logits"], atol=1e-5)


def test_unknown_model_and_closed_port_are_unavailable(server):
    with pytest.raises(BackendUnavailableError, match=r"not ready|not reachable"):
        TritonSession(server.url.rsplit("/", 1)[0] + "/nope")
    (port,) = free_ports(1)
    with pytest.raises(BackendUnavailableError, match="not reachable"):
        TritonSession(f"triton://127.0.0.1:{port}/tiny")


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("triton://host:9001/m", ("host", 9001, "m", "")),
        ("triton://10.0.0.5/m/2", ("10.0.0.5", 8001, "m", "2")),
        ("triton://[::1]:8001/m", ("[::1]", 8001, "m", "")),
    ],
)
def test_parse_url(url: str, want: tuple):
    u = parse_url(url)
    assert (u.host, u.port, u.model, u.version) == want


@pytest.mark.parametrize("url", ["triton://", "triton://h:1", "triton://h:x/m", "triton://h/a/b"])
def test_bad_urls_are_bad_input(url: str):
    with pytest.raises(BadInputError, match="triton://host:port/model"):
        parse_url(url)


@pytest.mark.slow
def test_two_stations_share_one_server_and_are_batched(server, tmp_path: Path):
    """`edgetk run --backend triton://...` from two processes at once: both finish, both get
    the model's results, and the server ran batches of more than one request."""
    metrics = urllib.request.urlopen(server.metrics_url, timeout=10).read().decode()
    before = (_metric(metrics, "nv_inference_count"), _metric(metrics, "nv_inference_exec_count"))
    cmd = [edgetk_script(), "run", "tiny", "--source", "synthetic", "--backend", server.url,
           "--max-frames", "40", "--headless", "--json"]  # fmt: skip
    procs = [
        subprocess.Popen(
            [*cmd, "--events", str(tmp_path / f"ev{i}.jsonl")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-800:]
        assert json.loads(out)["frames"] == 40
    for i in range(2):
        events = [json.loads(line) for line in (tmp_path / f"ev{i}.jsonl").read_text().splitlines()]
        assert len(events) == 40
        assert all(e["top"][0]["label"] in ("ok", "scratch", "spot") for e in events)
    metrics = urllib.request.urlopen(server.metrics_url, timeout=10).read().decode()
    inferences = _metric(metrics, "nv_inference_count") - before[0]
    executions = _metric(metrics, "nv_inference_exec_count") - before[1]
    assert inferences >= 80
    assert executions < inferences  # some batches held more than one request
