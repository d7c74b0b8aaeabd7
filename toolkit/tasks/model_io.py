"""What every task does the same way: frames in, the output picked out, result subsets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.model.spec import ModelSpec
from toolkit.tasks.preprocess import FrameMeta, preprocess


class SpecIO:
    """The input and output handling a task shares (a base of each task class)."""

    spec: ModelSpec

    def preprocess(self, frames: list[np.ndarray]) -> tuple[dict[str, np.ndarray], list[FrameMeta]]:
        """Frames (BGR or gray uint8, as OpenCV decodes them) -> ({input name: batch}, metas).

        The batch is preprocessed as the spec says (resized, letterboxed, normalized).
        """
        batch, metas = preprocess(frames, self.spec)
        return {self.spec.input.name: batch}, metas

    def select_output(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The model's output: the spec's named one when the session has it, else the first."""
        if not outputs:
            raise ToolkitError("the model returned no outputs")
        name = self.spec.output.name
        # A session may rename outputs (the torch backend has no ONNX names): fall back to the first.
        if name is not None and name in outputs:
            return np.asarray(outputs[name])
        return np.asarray(next(iter(outputs.values())))


def subset_indices(index: int | slice | np.ndarray | Sequence[int], n: int) -> np.ndarray:
    """The positions ``index`` (an int, slice, index array or boolean mask) picks of ``n`` rows.

    An int picks a one-row subset, so a result indexed by it is still a result, not a row.
    """
    if isinstance(index, (int, np.integer)):
        index = [int(index)]
    return np.arange(n)[index]
