"""A PyTorch reference on an ONNX backend: exported once, cached by content hash, reused."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from toolkit import export
from toolkit.bench import cache
from toolkit.bench.cache import cached_export, default_cache_dir, export_key
from toolkit.bench.runner import benchmark
from toolkit.export import ExportError

MODEL_PY = """
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.head(self.body(x))
"""


@pytest.fixture(autouse=True)
def _private_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here writes under the real cache home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.fixture()
def export_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The references ``export_onnx`` was called with (the real exporter still runs)."""
    calls: list[str] = []
    real = export.export_onnx

    def counting(model, output, **kwargs):
        calls.append(str(model))
        return real(model, output, **kwargs)

    monkeypatch.setattr(export, "export_onnx", counting)
    return calls


@pytest.fixture()
def fake_export(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """An ``export_onnx`` that writes a few bytes (for the cache's own logic, fast)."""
    written: list[Path] = []

    def fake(model, output, **kwargs):
        Path(output).write_bytes(f"onnx of {model} {kwargs.get('weights')}".encode())
        written.append(Path(output))
        return SimpleNamespace(parity=SimpleNamespace(to_dict=lambda: {"passed": True}))

    monkeypatch.setattr(export, "export_onnx", fake)
    return written


def test_reference_on_ort_cpu_is_exported_once_then_reused(tmp_path: Path, export_calls):
    lines: list[str] = []
    args = (["zoo:lenet5"], ["ort-cpu", "torch"], [1, 2])
    first = benchmark(*args, warmup=1, iters=3, cache_dir=tmp_path / "c", progress=lines.append)
    assert [(r.backend, r.batch, r.status) for r in first.results] == [
        ("ort-cpu", 1, "ok"), ("torch", 1, "ok"), ("ort-cpu", 2, "ok"), ("torch", 2, "ok"),
    ]  # fmt: skip
    assert export_calls == ["zoo:lenet5"]  # one export for every batch
    ort_row = first.results[0]
    onnx_file = Path(str(ort_row.file))
    assert onnx_file.parent == tmp_path / "c" and onnx_file.suffix == ".onnx"
    assert ort_row.model == "zoo:lenet5"  # the row names what was asked for
    assert ort_row.file_mb == pytest.approx(onnx_file.stat().st_size / 1e6, abs=1e-3)
    manifest = json.loads(onnx_file.with_suffix(".json").read_text())
    assert manifest["parts"]["reference"] == "zoo:lenet5" and manifest["parity"]["passed"]
    assert any("exported" in line for line in lines)
    mtime = onnx_file.stat().st_mtime_ns

    lines.clear()
    again = benchmark(*args[:2], [1], warmup=0, iters=2, cache_dir=tmp_path / "c",
                      progress=lines.append)  # fmt: skip
    assert export_calls == ["zoo:lenet5"]  # no second export
    assert again.results[0].status == "ok" and again.results[0].file == str(onnx_file)
    assert onnx_file.stat().st_mtime_ns == mtime
    assert any("cached export" in line for line in lines)


def test_a_different_weights_file_is_a_different_entry(tmp_path: Path, fake_export):
    w1, w2, w1_copy = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "a_copy.pt"
    w1.write_bytes(b"one")
    w2.write_bytes(b"two")
    w1_copy.write_bytes(b"one")
    folder = tmp_path / "c"
    one = cached_export("zoo:lenet5", weights=str(w1), cache_dir=folder)
    two = cached_export("zoo:lenet5", weights=str(w2), cache_dir=folder)
    assert one.exported and two.exported and one.path != two.path and one.key != two.key
    same = cached_export("zoo:lenet5", weights=str(w1_copy), cache_dir=folder)
    assert same.path == one.path and not same.exported  # the bytes count, not the name
    assert len(fake_export) == 2


def test_what_decides_the_file_is_in_the_key(tmp_path: Path):
    py = tmp_path / "net.py"
    py.write_text(MODEL_PY)
    ref = f"{py}:Net"
    base = export_key(ref)
    assert base["reference"] == ref and base["weights"] is None and base["dynamic"] is True
    assert {"edgetk", "torch", "source", "overrides", "batch"} <= set(base)
    py.write_text(MODEL_PY.replace("Conv2d(3, 4, 3)", "Conv2d(3, 4, 5)"))
    assert export_key(ref)["source"] != base["source"]  # the file's bytes, not its name
    from toolkit.model.spec import SpecOverrides

    assert export_key(ref, overrides=SpecOverrides(imgsz=(64, 64)))["overrides"] is not None
    assert export_key("zoo:lenet5")["source"] != export_key("zoo:resnet18")["source"]


def test_a_half_written_entry_is_never_trusted(tmp_path: Path, fake_export):
    folder = tmp_path / "c"
    entry = cached_export("zoo:lenet5", cache_dir=folder)
    entry.path.write_bytes(entry.path.read_bytes()[:5])  # cut short
    assert cached_export("zoo:lenet5", cache_dir=folder).exported
    entry.path.with_suffix(".json").unlink()  # the manifest is written last: not there yet
    assert cached_export("zoo:lenet5", cache_dir=folder).exported
    entry.path.with_suffix(".json").write_text("{not json")
    assert cached_export("zoo:lenet5", cache_dir=folder).exported
    assert not cached_export("zoo:lenet5", cache_dir=folder).exported
    assert len(fake_export) == 4


def test_default_cache_dir_is_under_the_cache_home(tmp_path: Path, monkeypatch):
    assert default_cache_dir() == tmp_path / "xdg" / "edgetk" / "exports"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "edgetk" / "exports"


def test_a_failed_export_is_the_onnx_rows_status(tmp_path: Path, monkeypatch):
    def failing(model, output, **kwargs):
        raise ExportError("the exporter gave up")

    monkeypatch.setattr(export, "export_onnx", failing)
    report = benchmark(["zoo:lenet5"], ["ort-cpu", "torch"], [1], warmup=0, iters=2,
                       cache_dir=tmp_path)  # fmt: skip
    ort_row, torch_row = report.results
    assert ort_row.status == "unavailable: the ONNX export failed: the exporter gave up"
    assert torch_row.status == "ok"  # torch runs the reference itself
    assert not list(tmp_path.glob("*.json"))  # nothing cached


def test_weights_that_do_not_exist_are_bad_input(tmp_path: Path):
    from toolkit.errors import BadInputError

    with pytest.raises(BadInputError, match="weights file not found"):
        cache.export_key("zoo:lenet5", weights=str(tmp_path / "nope.pt"))
