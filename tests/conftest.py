"""Shared fixtures: tiny models and data made on the spot (nothing is downloaded)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache_home(tmp_path_factory: pytest.TempPathFactory):
    """The tests' edgetk cache (benchmark exports, the GEMM floor) lives in a session folder,
    never in the user's ~/.cache; subprocesses inherit it through the environment."""
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache-home"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


def _tiny_cnn(num_classes: int = 3, in_chans: int = 3):
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(in_chans, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, num_classes),
    ).eval()


@pytest.fixture(scope="session")
def tiny_cnn():
    """A factory of tiny, seeded classifiers (3 classes, 3 channels by default)."""
    return _tiny_cnn


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 3-class classifier as an edgetk ONNX file (32x32, dynamic batch, with spec).

    Built with torch.onnx.export directly so that it does not depend on edgetk's exporter.
    """
    import onnx
    import torch

    from toolkit.model.modelfile import write_spec
    from toolkit.model.spec import InputSpec, ModelSpec, OutputSpec, PreprocessSpec

    out = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    model = _tiny_cnn()
    x = torch.randn(1, 3, 32, 32)
    torch.onnx.export(
        model,
        (x,),
        str(out),
        input_names=["images"],
        output_names=["logits"],
        dynamic_shapes={"input": {0: torch.export.Dim("batch", min=1, max=64)}},
        external_data=False,
        dynamo=True,
    )
    proto = onnx.load(str(out))
    spec = ModelSpec(
        task="classify",
        input=InputSpec(name=proto.graph.input[0].name, shape=(None, 3, 32, 32)),
        preprocess=PreprocessSpec(resize="stretch", mean=(0.5,) * 3, std=(0.25,) * 3),
        labels=("ok", "scratch", "spot"),
        output=OutputSpec(format="logits"),
    )
    write_spec(proto, spec)
    onnx.save(proto, str(out))
    return out


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture()
def rtsp_server():
    """A factory: start (and finally kill) GStreamer RTSP servers on one free port."""
    from _live_helpers import free_port, rtsp_available, start_server, stop_server

    why = rtsp_available()
    if why is not None:
        pytest.skip(why)
    procs: list[subprocess.Popen[str]] = []
    port = free_port()

    def start(*creds: str) -> subprocess.Popen[str]:
        proc = start_server(port, *creds)
        procs.append(proc)
        return proc

    start.port = port  # type: ignore[attr-defined]
    yield start
    for p in procs:
        if p.poll() is None:
            stop_server(p)
