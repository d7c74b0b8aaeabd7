"""The package's layers: every import points down, and no two modules import each other.

The order is the one docs/architecture.md draws. Imports inside functions count as much as
imports at the top: a lazy import that points up is still an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "toolkit"

# Bottom to top. A unit is a subpackage or a top-level module; a unit may import any unit of a
# lower rank, never one of its own rank or above.
LAYERS: list[tuple[str, ...]] = [
    ("_version", "errors"),
    ("fileio", "interrupts", "latency"),
    ("platform",),
    ("model",),
    ("zoo", "data"),
    ("loading",),
    ("backends", "summary"),
    ("tasks",),
    ("evaluate",),
    ("export",),
    ("quantize",),
    ("build",),
    ("explain",),
    ("live", "train"),
    ("bench", "info", "line", "serve"),
    ("demo",),
    ("cli",),
    ("__main__", "__init__"),
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def _module_name(path: Path) -> str:
    parts = ("toolkit", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The toolkit modules ``path`` imports (``from toolkit.x import name`` resolves to the
    module ``toolkit.x.name`` when that is a module, else to ``toolkit.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("toolkit"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("toolkit"):
            assert node.level == 0, f"{path}: relative import; the package imports absolutely"
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return {m for m in found if m != "toolkit"}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: _imports(path, set(files)) - {name} for name, path in files.items()}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in _graph()}
    assert units <= set(RANK), f"add to LAYERS: {sorted(units - set(RANK))}"


def test_imports_point_down():
    upward = [
        f"{src} -> {dst}"
        for src, targets in _graph().items()
        for dst in sorted(targets)
        if _unit(src) != _unit(dst) and RANK[_unit(dst)] >= RANK[_unit(src)]
    ]
    assert not upward, "imports that do not point down:\n" + "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_between_modules():
    assert not _cycles(_graph())


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ],
)
def test_cycle_finder_finds_cycles(graph, expected):
    assert _cycles(graph) == expected
