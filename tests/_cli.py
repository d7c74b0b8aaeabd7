"""Running edgetk in tests: the installed console script (as a user does) or Typer's runner."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


def edgetk_script() -> str:
    """The console script installed beside this interpreter (or on PATH)."""
    here = Path(sys.executable).with_name("edgetk")
    found = str(here) if here.exists() else shutil.which("edgetk")
    if found is None:
        pytest.fail("the edgetk console script is not installed (pip install -e .)")
    return found


def quantize_cli(*args: object) -> tuple[int, str, str]:
    """``edgetk quantize ARGS`` through Typer's runner: (exit code, stdout, stderr)."""
    from typer.testing import CliRunner

    from toolkit.cli.app import app

    result = CliRunner().invoke(app, ["quantize", *[str(a) for a in args]])
    return result.exit_code, result.stdout, result.stderr
