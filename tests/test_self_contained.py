"""The package is self-contained: it cites only documents that ship with the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sources() -> list[tuple[Path, str]]:
    return [(p, p.read_text(encoding="utf-8")) for p in sorted((ROOT / "toolkit").rglob("*.py"))]


def test_no_citation_of_files_outside_the_repository() -> None:
    outside = re.compile(r"shared/|\bnotes/[A-Z_]+\.md|\bDESIGN\.md|\bSPEC\.md")
    hits = [f"{p.relative_to(ROOT)}:{m.group(0)}" for p, text in _sources()
            for m in outside.finditer(text)]  # fmt: skip
    assert not hits, f"cite docs/ instead: {hits}"


def test_cited_docs_exist() -> None:
    cited = {m.group(0) for _, text in _sources() for m in re.finditer(r"docs/[\w.-]+\.md", text)}
    assert cited, "the code cites its docs (docs/onnx-runtime.md, docs/tensorrt.md, ...)"
    missing = sorted(c for c in cited if not (ROOT / c).is_file())
    assert not missing, f"cited but not in the repository: {missing}"
