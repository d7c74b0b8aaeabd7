"""Fixtures of the explain tests: the hand-set models of ``_models.py`` as references and an
ONNX file, and their specs."""

from __future__ import annotations

from pathlib import Path

import pytest
from _explain_refs import ref


@pytest.fixture(scope="session")
def cue_spec():
    from toolkit.model.spec import SpecOverrides

    return SpecOverrides(imgsz=(32, 32), channels=1, labels=("ok", "cue"))


@pytest.fixture(scope="session")
def blob_spec():
    from toolkit.model.spec import SpecOverrides

    return SpecOverrides(task="detect", imgsz=(64, 64), labels=("blob", "never"),
                         output_format="yolov8", resize="stretch")  # fmt: skip


@pytest.fixture(scope="session")
def cue_onnx(tmp_path_factory: pytest.TempPathFactory, cue_spec) -> Path:
    """CueNet as an edgetk ONNX file (its spec embedded)."""
    from toolkit.export import export_onnx

    out = tmp_path_factory.mktemp("cue") / "cue.onnx"
    export_onnx(ref("CueNet"), out, overrides=cue_spec)
    return out
