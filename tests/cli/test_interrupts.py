"""Ctrl-C exits 130, also inside torch.onnx.export, and leaves no output behind.

torch.export imports torch._dynamo lazily; a SIGINT during that import used to come back as
TorchExportError ("torch.onnx.export failed: KeyboardInterrupt", exit 1). The subprocess
test sends a real SIGINT to the console script while torch.onnx.export runs: ``--verbose``
makes the exporter log "torch.onnx.export of ... started" on stderr, the signal goes a
moment later.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from _cli import edgetk_script

from toolkit.interrupts import interrupted_chain, keep_interrupts


def _sigint_at_default() -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default handler in this test process")


def test_an_interrupt_turned_into_another_error_is_an_interrupt_again() -> None:
    _sigint_at_default()

    def library_that_converts() -> None:
        try:
            signal.raise_signal(signal.SIGINT)  # a real signal, through the real handler
            time.sleep(1)
        except KeyboardInterrupt:
            raise RuntimeError("export failed") from None  # from None: no chain to follow

    with pytest.raises(KeyboardInterrupt), keep_interrupts():
        library_that_converts()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_swallowed_interrupt_still_stops_the_block() -> None:
    _sigint_at_default()
    after = []
    with pytest.raises(KeyboardInterrupt), keep_interrupts():
        with contextlib.suppress(KeyboardInterrupt):  # a library that retries another way
            signal.raise_signal(signal.SIGINT)
        after.append("ran on")
    assert after == ["ran on"]


def test_chain_is_followed_off_the_main_thread() -> None:
    def convert() -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise AttributeError("module 'torch._dynamo' has no attribute 'exc'") from e

    caught: list[BaseException] = []

    def worker() -> None:
        try:
            with keep_interrupts():
                convert()
        except BaseException as e:  # the thread reports what left the block
            caught.append(e)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert len(caught) == 1 and isinstance(caught[0], KeyboardInterrupt)
    assert not interrupted_chain(ValueError("plain"))


def _wait_for(proc: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    """Read stderr lines until one holds ``needle``; the rest is drained in the background."""
    lines: list[str] = []
    found = threading.Event()

    def reader() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if needle in line:
                found.set()
        found.set()  # EOF: the process ended without saying it

    threading.Thread(target=reader, daemon=True).start()
    if not found.wait(timeout) or not any(needle in ln for ln in lines):
        proc.kill()
        pytest.fail(f"never saw {needle!r}; stderr tail: {''.join(lines[-20:])}")
    return lines


@pytest.mark.parametrize("delay", [0.6, 2.5])
def test_ctrl_c_during_torch_onnx_export_exits_130(tmp_path: Path, delay: float) -> None:
    proc = subprocess.Popen(
        [edgetk_script(), "--verbose", "export", "zoo:resnet18", "-o", "out/r18.onnx"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = _wait_for(proc, "torch.onnx.export of", timeout=180)
        time.sleep(delay)  # 0.6 s: torch.export is importing torch._dynamo, the old exit 1
        assert proc.poll() is None, "the export ended before the signal"
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.2)  # the reader thread collects the last lines
    tail = "".join(lines[-5:])
    assert code == 130, tail
    assert "error: interrupted" in tail and "torch.onnx.export failed" not in tail
    assert list(tmp_path.iterdir()) == []  # no output, not even its folder
