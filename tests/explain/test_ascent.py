"""The lecture's views: filter maximizers, class maximizers, DeepDream, kernels, maps."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import cv2
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _images import CUE
from _models import CueNet, EdgeNet

from toolkit.explain.ascent import AscentConfig, class_inputs, dream, filter_inputs
from toolkit.explain.views import feature_stages, kernels_sheet, maps_sheet
from toolkit.loading import default_spec
from toolkit.model.spec import SpecOverrides

SPEC = SpecOverrides(imgsz=(32, 32)).apply(default_spec(1))


def _frozen(m):
    for p in m.parameters():
        p.requires_grad_(False)
    return m.eval()


def orientation(img: np.ndarray) -> float:
    """The dominant gradient direction in degrees [0, 180), from the structure tensor."""
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1)
    jxx, jyy, jxy = (gx * gx).sum(), (gy * gy).sum(), (gx * gy).sum()
    return float(np.degrees(0.5 * np.arctan2(2 * jxy, jxx - jyy)) % 180)


def test_edge_filters_get_inputs_with_their_orientation():
    # Kernels: d/dx (0 deg), d/dy (90), x - y (135: y grows downwards), x + y (45).
    xs = filter_inputs(_frozen(EdgeNet()), SPEC, "conv", [0, 1, 2, 3], AscentConfig())
    for x, want in zip(xs, (0.0, 90.0, 135.0, 45.0), strict=True):
        got = orientation(x[0])
        assert min(abs(got - want), 180 - abs(got - want)) < 15, (got, want)


def test_filters_see_a_layer_before_the_inplace_relu_after_it():
    # The bias puts every filter far below zero on the gray start: after the in-place ReLU
    # nothing is left, and ascent on the clipped output would get no gradient at all.
    net = EdgeNet()
    net.conv.bias = torch.nn.Parameter(torch.full((4,), -5.0))
    net.relu = torch.nn.ReLU(inplace=True)
    xs = filter_inputs(_frozen(net), SPEC, "conv", [0, 1], AscentConfig())
    for x, want in zip(xs, (0.0, 90.0), strict=True):
        got = orientation(x[0])
        assert min(abs(got - want), 180 - abs(got - want)) < 15, (got, want)


def test_class_maximizer_lights_up_the_planted_cue():
    xs = class_inputs(_frozen(CueNet()), SPEC, [0, 1], AscentConfig(l1=0.05))
    y0, y1, x0, x1 = CUE
    outside = np.ones((32, 32), bool)
    outside[y0:y1, x0:x1] = False
    cue = xs[1, 0, y0:y1, x0:x1].mean()
    assert cue > 0.9 and cue > xs[1, 0][outside].mean() + 0.3
    assert xs[0, 0, y0:y1, x0:x1].mean() < 0.1  # class "ok": the cue dark


def test_dream_changes_the_image_where_the_layer_sees_edges():
    img = np.zeros((1, 1, 32, 32), np.float32)
    img[..., 8:24, 8:24] = 1.0
    got = dream(_frozen(EdgeNet()), SPEC, "conv", img, AscentConfig(steps=12, lr=0.02), octaves=2)
    assert got.shape == img.shape and got.min() >= 0 and got.max() <= 1
    assert np.abs(got - img).mean() > 1e-3


def test_kernels_and_maps_are_labelled_with_shapes(tiny_cnn):
    m = tiny_cnn()
    sheet = kernels_sheet(m)
    assert sheet.ndim == 3 and sheet.dtype == np.uint8
    stages = feature_stages(m, np.random.default_rng(0).random((1, 3, 32, 32), np.float32))
    assert [s.label for s in stages] == [
        "0 (Conv2d): 3x32x32 -> 8x32x32",
        "3 (MaxPool2d): 8x32x32 -> 8x16x16",
        "4 (Conv2d): 8x16x16 -> 16x16x16",
    ]
    assert maps_sheet(stages).shape[0] > 3 * 64
