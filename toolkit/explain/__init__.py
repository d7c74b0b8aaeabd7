"""What a CNN looks at, and what it learned (``edgetk explain``).

- Heatmaps (:class:`Explainer`): Grad-CAM, Grad-CAM++, LayerCAM and saliency on the PyTorch
  model; occlusion on any backend. One per detected box for a detector.
- The lecture's views: filter maximizers, class maximizers, DeepDream (:mod:`.ascent`), raw
  kernels and feature maps (:mod:`.views`).
- ``--eval``: pointing game, deletion against random, time per map (:mod:`.evaluate`).
- The live loop's off-the-hot-path heatmaps (:class:`HeatmapWorker`).

torch and captum are imported only when a method needs them.

Example:
    >>> from toolkit.explain import Explainer
    >>> with Explainer("defect.onnx", "occlusion") as ex:
    ...     maps = ex.explain(frame)
"""

from __future__ import annotations

from toolkit.explain.api import HeatOptions, ModelArgs, Views, explain
from toolkit.explain.explainer import METHODS, Explainer, Explanation
from toolkit.explain.targets import Target
from toolkit.explain.worker import HeatmapWorker

__all__ = [
    "METHODS",
    "Explainer",
    "Explanation",
    "HeatOptions",
    "HeatmapWorker",
    "ModelArgs",
    "Target",
    "Views",
    "explain",
]
