"""References to the hand-set models of the explain tests (tests/explain/_models.py)."""

from __future__ import annotations

from pathlib import Path

MODELS = Path(__file__).with_name("explain") / "_models.py"


def ref(name: str) -> str:
    """``tests/explain/_models.py:NAME``: a PyTorch reference edgetk loads."""
    return f"{MODELS}:{name}"
