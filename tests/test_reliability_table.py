"""docs/reliability.md's bad-input table is what the CLI really does (scripts/bad_inputs.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bad_inputs.py"


def _script():
    spec = importlib.util.spec_from_file_location("bad_inputs", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows():
    return _script().run_cases()


def test_every_case_gets_its_exit_code_and_message(rows) -> None:
    for row in rows:
        assert row.code == row.case.code, (row.case.command, row.message)
        assert row.case.message in row.message, (row.case.command, row.message)
        assert row.message, f"{row.case.command}: no message"
        assert "Traceback" not in row.message


def test_the_documented_table_is_current(rows) -> None:
    bad_inputs = _script()
    assert bad_inputs.doc_table() == bad_inputs.render(rows), (
        "docs/reliability.md is stale: run python scripts/bad_inputs.py --write"
    )
