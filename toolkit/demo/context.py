"""What the demo's steps share: the sizes (:class:`DemoConfig`), the run so far
(:class:`DemoContext`) and the step type (:class:`DemoStep`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

# The classifier the demo trains, exports, validates, benchmarks and quantizes.
ARCH = "zoo:defect-cls"


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo; :meth:`make` gives the full or the ``--quick`` ones."""

    workdir: Path
    quick: bool = False
    seed: int = 0
    n_per_class: int = 400
    size: int = 96
    epochs: int = 18
    batch: int = 32
    lr: float = 4e-3
    bench_batches: tuple[int, ...] = (1, 8)
    bench_iters: int = 100
    predict_per_class: int = 2

    @classmethod
    def make(cls, workdir: str | Path, *, quick: bool = False, seed: int = 0) -> DemoConfig:
        """The full demo, or a tiny one (a few images, one epoch) for tests and smoke runs."""
        if quick:
            return cls(
                Path(workdir),
                quick=True,
                seed=seed,
                n_per_class=10,
                epochs=1,
                batch=16,
                bench_batches=(1,),
                bench_iters=10,
                predict_per_class=1,
            )
        return cls(Path(workdir), seed=seed)


def epoch_lines(console: Console, what: str) -> Callable[[int, int, str], None]:
    """``progress(done, total, text)`` for the trainers, printed as ``what epoch i/n text``."""

    def report(done: int, total: int, text: str) -> None:
        console.print(f"    {what} epoch {done}/{total}  {text}", highlight=False)

    return report


@dataclass
class DemoContext:
    """What the steps share: the config, the console and the results so far."""

    config: DemoConfig
    console: Console
    progress: bool = True
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.config.workdir / name

    def train_progress(self, what: str) -> Callable[[int, int, str], None] | None:
        """The training callback: one line per epoch on the demo's console (None: quiet)."""
        return epoch_lines(self.console, what) if self.progress else None

    @property
    def data_dir(self) -> Path:
        return self.path("data")

    @property
    def weights(self) -> Path:
        return self.path("weights.pt")

    @property
    def onnx(self) -> Path:
        return self.path("model.onnx")


@dataclass(frozen=True)
class DemoStep:
    """A named step: ``run(ctx)`` returns a JSON-able dict of what it did."""

    name: str
    title: str
    run: Callable[[DemoContext], dict[str, Any]]
