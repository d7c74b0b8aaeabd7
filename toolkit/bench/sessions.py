"""A benchmark row's session: opened (timed, for the cold start), fed random input, called.

Each call is timed alone with ``time.perf_counter`` around ``Session.infer`` (the public path,
input validation included), as trtexec's "latency" is per query.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit.backends import is_engine, is_onnx, open_session
from toolkit.backends.base import Session, TensorInfo
from toolkit.bench.rows import EMULATED_STATUS, BenchResult
from toolkit.errors import BackendUnavailableError, MissingDependencyError
from toolkit.latency import LatencyStats
from toolkit.model.spec import SpecOverrides

# Backends whose rows take no CPU thread count: a --threads sweep gives them one row.
THREADLESS = ("tensorrt",)


@dataclass(frozen=True)
class Setup:
    """How every session of a benchmark is opened, fed and warmed up (see ``benchmark``)."""

    warmup: int
    overrides: SpecOverrides | None
    weights: str | None
    seed: int
    model_source: str | None
    spinning: bool | None


@dataclass
class Run:
    """A row being measured: its session, its input, its timings (seconds)."""

    result: BenchResult
    session: Session
    feed: dict[str, np.ndarray]
    open_s: float = 0.0
    first_s: float | None = None
    times: list[float] = field(default_factory=list)
    spent: float = 0.0
    gpu: dict[str, list[float]] = field(default_factory=dict)

    def call(self, n: int) -> None:
        infer, feed = self.session.infer, self.feed
        self._own_threads()
        for _ in range(n):
            t0 = time.perf_counter()
            infer(feed)
            dt = time.perf_counter() - t0
            if self.first_s is None:
                self.first_s = dt  # the cold start's first inference
            self.times.append(dt)
            self.spent += dt
            timing = getattr(self.session, "last_timing", None)
            if timing:  # CUDA-event times of the call that just ran (ms)
                for key in ("latency_ms", "gpu_compute_ms", "h2d_ms", "d2h_ms"):
                    if timing.get(key) is not None:
                        self.gpu.setdefault(key, []).append(float(timing[key]) / 1000.0)

    def _own_threads(self) -> None:
        """``torch.set_num_threads`` is process-wide: a torch row sets its own count before
        its block of calls, so rows of a --threads sweep each run at theirs."""
        if self.result.backend == "torch" and self.result.threads is not None:
            import torch

            torch.set_num_threads(self.result.threads)

    def restart(self) -> None:
        """Forget the warm-up calls (the first call's time stays, for the cold start)."""
        self.times.clear()
        self.gpu.clear()
        self.spent = 0.0

    def gpu_stats(self) -> dict[str, dict[str, float]] | None:
        names = {"latency_ms": "latency", "gpu_compute_ms": "gpu_compute", "h2d_ms": "h2d",
                 "d2h_ms": "d2h"}  # fmt: skip
        out = {names[k]: LatencyStats.from_seconds(v).to_dict() for k, v in self.gpu.items() if v}
        return out or None


def precision_of(model: str) -> str | None:
    """The model's precision from its spec (for rows whose backend did not open)."""
    if is_engine(model):  # a TensorRT plan: its sidecar says what was built
        from toolkit.model.sidecar import read_sidecar

        info = read_sidecar(model)
        return info.precision if info is not None else None
    if not is_onnx(model):
        return "fp32"
    from toolkit.model.modelfile import read_spec

    return read_spec(model).precision


def _input_array(
    info: TensorInfo, session: Session, batch: int, rng: np.random.Generator
) -> np.ndarray:
    """Random data of the input's shape: a dynamic batch becomes ``batch``, other dynamic axes
    come from the spec (``--imgsz``)."""
    spec_shape = session.spec.input.shape if info.name == session.spec.input.name else ()
    shape: list[int] = []
    for axis, dim in enumerate(info.shape):
        if dim is None and axis == 0:
            dim = batch
        if dim is None and axis < len(spec_shape):
            dim = spec_shape[axis]
        if dim is None:
            raise BackendUnavailableError(
                f"input '{info.name}' has a dynamic axis {axis} {list(info.shape)}: pass --imgsz"
            )
        shape.append(int(dim))
    if np.issubdtype(info.dtype, np.integer):
        return rng.integers(0, 255, size=shape).astype(info.dtype)
    if info.dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    return rng.standard_normal(shape).astype(info.dtype)


def _static_batch_error(session: Session, batch: int) -> str | None:
    static = session.inputs[0].shape[0] if session.inputs and session.inputs[0].shape else None
    if static is not None and static != batch:
        return f"unavailable: model has a static batch of {static}"
    largest = session.max_batch  # a TensorRT engine's profile bounds a dynamic batch
    if static is None and largest is not None and batch > largest:
        return f"unavailable: the engine's profile allows batch <= {largest} (rebuild with --max-batch)"
    return None


def open_run(row: BenchResult, file: str, threads: int | None, setup: Setup) -> Run | None:
    """Open ``file`` (an ONNX file, an engine or a PyTorch reference) on ``row.backend`` and
    fill in what the session says; None when it cannot run (``row.status`` says why)."""
    backend = row.backend
    t0 = time.perf_counter()
    try:
        session = open_session(
            file,
            backend,
            overrides=setup.overrides,
            threads=threads,
            weights=setup.weights,
            spinning=setup.spinning,  # None: the shared default (ort_options.spin_wait)
            opt_batch=row.batch,
            # OpenVINO: a batch spread over its throughput streams; batch 1 keeps latency's.
            hint="throughput" if backend.startswith("openvino") and row.batch > 1 else None,
            # Only the torch backend of an .onnx file runs it (a reference is its own source).
            model_source=setup.model_source if backend == "torch" and is_onnx(file) else None,
        )
    except (BackendUnavailableError, MissingDependencyError) as e:
        row.precision = precision_of(file)
        row.status = f"unavailable: {e}"
        return None
    open_s = time.perf_counter() - t0
    _describe(row, session)
    reason = _static_batch_error(session, row.batch)
    if reason is None:
        try:
            rng = np.random.default_rng(setup.seed)
            feed = {t.name: _input_array(t, session, row.batch, rng) for t in session.inputs}
        except BackendUnavailableError as e:
            reason = f"unavailable: {e}"
    if reason is not None:
        session.close()
        row.status = reason
        return None
    return Run(result=row, session=session, feed=feed, open_s=open_s)


def _describe(row: BenchResult, session: Session) -> None:
    """What the opened session runs: precision, backend ("auto" resolved), emulation, threads
    and spinning (None where the backend has no such setting)."""
    row.precision = session.precision
    row.backend = session.backend  # what "auto" resolved to
    row.emulated = session.emulated
    if row.emulated is not None:
        row.status = EMULATED_STATUS
    threads = getattr(session, "threads", None)
    spinning = getattr(session, "spinning", None)
    row.threads = None if threads is None or row.backend in THREADLESS else int(threads)
    row.spinning = None if spinning is None else bool(spinning)


def finish_run(run: Run, batch: int) -> None:
    """The row's numbers from its timed calls (and its cold start)."""
    from toolkit.bench.rows import subsample

    r = run.result
    stats = LatencyStats.from_seconds(run.times)
    r.latency_ms = stats.to_dict()
    r.iters = stats.n
    r.throughput_fps = round(batch * 1000.0 / stats.mean, 3)
    r.gpu_ms = run.gpu_stats()
    r.samples_ms = subsample([t * 1000.0 for t in run.times])
    if run.first_s is not None:
        r.cold_start_ms = round((run.open_s + run.first_s) * 1000.0, 3)
    if r.file is not None and Path(r.file).is_file():
        r.file_mb = file_mb(r.file)


def file_mb(path: str | Path) -> float:
    """A model file's size in MB (10^6 bytes), its external ``.data`` file included."""
    from toolkit.fileio import onnx_companions

    p = Path(path)
    total = p.stat().st_size + sum(q.stat().st_size for q in onnx_companions(p))
    return round(total / 1e6, 3)
