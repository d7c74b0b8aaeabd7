"""Do the maps mean something? ``--eval DATA`` on a set with known defect boxes.

- Pointing game: how often a heatmap's peak falls inside a true defect box (for a detector:
  each detected box that matches a true one, against that true box).
- Deletion: covering the hottest k% of the input drops the score faster than covering random
  pixels (the score relative to the unchanged image, at each k; the area under each curve).
- Time per image per method (the maps alone, the model's prediction not counted).

The covered inputs run through the method's own session, so occlusion's deletion figures
come from the backend it ran on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.explain import heat as H
from toolkit.explain.occlusion import batched_scores
from toolkit.explain.targets import MATCH_IOU, Target, classify_target
from toolkit.tasks.boxes import box_iou

FRACTIONS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
# A peak this close to a true box still points at it (the pointing game's usual tolerance,
# scaled from 15 px at 224 to the model's input).
TOLERANCE = 15 / 224


@dataclass
class MethodScore:
    """One method's figures on a set."""

    method: str
    hits: int = 0
    trials: int = 0
    seconds: list[float] = field(default_factory=list)
    deletion: list[np.ndarray] = field(default_factory=list)
    random: list[np.ndarray] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        heat = np.mean(self.deletion, 0) if self.deletion else np.zeros(len(FRACTIONS))
        rand = np.mean(self.random, 0) if self.random else np.zeros(len(FRACTIONS))
        return {
            "method": self.method,
            "pointing_game": round(self.hits / self.trials, 4) if self.trials else None,
            "trials": self.trials,
            "deletion": {"fractions": list(FRACTIONS), "heat": _r(heat), "random": _r(rand),
                         "auc_heat": _auc(heat), "auc_random": _auc(rand)},
            "ms_per_map": round(1000 * float(np.mean(self.seconds)), 2) if self.seconds else None,
            "maps": len(self.seconds),
        }  # fmt: skip


def _r(a: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in a]


def _auc(curve: np.ndarray) -> float:
    """Area under the relative-score curve over k in [0, max k] (normalized to that span)."""
    f = np.asarray(FRACTIONS)
    area = float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(f)))
    return round(float(area / (f[-1] - f[0])), 4)


def deletion_curves(
    session: Any, scorer: Any, x: np.ndarray, net_heat: np.ndarray, target: Target, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Relative score after covering the top-k% hottest pixels, and k% random pixels."""
    fill = x.mean(axis=(2, 3), keepdims=True)[0]
    jitter = np.random.default_rng(seed).random(net_heat.size) * 1e-6  # ties in random order
    orders = [np.argsort(-(net_heat.ravel() + jitter), kind="stable"),
              np.random.default_rng(seed).permutation(net_heat.size)]  # fmt: skip
    xs = []
    for order in orders:
        for f in FRACTIONS:
            covered = x[0].copy().reshape(x.shape[1], -1)
            idx = order[: round(f * net_heat.size)]
            covered[:, idx] = fill.reshape(-1, 1)
            xs.append(covered.reshape(x.shape[1:]))
    scores = batched_scores(session, scorer, np.stack(xs), target)
    base = max(float(scores[0]), 1e-9)
    n = len(FRACTIONS)
    return scores[:n] / base, scores[n:] / base


def _net_boxes(boxes: np.ndarray, meta: Any) -> np.ndarray:
    """True boxes (frame pixels) -> network-input pixels."""
    from toolkit.explain.targets import to_net

    return np.asarray([to_net(b, meta) for b in boxes], np.float32).reshape(-1, 4)


def _image_targets(ex: Any, meta: Any, result: Any, true_net: np.ndarray,
                   true_cls: list[str]) -> list[tuple[Target, np.ndarray]]:  # fmt: skip
    """The targets to score on one image, each with the true boxes its peak should hit."""
    if ex.spec.task == "classify":
        labels = ex.spec.labels
        cid = labels.index(true_cls[0]) if true_cls and true_cls[0] in labels else None
        return [(classify_target(result, ex.spec, cid), true_net)]
    out = []
    for t in ex.targets(meta, result, None):
        iou = box_iou(np.asarray([t.box], np.float32), true_net)[0] if len(true_net) else []
        if len(iou) and iou.max() >= MATCH_IOU:
            out.append((t, true_net[int(np.argmax(iou))][None]))
    return out


def score_image(ex: Any, frame: np.ndarray, boxes: np.ndarray, names: list[str],
                acc: MethodScore, seed: int) -> None:  # fmt: skip
    """Add one image's maps to ``acc``: boxes are the true defects (frame pixels)."""
    x, meta, result = ex.prepare(frame)
    true_net = _net_boxes(boxes, meta)
    tol = TOLERANCE * max(ex.spec.input.hw)
    for target, truth in _image_targets(ex, meta, result, true_net, names):
        t0 = time.perf_counter()
        net = ex.net_map(x, target)
        acc.seconds.append(time.perf_counter() - t0)
        acc.trials += 1
        acc.hits += int(H.peak_inside(net, truth, margin=tol))
        d, r = deletion_curves(ex.session, ex.scorer, x, net, target, seed + acc.trials)
        acc.deletion.append(d)
        acc.random.append(r)


def evaluate_methods(
    make: Callable[[str], Any],
    methods: Sequence[str],
    data: str | Path,
    *,
    split: str = "val",
    limit: int | None = 50,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[MethodScore]:
    """The figures of each method on the images of ``data`` (a YOLO-format set) that hold at
    least one true box; ``make(method)`` opens an :class:`~toolkit.explain.explainer.Explainer`."""
    from toolkit.data.images import read_image
    from toolkit.data.yolo import load_yolo_set

    ds = load_yolo_set(data)
    samples = [(p, c, b) for p, c, b in ds.samples(split) if len(c)][:limit]
    if not samples:
        from toolkit.errors import BadInputError

        raise BadInputError(f"{data}: no image of the '{split}' split has a labelled box")
    scores = []
    for method in methods:
        acc = MethodScore(method)
        with make(method) as ex:
            for i, (path, cls, xyxy) in enumerate(samples):
                frame = read_image(path)
                h, w = frame.shape[:2]
                boxes = xyxy * np.asarray([w, h, w, h], np.float32)
                score_image(ex, frame, boxes, [ds.names[int(c)] for c in cls], acc, seed)
                if progress is not None:
                    progress(method, i + 1, len(samples))
        scores.append(acc)
    return scores
