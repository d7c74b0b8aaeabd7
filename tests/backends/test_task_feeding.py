"""How frames are fed to sessions: a static batch is padded, a bounded dynamic one is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolkit.backends import open_session
from toolkit.backends.base import Session
from toolkit.tasks.base import make_task, run_task


class _ProfiledSession(Session):
    """A real ORT session that, like a TensorRT engine, reports a profile's largest batch."""

    backend = "ort-cpu"

    def __init__(self, inner: Session, largest: int) -> None:
        self.inner, self.largest = inner, largest
        self.spec, self.inputs, self.outputs = inner.spec, inner.inputs, inner.outputs
        self.batches: list[int] = []

    @property
    def max_batch(self) -> int | None:
        return self.largest

    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.batches.append(next(iter(inputs.values())).shape[0])
        return self.inner.infer(inputs)


def test_a_profile_bound_is_not_a_fixed_batch(tiny_onnx: Path) -> None:
    with open_session(tiny_onnx, "ort-cpu") as inner:
        session = _ProfiledSession(inner, largest=8)
        assert session.static_batch is None
        frames = [np.full((40, 40, 3), v, np.uint8) for v in (0, 120, 250)]
        results = run_task(session, make_task(inner.spec), frames)
    assert session.batches == [3]  # not padded up to the profile's 8
    assert len(results) == 3
