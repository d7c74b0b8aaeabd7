"""Fixtures for the line tests: a Mosquitto broker per module, tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory):
    from _brokers import Broker, mosquitto_missing

    why = mosquitto_missing()
    if why is not None:
        pytest.skip(why)
    b = Broker(tmp_path_factory.mktemp("mosquitto")).start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def det_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The constant detector (two objects, scratch and spot, in every frame)."""
    from _live_helpers import const_detector

    return const_detector(tmp_path_factory.mktemp("det") / "det.onnx")
