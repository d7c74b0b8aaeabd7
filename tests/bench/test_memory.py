"""Peak memory of a benchmark row: the resident-set peak since a reset, PyTorch's GPU peak."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

from toolkit.bench import memory
from toolkit.bench.memory import gpu_memory_mb, peak_rss_mb, reset_gpu_peak, reset_peak_rss

MB = 1024**2


@pytest.fixture()
def fresh_reset_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's resets are undone afterwards (the module remembers whether one worked)."""
    monkeypatch.setattr(memory, "_reset_ok", memory._reset_ok)


def _reset_or_skip() -> float:
    reset_peak_rss()
    base = peak_rss_mb()
    if memory._reset_ok is False or base is None:
        pytest.skip("this kernel does not let a process reset its peak RSS (/proc/self/clear_refs)")
    return base


@pytest.mark.usefixtures("fresh_reset_state")
def test_peak_rss_sees_an_allocation_and_resets() -> None:
    base = _reset_or_skip()
    block = np.ones(200 * MB // 8)  # written, so every page is resident
    del block
    peak = peak_rss_mb()
    assert peak is not None and peak >= base + 150

    reset_peak_rss()
    after = peak_rss_mb()
    assert after is not None and after < peak - 150


@pytest.mark.usefixtures("fresh_reset_state")
def test_refused_reset_reports_no_peak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_CLEAR_REFS", tmp_path / "missing" / "clear_refs")
    reset_peak_rss()
    assert peak_rss_mb() is None  # not the process's lifetime peak under another name


@pytest.mark.usefixtures("fresh_reset_state")
def test_no_proc_reports_no_peak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_STATUS", tmp_path / "status")
    monkeypatch.setattr(memory, "_CLEAR_REFS", tmp_path / "clear_refs")
    monkeypatch.setattr(memory, "_reset_ok", None)
    assert peak_rss_mb() is None
    reset_peak_rss()
    assert peak_rss_mb() is None


def test_gpu_memory_never_imports_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert gpu_memory_mb() is None
    reset_gpu_peak()
    assert "torch" not in sys.modules


def _fake_torch(*, available: bool, initialized: bool) -> types.SimpleNamespace:
    calls: list[str] = []
    cuda = types.SimpleNamespace(
        is_available=lambda: available,
        is_initialized=lambda: initialized,
        max_memory_allocated=lambda: 3 * MB,
        reset_peak_memory_stats=lambda: calls.append("reset"),
        calls=calls,
    )
    return types.SimpleNamespace(cuda=cuda)


def test_gpu_memory_from_torch_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = _fake_torch(available=True, initialized=True)
    monkeypatch.setitem(sys.modules, "torch", torch)
    assert gpu_memory_mb() == 3.0
    reset_gpu_peak()
    assert torch.cuda.calls == ["reset"]


@pytest.mark.parametrize(("available", "initialized"), [(False, False), (True, False)])
def test_gpu_memory_none_without_cuda_use(
    monkeypatch: pytest.MonkeyPatch, available: bool, initialized: bool
) -> None:
    torch = _fake_torch(available=available, initialized=initialized)
    monkeypatch.setitem(sys.modules, "torch", torch)
    assert gpu_memory_mb() is None
    reset_gpu_peak()
    assert torch.cuda.calls == []
