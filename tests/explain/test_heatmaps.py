"""Heatmaps that point where the model looks: planted cues, detector boxes, any backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _explain_refs import ref

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parent))
from _images import CUE, blob_image, cue_image

from toolkit.explain import Explainer
from toolkit.explain.heat import peak_inside

CUE_BOX = [(CUE[2], CUE[0], CUE[3], CUE[1])]  # x1, y1, x2, y2


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam", "saliency", "occlusion"])
def test_every_method_points_at_the_planted_cue(method, cue_spec):
    with Explainer(ref("CueNet"), method, overrides=cue_spec, patch=6, stride=2) as ex:
        [e] = ex.explain(cue_image(), rois=[(4, 4, 8, 8)])
    assert e.target.label == "cue"
    assert peak_inside(e.heat, CUE_BOX), e.peak
    # The cue is 1/16 of the frame: its share of the heat is well above that. (Grad-CAM's
    # global channel weights also warm the gray background, so not a majority.)
    assert e.inside_rois[0] > 2 / 16


def test_occlusion_and_gradcam_peaks_agree(cue_spec):
    peaks = {}
    for method in ("occlusion", "gradcam"):
        with Explainer(ref("CueNet"), method, overrides=cue_spec, patch=4, stride=2) as ex:
            [e] = ex.explain(cue_image())
        peaks[method] = np.asarray(e.peak)
    assert np.abs(peaks["occlusion"] - peaks["gradcam"]).max() <= 4, peaks


@pytest.mark.slow
def test_occlusion_runs_on_an_onnx_file_without_torch(cue_onnx):
    # A child process where importing torch fails: occlusion needs forward passes only.
    code = f"""
import sys, json
sys.modules["torch"] = None
sys.path.insert(0, {str(Path(__file__).parent)!r})
from _images import cue_image
from toolkit.explain import Explainer
with Explainer({str(cue_onnx)!r}, "occlusion", backend="ort-cpu", patch=6, stride=2) as ex:
    [e] = ex.explain(cue_image())
print(json.dumps({{"peak": e.peak, "backend": ex.session.backend, "label": e.target.label}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["backend"] == "ort-cpu" and got["label"] == "cue"
    assert peak_inside(np.zeros((32, 32)), CUE_BOX) is False  # the check itself is not vacuous
    x, y = got["peak"]
    assert CUE[2] <= x < CUE[3] and CUE[0] <= y < CUE[1]


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam", "occlusion"])
def test_box_conditioned_map_lies_inside_its_box(method, blob_spec):
    with Explainer(ref("BlobDet"), method, overrides=blob_spec, patch=8, stride=4) as ex:
        maps = ex.explain(blob_image([(20, 20)]))
    assert len(maps) >= 1
    e = maps[0]
    x1, y1, x2, y2 = e.target.box_image
    assert x1 <= 20 <= x2 and y1 <= 20 <= y2
    assert peak_inside(e.heat, [e.target.box_image]), (e.peak, e.target.box_image)
    assert e.inside_own > 0.5


def test_layercam_separates_two_boxes(blob_spec):
    # Grad-CAM's channel weights are global (both blobs light up); LayerCAM's are per position.
    with Explainer(ref("BlobDet"), "layercam", overrides=blob_spec, max_boxes=20) as ex:
        maps = ex.explain(blob_image([(16, 16), (48, 44)]))
    by_blob = {}
    for e in maps:
        _x1, _y1, x2, _y2 = e.target.box_image
        blob = 0 if x2 < 32 else 1
        by_blob.setdefault(blob, e)
    assert set(by_blob) == {0, 1}
    for e in by_blob.values():
        assert peak_inside(e.heat, [e.target.box_image]), (e.peak, e.target.box_image)
