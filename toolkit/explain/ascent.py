"""The lecture's "What does CNN learn?": inputs found by gradient ascent.

- :func:`filter_inputs`: for each filter k of a layer, x* = argmax_x a^k, where a^k sums the
  filter's output over positions;
- :func:`class_inputs`: x* = argmax_x (y^i - lambda * sum |x_ij|), a class score (its
  margin over the others) with an optional L1 penalty on the pixels;
- :func:`dream`: DeepDream, an image changed to amplify what a hidden layer already sees.

The regularizers that make the pictures readable are those of "How convolutional neural
networks see the world" (Keras blog) and Yosinski et al. 2015: random jitter each step, an
occasional Gaussian blur, the L1 penalty, pixels kept in range, normalized gradient steps.
Everything works in the model's input space (after the spec's normalization).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolkit.explain.source import get_layer, import_torch
from toolkit.model.spec import ModelSpec


@dataclass(frozen=True)
class AscentConfig:
    """Gradient-ascent settings (steps are normalized: ``lr`` is in input units per step)."""

    steps: int = 96
    lr: float = 0.08
    l1: float = 0.0
    jitter: int = 2
    blur_every: int = 4
    blur_sigma: float = 0.6
    seed: int = 0


def pixel_range(spec: ModelSpec, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The input values of pixel 0 and 255 per channel: what a real image can hold."""
    pre = spec.preprocess
    mean = np.resize(np.asarray(pre.mean, np.float32), channels)
    std = np.resize(np.asarray(pre.std, np.float32), channels)
    lo, hi = (0 - mean) / std, (255 * pre.scale - mean) / std
    return np.minimum(lo, hi), np.maximum(lo, hi)


def _blur(x: Any, sigma: float) -> Any:
    torch = import_torch()
    r = max(1, round(2 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = torch.nn.functional.conv2d(
        x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), padding=(0, r), groups=c
    )
    return torch.nn.functional.conv2d(
        x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), padding=(r, 0), groups=c
    )


def ascend(
    objective: Callable[[Any], Any],
    x0: np.ndarray,
    spec: ModelSpec,
    cfg: AscentConfig,
    center: np.ndarray | None = None,
) -> np.ndarray:
    """Maximize ``objective(x) - l1 * mean|x - center|`` from ``x0`` ``[N, C, H, W]``.

    ``objective`` returns one value per sample (summed for the step). ``center`` is what the L1
    penalty pulls towards (default: mid-gray in input space).
    """
    torch = import_torch()
    gen = torch.Generator().manual_seed(cfg.seed)
    lo, hi = (torch.from_numpy(v).view(1, -1, 1, 1) for v in pixel_range(spec, x0.shape[1]))
    mid = (lo + hi) / 2 if center is None else torch.from_numpy(center)
    x = torch.from_numpy(np.ascontiguousarray(x0, np.float32)).clone()
    for step in range(cfg.steps):
        dy, dx = (int(v) for v in torch.randint(-cfg.jitter, cfg.jitter + 1, (2,), generator=gen))
        xs = torch.roll(x, (dy, dx), (2, 3)).requires_grad_(True)
        with torch.enable_grad():
            gain = (
                objective(xs).sum() - cfg.l1 * (xs - mid).abs().mean((1, 2, 3)).sum() * xs.numel()
            )
            (g,) = torch.autograd.grad(gain, xs)
        g = torch.roll(g, (-dy, -dx), (2, 3))
        g = g / g.abs().mean((1, 2, 3), keepdim=True).clamp(min=1e-12)
        x = torch.maximum(torch.minimum(x + cfg.lr * g, hi), lo)
        if cfg.blur_every and (step + 1) % cfg.blur_every == 0 and step + 1 < cfg.steps:
            x = _blur(x, cfg.blur_sigma)
    return x.numpy()


def _start(n: int, shape: tuple[int, ...], spec: ModelSpec, seed: int) -> np.ndarray:
    """Mid-gray plus a little noise: the blank image ascent starts from."""
    lo, hi = pixel_range(spec, shape[0])
    mid = ((lo + hi) / 2).reshape(1, -1, 1, 1)
    noise = np.random.default_rng(seed).normal(0, 0.05, (n, *shape)).astype(np.float32)
    return mid + noise * (hi - lo).reshape(1, -1, 1, 1)


def _activation(module: Any, layer: str) -> Callable[[Any], Any]:
    """``f(x) -> layer output`` as it left the layer: copied in the hook, or an in-place
    ReLU after it (``nn.ReLU(inplace=True)``) would clip it, and a BatchNorm's output would
    give no gradient wherever the ReLU will zero it."""
    sub = get_layer(module, layer)

    def run(x: Any) -> Any:
        got: dict[str, Any] = {}
        hook = sub.register_forward_hook(lambda _m, _i, o: got.__setitem__("a", o.clone()))
        try:
            module(x)
        finally:
            hook.remove()
        return got["a"]

    return run


def _inner(a: Any) -> Any:
    """A feature map without its outer eighth on each side."""
    mh, mw = max(1, a.shape[2] // 8), max(1, a.shape[3] // 8)
    if a.shape[2] <= 2 * mh or a.shape[3] <= 2 * mw:
        return a
    return a[:, :, mh:-mh, mw:-mw]


def filter_inputs(
    module: Any, spec: ModelSpec, layer: str, filters: list[int], cfg: AscentConfig,
    hw: tuple[int, int] | None = None,
) -> np.ndarray:  # fmt: skip
    """The input maximizing each filter's summed activation a^k: ``[len(filters), C, H, W]``.

    All filters ascend together, one sample each (a batch), so a layer costs one run.
    """
    torch = import_torch()
    act = _activation(module, layer)
    idx = torch.tensor(filters)
    shape = (spec.input.channels, *(hw or spec.input.hw))

    def objective(x: Any) -> Any:
        a = _inner(act(x))  # the border's zero padding would make an easy edge to exploit
        return a[torch.arange(len(filters)), idx].flatten(1).mean(1)

    return ascend(objective, _start(len(filters), shape, spec, cfg.seed), spec, cfg)


def class_inputs(module: Any, spec: ModelSpec, classes: list[int], cfg: AscentConfig) -> np.ndarray:
    """x* = argmax_x (m^i - l1 * sum |x|) for each class i: ``[len(classes), C, H, W]``.

    m^i = y^i - log sum_{j != i} exp(y^j), the class's margin over the others: a raw logit
    also grows by raising every class at once, and a log-softmax stops moving once the class
    wins. The penalty sums over the pixels, so even ``l1 = 0.01`` holds a 96x96 input at gray.
    """
    torch = import_torch()
    idx = torch.tensor(classes)
    rows = torch.arange(len(classes))
    shape = (spec.input.channels, *spec.input.hw)

    def objective(x: Any) -> Any:
        out = module(x)
        out = out.reshape(out.shape[0], -1)
        own = out[rows, idx]
        if out.shape[1] < 2:
            return own
        others = out.clone()
        others[rows, idx] = float("-inf")
        return own - torch.logsumexp(others, 1)

    return ascend(objective, _start(len(classes), shape, spec, cfg.seed), spec, cfg)


def _octaves(act: Callable[[Any], Any], x: Any, octaves: int) -> list[tuple[int, int]]:
    """The octave sizes, coarse to full, that the model runs at (fixed-size models: full only)."""
    torch = import_torch()
    h, w = x.shape[2:]
    sizes = []
    for o in reversed(range(octaves)):
        size = (max(8, round(h / 1.4**o)), max(8, round(w / 1.4**o)))
        try:
            with torch.no_grad():
                act(torch.nn.functional.interpolate(x, size=size, mode="bilinear"))
        except RuntimeError:
            continue
        sizes.append(size)
    return sizes or [(h, w)]


def dream(
    module: Any, spec: ModelSpec, layer: str, x: np.ndarray, cfg: AscentConfig, octaves: int = 3
) -> np.ndarray:
    """DeepDream: ascend the mean squared activation of ``layer`` from the image ``x``
    ``[1, C, H, W]``, from a coarse octave to full size (each 1.4x larger); what each octave
    added is carried up to the next, over the image's own detail at that size."""
    torch = import_torch()
    act = _activation(module, layer)
    h, w = x.shape[2:]
    full = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    added = torch.zeros_like(full)
    for size in _octaves(act, full, octaves):
        base = torch.nn.functional.interpolate(full, size=size, mode="bilinear")
        start = base + torch.nn.functional.interpolate(added, size=size, mode="bilinear")
        got = ascend(lambda t: act(t).pow(2).flatten(1).mean(1), start.numpy(), spec, cfg,
                     center=start.numpy())  # fmt: skip
        added = torch.from_numpy(got) - base
    return (full + torch.nn.functional.interpolate(added, size=(h, w), mode="bilinear")).numpy()
