"""The live loop's heatmap worker: off the caller's thread, within a budget, skips counted."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _explain_refs import ref

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parent))
from _images import cue_image

from toolkit.errors import BadInputError
from toolkit.explain import Explainer, HeatmapWorker


def test_worker_delivers_overlays_and_counts_skips(cue_spec):
    got: list[tuple[object, np.ndarray, np.ndarray]] = []
    done = threading.Event()

    def on_result(key, overlay, heat):
        got.append((key, overlay, heat))
        done.set()

    frame = cue_image()
    ex = Explainer(ref("CueNet"), "occlusion", overrides=cue_spec, patch=6, stride=2, threads=1)
    with HeatmapWorker(ex, on_result, budget=0.5) as worker:
        assert worker.submit("frame-1", frame) is True
        # While it works (or rests after), further frames are skipped at once, never queued.
        t0 = time.perf_counter()
        results = [worker.submit(f"frame-{i}", frame) for i in range(2, 12)]
        submit_s = time.perf_counter() - t0
        assert done.wait(30)
    assert results.count(False) == worker.skipped >= 1
    key, overlay, heat = got[0]
    assert key == "frame-1" and overlay.shape == (32, 32, 3) and overlay.dtype == np.uint8
    assert heat.shape == (32, 32) and heat.dtype == np.float32 and heat.max() == 1.0
    assert worker.stats()["done"] == len(got) and worker.failed == 0
    print(f"10 submits took {1000 * submit_s:.2f} ms in all; stats {worker.stats()}")


def test_worker_refuses_a_bad_budget(cue_spec):
    ex = Explainer(ref("CueNet"), "gradcam", overrides=cue_spec)
    with pytest.raises(BadInputError, match="explain-budget"):
        HeatmapWorker(ex, lambda *a: None, budget=0)
    ex.close()
