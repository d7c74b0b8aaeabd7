"""The floor under a benchmark row: what this machine can do, and what plain ONNX Runtime does.

- :func:`gemm_rate`: the machine's fp32 matrix-multiply rate (GFLOP/s), measured the way the
  rows run (an ONNX Runtime CPU session from :mod:`toolkit.backends.ort_options`), once per
  CPU, thread count and ONNX Runtime version, then read from a JSON cache.
- :func:`model_macs`: a forward pass's multiply-accumulates, counted as ``edgetk inspect``
  counts them (:mod:`toolkit.summary`); a row's achieved GFLOP/s is ``2 * MACs / latency``.
- :func:`plain_ort_latency`: the same file in a plain ``onnxruntime.InferenceSession`` with its
  best settings, so that edgetk's own overhead is a number (docs/onnx-runtime.md explains the
  settings tried).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.model.spec import SpecOverrides
from toolkit.platform.machine import cache_home

log = logging.getLogger(__name__)

# The GEMM's side: big enough to be compute bound, small enough for a slow board (a few
# seconds at most there). Each call is timed alone; the rate comes from the median call.
DEFAULT_SIZE = 1024
_GEMM_WARMUP = 2
_GEMM_MIN_RUNS = 5
_GEMM_MAX_RUNS = 200
_GEMM_BUDGET_S = 1.0  # timed calls continue past the minimum until this much time has passed
_CACHE_VERSION = 1
_PLAIN_WARMUP = 10


def gemm_rate(
    threads: int | None = None, *, cache_dir: Path | None = None, size: int = DEFAULT_SIZE
) -> dict[str, Any]:
    """This machine's fp32 GEMM rate: ``{"gflops", "threads", "how", "cached"}``.

    A single ``MatMul`` of two ``size`` x ``size`` fp32 matrices runs in an ONNX Runtime CPU
    session with the options of every edgetk session
    (:func:`~toolkit.backends.ort_options.cpu_inference_session`) and ``threads`` intra-op
    threads (None: :func:`~toolkit.platform.cpu.default_threads`, the backends' default).
    GFLOP/s is ``2 * size**3`` over the median call.

    The result is kept as JSON in ``cache_dir`` (default ``cache_home() / "floor"``), one file
    per CPU name, thread count, ONNX Runtime version and size; a later call reads it back
    (``cached: True``). An unreadable or corrupt cache file is measured again and replaced; a
    cache folder that cannot be written only loses the caching.
    """
    from toolkit.backends.base import session_threads

    n = session_threads(threads)
    key = _cache_key(n, size)
    path = Path(cache_dir if cache_dir is not None else cache_home() / "floor") / _cache_name(key)
    entry = _read_cache(path, key)
    if entry is not None:
        return {**entry, "cached": True}
    gflops, runs = _measure_gemm(n, size)
    entry = {
        "gflops": round(gflops, 2),
        "threads": n,
        "how": f"ORT MatMul fp32 {size}x{size}, {n} thread{'s' * (n != 1)}, median of {runs}",
    }
    _write_cache(path, key, entry)
    return {**entry, "cached": False}


def _cache_key(threads: int, size: int) -> dict[str, Any]:
    from toolkit.platform.machine import cpu_name, module_version

    return {
        "version": _CACHE_VERSION,
        "cpu": cpu_name(),
        "threads": threads,
        "onnxruntime": module_version("onnxruntime"),
        "size": size,
    }


def _cache_name(key: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return f"gemm-{digest}.json"


def _read_cache(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The cached entry for ``key``, or None (no file, unreadable, corrupt, another key)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        gflops = float(doc["gflops"])
        entry = {"gflops": gflops, "threads": int(doc["threads"]), "how": str(doc["how"])}
        if doc["key"] != key or not gflops > 0:
            raise ValueError("another machine's entry, or no rate")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as e:  # JSONDecodeError is a ValueError
        log.debug("GEMM cache %s is not usable (%s): measuring again", path, e)
        return None
    return entry


def _write_cache(path: Path, key: dict[str, Any], entry: dict[str, Any]) -> None:
    from toolkit.fileio import atomic_write_text

    try:
        atomic_write_text(path, json.dumps({"key": key, **entry}, indent=2) + "\n")
    except OSError as e:
        log.debug("GEMM rate not cached: cannot write %s (%s)", path, e)


def _measure_gemm(threads: int, size: int) -> tuple[float, int]:
    """(GFLOP/s of the median call, number of timed calls) of one ``size``-square MatMul."""
    from toolkit.backends.ort_options import cpu_inference_session

    sess = cpu_inference_session(_matmul_model(size), emulate=False, threads=threads)
    rng = np.random.default_rng(0)
    feed = {name: rng.standard_normal((size, size), dtype=np.float32) for name in ("a", "b")}

    def call() -> None:
        sess.run(None, feed)

    for _ in range(_GEMM_WARMUP):
        call()
    seconds = _timed_calls(call, _GEMM_MIN_RUNS, _GEMM_MAX_RUNS, _GEMM_BUDGET_S)
    return 2 * size**3 / float(np.median(seconds)) / 1e9, len(seconds)


def _matmul_model(n: int) -> Any:
    """An ONNX model computing ``y = a @ b`` for two fp32 ``n`` x ``n`` inputs."""
    from onnx import TensorProto, helper

    def value(name: str) -> Any:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n])

    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    graph = helper.make_graph([node], "gemm", [value("a"), value("b")], [value("y")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _timed_calls(
    call: Callable[[], object], min_runs: int, max_runs: int, budget_s: float = 0.0
) -> list[float]:
    """Durations (s) of calls timed one by one: at least ``min_runs``, then more while the
    total stays under ``budget_s``, never more than ``max_runs``."""
    seconds: list[float] = []
    start = time.perf_counter()
    while len(seconds) < min_runs or (
        len(seconds) < max_runs and time.perf_counter() - start < budget_s
    ):
        t0 = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - t0)
    return seconds


def model_macs(
    model: str | Path, batch: int = 1, overrides: SpecOverrides | None = None
) -> int | None:
    """Multiply-accumulates of one forward pass of ``batch`` inputs, or None when they cannot
    be counted (the reason is logged at debug level).

    ``model`` is an ``.onnx`` file or a PyTorch reference (``zoo:NAME``, ``.pt``,
    ``file.py:Name``), summarized as ``edgetk inspect`` does
    (:func:`toolkit.summary.summarize`; ``overrides`` sets a dynamic image size). The summary
    counts Conv, ConvTranspose, Gemm and MatMul at the summary's batch (1, or the file's own
    static batch); the count per input is scaled to ``batch``, as every op it counts computes
    each input of a batch alone.
    """
    from toolkit.summary import summarize

    try:
        summary = summarize(model, overrides=overrides)
    except (ToolkitError, ImportError, OSError, RuntimeError, ValueError) as e:
        log.debug("no MAC count for %s: %s", model, e)
        return None
    summary_batch = summary.input_shape[0] if summary.input_shape else None
    if not summary.total_macs or not summary_batch:
        log.debug("no MAC count for %s: no Conv, Gemm or MatMul of known shape", model)
        return None
    return int(summary.total_macs) * int(batch) // int(summary_batch)


# -- plain ONNX Runtime ------------------------------------------------------------------------
# Numpy dtypes of ONNX Runtime's input type names where the two names differ.
_ORT_TYPE_NAMES = {"float": np.float32, "double": np.float64}


def plain_ort_latency(
    model: str | Path, batch: int, threads: int | None, iters: int = 100
) -> dict[str, Any] | None:
    """The p50 latency of a *plain* ``onnxruntime.InferenceSession`` on ``model`` at its best
    settings: ``{"p50_ms", "settings"}``, or None when the file cannot run that way (the
    reason is logged at debug level).

    This is, on purpose, a second way to open ONNX Runtime: everything else in edgetk opens
    its sessions through :mod:`toolkit.backends.ort_options`, and this one is the yardstick
    that those sessions are compared against. The settings tried (docs/onnx-runtime.md):
    ``ORT_ENABLE_ALL`` graph optimization, sequential execution, ``threads`` intra-op threads
    (None: the physical cores), with intra-op spinning on and off; the fastest p50 wins, and
    ``settings`` says which. Nothing else is set: a ``--target tensorrt`` int8 file runs with
    ONNX Runtime's own Q/DQ fusion here, not emulated as an edgetk ``ort-cpu`` session runs it.

    The input is random data of the model's shape at ``batch`` (other dynamic axes from the
    spec, :func:`toolkit.model.modelfile.read_spec`); a graph with another static batch gives
    None, as the benchmark's row is unavailable then. Each of ``iters`` calls (after a short
    warm-up) is timed alone.
    """
    from toolkit.backends.base import session_threads
    from toolkit.backends.ort_options import import_ort

    ort = import_ort()
    n = session_threads(threads)
    tried: list[dict[str, Any]] = []
    feed: dict[str, np.ndarray] | None = None
    for spinning in (True, False):
        settings = {
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "execution_mode": "ORT_SEQUENTIAL",
            "intra_op_num_threads": n,
            "allow_spinning": spinning,
        }
        try:
            so = _plain_options(ort, n, spinning)
            sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
            feed = _plain_feed(model, sess, batch) if feed is None else feed
            seconds = _plain_times(sess, feed, iters)
        except (ToolkitError, RuntimeError, ValueError, TypeError, OSError, *_ort_errors()) as e:
            log.debug("no plain ONNX Runtime latency for %s: %s", model, e)
            return None
        tried.append({"p50_ms": round(float(np.median(seconds)) * 1000.0, 4), "settings": settings})
    return min(tried, key=lambda r: r["p50_ms"])


def _ort_errors() -> tuple[type[BaseException], ...]:
    from toolkit.backends.ort_options import MODEL_ERRORS, RUN_ERRORS, ort_errors

    return ort_errors(*MODEL_ERRORS, *RUN_ERRORS)


def _plain_options(ort: Any, threads: int, spinning: bool) -> Any:
    """Plain SessionOptions: only the settings :func:`plain_ort_latency` names are set."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.log_severity_level = 3  # errors only, as in edgetk's sessions
    return so


def _plain_feed(model: str | Path, sess: Any, batch: int) -> dict[str, np.ndarray]:
    """Random data for every graph input of ``sess`` at ``batch``."""
    from toolkit.model.modelfile import read_spec

    spec = read_spec(model)
    rng = np.random.default_rng(0)
    feed: dict[str, np.ndarray] = {}
    for arg in sess.get_inputs():
        spec_shape = spec.input.shape if arg.name == spec.input.name else ()
        shape = _plain_shape(arg.name, list(arg.shape), spec_shape, batch)
        name = arg.type.removeprefix("tensor(").removesuffix(")")
        dtype = np.dtype(_ORT_TYPE_NAMES.get(name, name))
        if dtype.kind in "iub":
            high = 2 if dtype.kind == "b" else 255
            feed[arg.name] = rng.integers(0, high, size=shape).astype(dtype)
        else:
            feed[arg.name] = rng.standard_normal(shape).astype(dtype)
    return feed


def _plain_shape(
    name: str, dims: list[Any], spec_shape: tuple[int | None, ...], batch: int
) -> list[int]:
    """An input's concrete shape: a dynamic batch is ``batch``, other dynamic axes come from
    the spec; a static batch other than ``batch`` is refused."""
    from toolkit.errors import BadInputError

    shape: list[int] = []
    for axis, dim in enumerate(dims):
        static = isinstance(dim, int) and dim > 0
        if static and axis == 0 and dim != batch:
            raise BadInputError(f"input '{name}' has a static batch of {dim}, not {batch}")
        if not static:
            dim = batch if axis == 0 else (spec_shape[axis] if axis < len(spec_shape) else None)
        if dim is None:
            raise BadInputError(f"input '{name}' has a dynamic axis {axis}")
        shape.append(int(dim))
    return shape


def _plain_times(sess: Any, feed: dict[str, np.ndarray], iters: int) -> list[float]:
    """Durations (s) of ``iters`` calls of ``sess`` timed one by one, after a warm-up."""

    def call() -> None:
        sess.run(None, feed)

    for _ in range(_PLAIN_WARMUP):
        call()
    return _timed_calls(call, max(1, iters), max(1, iters))
