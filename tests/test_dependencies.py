"""Every third-party module that toolkit/ imports is a declared dependency.

CI runs in a brand-new virtual environment, so an undeclared import fails there too; this test
says which import and which distribution, and also catches an optional dependency imported at
module level (it must load lazily, inside the code that needs it).
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "toolkit"
DIST = "edgetk"

# Optional modules that are not installed here, so importlib cannot name their distribution.
NOT_INSTALLED_HERE = {
    "tensorrt": "tensorrt",
    "cuda": "cuda-python",
    "timm": "timm",
    "torchvision": "torchvision",
}
# Installed on purpose outside the extras, with ``pip install --no-deps``: nvidia-pytriton
# 0.7.0 declares numpy<2, which cannot resolve beside opencv 5 (numpy>=2), and it works with
# numpy 2 through edgetk's DLPack handoff (toolkit/serve/pytriton.py; docs/scale-out.md).
NO_DEPS = {"pytriton": "nvidia-pytriton"}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level module, imported at module level) for every absolute import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(n.split(".")[0], id(node) in top_level) for n in names]
    return found


def _third_party() -> dict[str, dict[str, object]]:
    mods: dict[str, dict[str, object]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        for mod, eager in _imports(path):
            if mod in sys.stdlib_module_names or mod in ("toolkit", "__future__"):
                continue
            entry = mods.setdefault(mod, {"eager": False, "files": set()})
            entry["eager"] = entry["eager"] or eager
            entry["files"].add(str(path.relative_to(ROOT.parent)))  # type: ignore[union-attr]
    return mods


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    """The core requirements and each extra's, as normalized distribution names."""
    core: set[str] = set()
    extras: dict[str, set[str]] = {}
    for req in metadata.requires(DIST) or []:
        name = _norm(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0])
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", req)
        if extra:
            extras.setdefault(extra.group(1), set()).add(name)
        else:
            core.add(name)
    return core, extras


def _distributions(mod: str) -> list[str]:
    """The installed distributions that provide a top-level module (cv2 has several)."""
    dists = metadata.packages_distributions().get(mod)
    if dists:
        return sorted({_norm(d) for d in dists})
    if mod in NOT_INSTALLED_HERE:
        return [_norm(NOT_INSTALLED_HERE[mod])]
    raise AssertionError(f"cannot tell which distribution provides '{mod}'")


def test_the_distribution_is_installed() -> None:
    assert metadata.version(DIST), f"{DIST} is not installed (pip install -e '.[dev]')"


@pytest.mark.parametrize("mod", sorted(_third_party()))
def test_import_is_declared(mod: str) -> None:
    core, extras = _declared()
    info = _third_party()[mod]
    if mod in NO_DEPS:
        assert not info["eager"], f"'{mod}' must be imported lazily"
        return
    dists = _distributions(mod)
    where = ", ".join(sorted(info["files"]))  # type: ignore[arg-type]
    in_core = any(d in core for d in dists)
    in_extras = sorted(e for e, names in extras.items() if any(d in names for d in dists))
    assert in_core or in_extras, (
        f"'{mod}' (distribution {' or '.join(dists)}) is imported in {where} but declared "
        f"neither in the core dependencies nor in an extra of {DIST}"
    )
    if not in_core:
        assert not info["eager"], (
            f"'{mod}' comes only with the extra {in_extras} but is imported at module level in "
            f"{where}: import it inside the code that needs it"
        )


def test_walker_sees_known_imports() -> None:
    """The walk finds what the package is known to use, so an empty walk cannot pass."""
    mods = _third_party()
    assert {"numpy", "onnx", "typer", "torch", "cv2", "yaml"} <= set(mods)
    assert mods["typer"]["eager"]


def test_an_undeclared_import_is_caught(tmp_path: Path) -> None:
    """The check itself: a distribution missing from the requirements is reported."""
    core, extras = _declared()
    assert "pyyaml" in core
    core.discard("pyyaml")
    [dist] = _distributions("yaml")
    assert dist == "pyyaml" and dist not in core and not any(dist in e for e in extras.values())
