"""Serving edgetk Sessions to other machines: ``edgetk serve MODEL --triton`` (PyTriton).

:func:`~toolkit.serve.pytriton.serve_triton` puts any Session (ORT, OpenVINO, TensorRT) behind
a real Triton server, with Triton's dynamic batching across clients; stations reach it with
``--backend triton://host:8001/model`` (docs/scale-out.md).
"""

from __future__ import annotations

from toolkit.serve.pytriton import ServeOptions, TritonServer, serve_triton

__all__ = ["ServeOptions", "TritonServer", "serve_triton"]
