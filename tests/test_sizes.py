"""Small modules and functions: no module over 400 lines, no function over 60.

A function's lines run from its first decorator (or ``def``) to its last line, docstring
included: what a reader has to hold in mind at once.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "toolkit"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _sources() -> list[tuple[Path, str]]:
    return [(p, p.read_text(encoding="utf-8")) for p in sorted(ROOT.rglob("*.py"))]


def function_lengths(source: str) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function and method in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            found.append((node.name, start, node.end_lineno - start + 1))
    return found


def test_no_module_is_over_400_lines():
    long = [f"{p.relative_to(ROOT)}: {n}" for p, s in _sources()
            if (n := len(s.splitlines())) > MAX_MODULE_LINES]  # fmt: skip
    assert not long, long


def test_no_function_is_over_60_lines():
    long = [f"{p.relative_to(ROOT)}:{line} {name} ({n} lines)" for p, s in _sources()
            for name, line, n in function_lengths(s) if n > MAX_FUNCTION_LINES]  # fmt: skip
    assert not long, long


def test_lengths_count_decorators_and_docstrings():
    body = "\n".join(f"    x{i} = {i}" for i in range(58))
    source = f'@decorator\ndef f():\n    """Doc."""\n{body}\n'
    assert function_lengths(source) == [("f", 1, 61)]
