"""What every training run shares around the loop: device, threads, seed, size, report."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from toolkit.errors import BadInputError
from toolkit.model.spec import ModelSpec, SpecOverrides
from toolkit.train.loop import FitResult

if TYPE_CHECKING:
    import torch


@dataclass(kw_only=True)
class RunReport:
    """What a training run did: the data, the best epoch and the per-epoch history.

    The task's own fields are in the subclasses; ``to_dict`` lists the fields in the order
    of the subclass's ``FIELDS``.
    """

    FIELDS: ClassVar[tuple[str, ...]] = ()

    arch: str
    output: str
    data: str
    labels: list[str]
    imgsz: list[int]
    epochs: int
    batch: int
    lr: float
    device: str
    n_train: int
    n_val: int
    best_epoch: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: d[k] for k in self.FIELDS}


def resolve_device(device: str) -> torch.device:
    """``cpu`` or ``cuda[:N]`` (with a GPU that PyTorch sees), else :class:`BadInputError`."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise BadInputError(f"unknown device '{device}' (expected cpu or cuda[:N])") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BadInputError(f"device '{device}' requested but PyTorch sees no CUDA GPU")
    if dev.type not in ("cpu", "cuda"):
        raise BadInputError(f"unsupported device '{device}' (expected cpu or cuda[:N])")
    return dev


@contextmanager
def seeded(seed: int, threads: int | None) -> Iterator[None]:
    """Torch seeded and on ``threads`` intra-op threads; the caller's RNG and threads come back.

    ``fork_rng``: seeding for reproducibility without leaving the caller's torch RNG changed.
    """
    import torch

    old_threads = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(old_threads)


def with_imgsz(spec: ModelSpec, imgsz: int | tuple[int, int] | None) -> ModelSpec:
    """``spec`` at input size ``imgsz`` (``n`` or ``(h, w)``); unchanged when None."""
    if imgsz is None:
        return spec
    size = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
    return SpecOverrides(imgsz=size).apply(spec)  # type: ignore[arg-type]


def report_fields(
    arch: str,
    output: Path,
    data: Path,
    spec: ModelSpec,
    hyper: tuple[int, int, float],
    device: torch.device,
    sizes: tuple[int, int],
    result: FitResult,
    started: float,
) -> dict[str, Any]:
    """The :class:`RunReport` fields of a finished run.

    ``hyper`` is ``(epochs, batch, lr)``, ``sizes`` ``(n_train, n_val)``, ``started`` the
    ``time.perf_counter()`` of the start.
    """
    epochs, batch, lr = hyper
    return {
        "arch": arch,
        "output": str(output),
        "data": str(data),
        "labels": list(spec.labels),
        "imgsz": [int(v) for v in spec.input.hw],
        "epochs": epochs,
        "batch": batch,
        "lr": lr,
        "device": str(device),
        "n_train": sizes[0],
        "n_val": sizes[1],
        "best_epoch": result.best_epoch,
        "seconds": round(time.perf_counter() - started, 2),
        "history": result.history,
    }
