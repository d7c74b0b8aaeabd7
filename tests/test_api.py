"""The public API: every exported name resolves, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import toolkit


@pytest.mark.parametrize("name", toolkit.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(toolkit, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        _ = toolkit.no_such_thing


def test_import_and_help_load_no_heavy_modules() -> None:
    code = (
        "import sys, toolkit, toolkit.cli.app\n"
        "heavy = {'torch', 'onnxruntime', 'tensorrt'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
