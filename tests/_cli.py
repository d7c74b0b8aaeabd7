"""The installed console script, for tests that run edgetk as a user does."""

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
