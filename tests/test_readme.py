"""The README's Python snippet runs as written (it is the first code many users paste)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_a_python_snippet() -> None:
    assert _python_blocks()


@pytest.mark.slow
def test_python_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in _python_blocks():
            exec(compile(block, str(README), "exec"), {"__name__": "__readme__"})
    assert (tmp_path / "det.onnx").is_file()
    lines = out.getvalue().splitlines()
    # The synthetic frame holds defective parts: the detector finds some, with known labels.
    assert lines and all(line.split()[0] in ("scratch", "spot", "crack") for line in lines)
