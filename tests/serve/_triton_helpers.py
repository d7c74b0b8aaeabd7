"""A real Triton server for the tests: PyTriton's bundled tritonserver on loopback ports."""

from __future__ import annotations

import importlib.util
import socket


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on loopback (bound, read, released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def pytriton_missing() -> str | None:
    """Why PyTriton cannot run here (None: it is installed)."""
    if importlib.util.find_spec("tritonclient") is None:
        return 'tritonclient is not installed ("[serve]")'
    if importlib.util.find_spec("pytriton") is None:
        return "nvidia-pytriton is not installed (docs/scale-out.md)"
    return None
