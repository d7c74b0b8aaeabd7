"""Synthetic metal parts with defects: sampled, drawn into a sprite, pasted into a scene.

A part is described by a small frozen :class:`PartSpec` (shape, holes, metal tone, grain,
lighting, texture seed, defects). :func:`draw_part` turns it into a :class:`Sprite` (a
premultiplied float image, its alpha and one mask per defect) deterministically, so the same
part can be pasted at any position and angle (:func:`paste_part`), frame after frame, and the
boxes of its defects come back in the scene's pixel coordinates.

Everything is numpy + OpenCV on arrays of the part's own size (a few thousand pixels), so one
part takes well under a millisecond to draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

PART_KINDS = ("plate", "washer", "bracket")
DEFECT_TYPES = ("scratch", "spot", "crack", "missing_hole")

# A defect mask below this is treated as "no defect here": masks have compact support, so
# pixels outside a defect's box are exactly those of the same part without it.
_MASK_FLOOR = 0.05


@dataclass(frozen=True)
class DefectSpec:
    """One defect; its shape and place on the part are drawn from ``seed``."""

    label: str
    seed: int


@dataclass(frozen=True)
class PartSpec:
    """Everything that decides how a part looks. Lengths are in units of ``diameter``."""

    kind: str
    diameter: float
    aspect: float = 0.8
    holes: tuple[tuple[float, float, float], ...] = ()
    tone: float = 160.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    grain_angle: float = 0.0
    grain: float = 10.0
    light_angle: float = 0.0
    light: float = 0.15
    texture_seed: int = 0
    defects: tuple[DefectSpec, ...] = field(default_factory=tuple)

    def with_defects(self, labels: tuple[str, ...], rng: np.random.Generator) -> PartSpec:
        """The same part with ``labels`` defects, each given its own seed from ``rng``."""
        for label in labels:
            if label not in DEFECT_TYPES:
                raise ValueError(f"unknown defect '{label}' (expected one of {DEFECT_TYPES})")
        seeds = rng.integers(0, 2**31, size=len(labels))
        return replace(
            self, defects=tuple(DefectSpec(lb, int(s)) for lb, s in zip(labels, seeds, strict=True))
        )


@dataclass(frozen=True)
class DefectBox:
    """A defect's box in scene pixels (``x1, y1, x2, y2``) and its label."""

    label: str
    xyxy: tuple[float, float, float, float]


@dataclass(frozen=True)
class Sprite:
    """A drawn part: premultiplied BGR float image, alpha in [0, 1], and defect masks."""

    image: np.ndarray
    alpha: np.ndarray
    masks: tuple[tuple[str, np.ndarray], ...]


def sample_part(rng: np.random.Generator, diameter: float, kind: str | None = None) -> PartSpec:
    """Draw a random part (no defects) about ``diameter`` pixels across."""
    kind = kind or PART_KINDS[int(rng.integers(len(PART_KINDS)))]
    if kind not in PART_KINDS:
        raise ValueError(f"unknown part kind '{kind}' (expected one of {PART_KINDS})")
    aspect = float(rng.uniform(0.6, 0.9))
    if kind == "plate":
        hx, hy = 0.5 - 0.12, aspect / 2 - 0.12
        r = float(rng.uniform(0.05, 0.075))
        holes = [(sx * hx, sy * hy, r) for sx in (-1, 1) for sy in (-1, 1)]
        if rng.random() < 0.5:
            holes.append((0.0, 0.0, float(rng.uniform(0.08, 0.14))))
    elif kind == "washer":
        holes = [(0.0, 0.0, float(rng.uniform(0.13, 0.2)))]
    else:  # bracket: an L of two arms, a hole near each end
        r = float(rng.uniform(0.05, 0.07))
        holes = [(-0.32, -0.3, r), (0.3, 0.32, r), (-0.32, 0.32, r * 0.8)]
    # Metals: steel (neutral/cool), aluminium (bright), brass (warm).
    tints = ((1.0, 1.0, 1.0), (1.06, 1.0, 0.94), (0.8, 0.95, 1.08))
    tint = tints[int(rng.choice(3, p=(0.6, 0.25, 0.15)))]
    return PartSpec(
        kind=kind,
        diameter=float(diameter),
        aspect=aspect,
        holes=tuple(holes),
        tone=float(rng.uniform(125, 195)),
        tint=tint,
        grain_angle=float(rng.uniform(0, 180)),
        grain=float(rng.uniform(5, 12)),
        light_angle=float(rng.uniform(0, 360)),
        light=float(rng.uniform(0.08, 0.22)),
        texture_seed=int(rng.integers(0, 2**31)),
    )


def _shape_mask(spec: PartSpec, size: int, hole_skip: int | None) -> np.ndarray:
    """The part's solid area as uint8 0/255 in a ``size`` x ``size`` patch."""
    d, c = spec.diameter, (size - 1) / 2
    m = np.zeros((size, size), np.uint8)

    def rrect(cx: float, cy: float, w: float, h: float, r: float) -> None:
        x0, x1, y0, y1 = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
        r = min(r, w / 2, h / 2)
        pts = np.array([[x0 + r, y0], [x1 - r, y0], [x1 - r, y1], [x0 + r, y1]])
        cv2.fillConvexPoly(m, np.round(pts).astype(np.int32), 255, cv2.LINE_AA)
        pts = np.array([[x0, y0 + r], [x1, y0 + r], [x1, y1 - r], [x0, y1 - r]])
        cv2.fillConvexPoly(m, np.round(pts).astype(np.int32), 255, cv2.LINE_AA)
        for px, py in ((x0 + r, y0 + r), (x1 - r, y0 + r), (x0 + r, y1 - r), (x1 - r, y1 - r)):
            cv2.circle(m, (round(px), round(py)), round(r), 255, -1, cv2.LINE_AA)

    if spec.kind == "plate":
        rrect(c, c, d, d * spec.aspect, d * 0.12)
    elif spec.kind == "washer":
        cv2.circle(m, (round(c), round(c)), round(d / 2), 255, -1, cv2.LINE_AA)
    else:
        arm = d * 0.36
        rrect(c - d / 2 + arm / 2, c, arm, d, arm * 0.3)
        rrect(c, c + d / 2 - arm / 2, d, arm, arm * 0.3)
    for i, (u, v, r) in enumerate(spec.holes):
        if i != hole_skip:
            cv2.circle(m, (round(c + u * d), round(c + v * d)), round(r * d), 0, -1, cv2.LINE_AA)
    return m


def _metal(spec: PartSpec, size: int, solid: np.ndarray) -> np.ndarray:
    """Brushed-metal luminance: grain streaks, soft blotches, light gradient, bevelled rims."""
    rng = np.random.default_rng(spec.texture_seed)
    d = spec.diameter
    noise = rng.standard_normal((size, size), dtype=np.float32)
    # Grain: noise smeared along one direction by a line kernel.
    k = max(5, int(d * 0.35)) | 1
    kernel = np.zeros((k, k), np.float32)
    a = math.radians(spec.grain_angle)
    half = (k - 1) / 2
    p0 = (round(half - half * math.cos(a)), round(half - half * math.sin(a)))
    p1 = (round(half + half * math.cos(a)), round(half + half * math.sin(a)))
    cv2.line(kernel, p0, p1, 1.0, 1)
    kernel /= math.sqrt(float(kernel.sum()))
    grain = cv2.filter2D(noise, -1, kernel, borderType=cv2.BORDER_REFLECT)
    fine = cv2.GaussianBlur(noise, (0, 0), 0.7)
    blotch = cv2.GaussianBlur(rng.standard_normal((size, size), dtype=np.float32), (0, 0), d / 8)
    blotch *= 1.0 / max(float(np.abs(blotch).max()), 1e-6)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2
    la = math.radians(spec.light_angle)
    ramp = ((xx - c) * math.cos(la) + (yy - c) * math.sin(la)) / (d / 2)
    lum = spec.tone * (1 + spec.light * ramp + 0.06 * blotch) + spec.grain * grain + 3 * fine
    # Rims: dark just inside every edge (holes too), bright on the edges facing the light.
    dist = cv2.distanceTransform(solid, cv2.DIST_L2, 3)
    bevel = max(1.5, d * 0.03)
    lum *= 0.72 + 0.28 * np.clip(dist / bevel, 0, 1)
    soft = cv2.GaussianBlur(solid.astype(np.float32) / 255, (0, 0), bevel * 0.6)
    gx = cv2.Sobel(soft, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(soft, cv2.CV_32F, 0, 1, ksize=3)
    lum += 55 * np.clip(-(gx * math.cos(la) + gy * math.sin(la)), -0.5, 1.0)
    return lum


def _place(rng: np.random.Generator, solid: np.ndarray, margin: float) -> tuple[float, float]:
    """A random point on the part's surface, at least ``margin`` px inside when possible."""
    dist = cv2.distanceTransform(solid, cv2.DIST_L2, 3)
    for m in (margin, margin / 2, 1.0):
        idx = np.flatnonzero(dist.ravel() >= m)
        if idx.size:
            i = int(idx[rng.integers(idx.size)])
            return float(i % solid.shape[1]), float(i // solid.shape[1])
    return (solid.shape[1] - 1) / 2, (solid.shape[0] - 1) / 2


def _polylines(shape: tuple[int, ...], lines: list[np.ndarray], thick: int) -> np.ndarray:
    """Anti-aliased open polylines as a float mask in [0, 1] (OpenCV antialiases only uint8)."""
    m = np.zeros(shape[:2], np.uint8)
    pts = [np.round(p * 16).astype(np.int32) for p in lines]
    cv2.polylines(m, pts, False, 255, thick, cv2.LINE_AA, 4)
    return m.astype(np.float32) / 255


def _scratch(rng: np.random.Generator, solid: np.ndarray, d: float) -> tuple[np.ndarray, float]:
    """A thin, nearly straight line, brighter or darker than the metal, lying on the metal."""
    length = d * rng.uniform(0.45, 0.75)
    bend = rng.uniform(-0.06, 0.06) * length  # a slight bow, sideways at the middle
    sign = 1.0 if rng.random() < 0.55 else -1.0
    strength = sign * rng.uniform(90, 130)
    t = np.linspace(-0.5, 0.5, 24)[:, None]
    best, best_cover = None, -1.0
    # A few tries for a place where the whole line is on metal (not over a hole or the edge).
    for _ in range(8):
        x, y = _place(rng, solid, length * 0.25)
        a = rng.uniform(0, math.pi)
        u, n = np.array([math.cos(a), math.sin(a)]), np.array([-math.sin(a), math.cos(a)])
        pts = np.array([x, y]) + t * length * u + (1 - 4 * t**2) * bend * n
        xi = np.clip(np.round(pts[:, 0]).astype(int), 0, solid.shape[1] - 1)
        yi = np.clip(np.round(pts[:, 1]).astype(int), 0, solid.shape[0] - 1)
        cover = float((solid[yi, xi] > 127).mean())
        if cover > best_cover:
            best, best_cover = pts, cover
        if cover >= 0.95:
            break
    assert best is not None
    return _polylines(solid.shape, [best], max(1, round(d / 35))), strength


def _spot(rng: np.random.Generator, solid: np.ndarray, d: float) -> tuple[np.ndarray, float]:
    """A dark blob (stain) or a dent (dark pit with a bright lip), irregular at the edge."""
    sigma = d * rng.uniform(0.07, 0.1)
    x, y = _place(rng, solid, sigma * 2)
    h, w = solid.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, math.pi)
    ca, sa = math.cos(a), math.sin(a)
    u = ((xx - x) * ca + (yy - y) * sa) / sigma
    v = (-(xx - x) * sa + (yy - y) * ca) / (sigma * rng.uniform(0.6, 1.0))
    r2 = u * u + v * v
    wobble = 1 + 0.12 * np.sin(np.arctan2(v, u) * int(rng.integers(2, 5)) + rng.uniform(0, 6.3))
    field = np.exp(-((r2 / (2 * wobble**2)) ** 1.5))
    if rng.random() < 0.5:  # dent: a bright lip on one side
        b = rng.uniform(0, 2 * math.pi)
        lip = np.exp(-((u - 1.3 * math.cos(b)) ** 2 + (v - 1.3 * math.sin(b)) ** 2) / 1.2)
        field = field - 0.45 * lip
    return field.astype(np.float32), -rng.uniform(95, 140)


def _crack(rng: np.random.Generator, solid: np.ndarray, d: float) -> tuple[np.ndarray, float]:
    """A jagged dark polyline (a random walk pulled along one heading), sometimes branched."""
    x, y = _place(rng, solid, d * 0.1)
    heading = rng.uniform(0, 2 * math.pi)

    def walk(x: float, y: float, heading: float, n: int) -> np.ndarray:
        pts, a = [(x, y)], heading
        for _ in range(n):
            a = heading + 0.5 * (a - heading) + rng.normal(0, 0.75)
            step = d * rng.uniform(0.04, 0.065)
            x, y = x + math.cos(a) * step, y + math.sin(a) * step
            pts.append((x, y))
        return np.array(pts)

    n = int(rng.integers(4, 7))
    lines = [walk(x, y, heading, n), walk(x, y, heading + math.pi, n)]
    if rng.random() < 0.5:
        j = int(rng.integers(1, n))
        lines.append(walk(*lines[0][j], heading + rng.choice([-1, 1]) * 0.9, max(2, n // 2)))
    thick = max(1, round(d / 35))
    # A faint dark halo around a hard dark core.
    mask = np.maximum(
        0.35 * _polylines(solid.shape, lines, thick + 2), _polylines(solid.shape, lines, thick)
    )
    return mask, -rng.uniform(0.75, 0.9)


_DRAW = {"scratch": _scratch, "spot": _spot, "crack": _crack}


def draw_part(spec: PartSpec) -> Sprite:
    """Draw ``spec`` into a square sprite about ``spec.diameter`` pixels across."""
    size = math.ceil(spec.diameter) + 4
    missing = [df for df in spec.defects if df.label == "missing_hole"]
    skip = None
    if missing and spec.holes:
        skip = int(np.random.default_rng(missing[0].seed).integers(len(spec.holes)))
    solid = _shape_mask(spec, size, skip)
    lum = _metal(spec, size, solid)
    alpha = solid.astype(np.float32) / 255
    masks: list[tuple[str, np.ndarray]] = []
    for df in spec.defects:
        rng = np.random.default_rng(df.seed)
        if df.label == "missing_hole":
            if skip is None:
                continue
            mask = np.zeros_like(alpha)
            u, v, r = spec.holes[skip]
            c, d = (size - 1) / 2, spec.diameter
            cv2.circle(mask, (round(c + u * d), round(c + v * d)), round(r * d) + 1, 1.0, -1)
            masks.append((df.label, mask))
            continue
        field, strength = _DRAW[df.label](rng, solid, spec.diameter)
        field *= alpha
        # Compact support: below the floor there is no defect (its box is then exact).
        field[np.abs(field) < _MASK_FLOOR] = 0
        if df.label == "crack":
            lum *= 1 + strength * field
        else:
            lum += strength * field
        masks.append((df.label, (field != 0).astype(np.float32)))
    bgr = np.clip(lum, 0, 255)[..., None] * np.asarray(spec.tint, np.float32)
    return Sprite(
        image=(bgr * alpha[..., None]).astype(np.float32), alpha=alpha, masks=tuple(masks)
    )


def paste_part(
    canvas: np.ndarray,
    sprite: Sprite,
    center: tuple[float, float],
    angle: float = 0.0,
    *,
    shadow: float = 0.45,
    shadow_offset: tuple[float, float] = (2.0, 3.0),
) -> list[DefectBox]:
    """Composite ``sprite`` onto a float32 BGR ``canvas`` in place; return its defect boxes.

    ``center`` is in canvas pixels (it may lie partly or wholly outside the canvas, as for a
    part entering a conveyor's field of view); ``angle`` is counter-clockwise degrees. Boxes
    are clipped to the canvas; defects outside it are left out.
    """
    H, W = canvas.shape[:2]
    s = sprite.alpha.shape[0]
    c = (s - 1) / 2
    M = cv2.getRotationMatrix2D((c, c), angle, 1.0)
    M[:, 2] += (center[0] - c, center[1] - c)
    corners = np.array([[0, 0, 1], [s, 0, 1], [0, s, 1], [s, s, 1]], np.float64) @ M.T
    blur = max(1.0, s * 0.04)
    pad = 3 * blur + max(abs(shadow_offset[0]), abs(shadow_offset[1])) + 2
    x0 = max(0, math.floor(corners[:, 0].min() - pad))
    y0 = max(0, math.floor(corners[:, 1].min() - pad))
    x1 = min(W, math.ceil(corners[:, 0].max() + pad))
    y1 = min(H, math.ceil(corners[:, 1].max() + pad))
    if x1 <= x0 or y1 <= y0:
        return []
    roi = canvas[y0:y1, x0:x1]
    size = (x1 - x0, y1 - y0)
    Mr = M.copy()
    Mr[:, 2] -= (x0, y0)
    if shadow > 0:
        Ms = Mr.copy()
        Ms[:, 2] += shadow_offset
        sh = cv2.warpAffine(sprite.alpha, Ms, size, flags=cv2.INTER_LINEAR)
        sh = cv2.GaussianBlur(sh, (0, 0), blur)
        roi *= (1 - shadow * sh)[..., None]
    a = cv2.warpAffine(sprite.alpha, Mr, size, flags=cv2.INTER_LINEAR)
    img = cv2.warpAffine(sprite.image, Mr, size, flags=cv2.INTER_LINEAR)
    roi *= (1 - a)[..., None]
    roi += img
    boxes = []
    for label, mask in sprite.masks:
        ys, xs = np.nonzero(mask)
        if xs.size == 0:
            continue
        px = M[0, 0] * xs + M[0, 1] * ys + M[0, 2]
        py = M[1, 0] * xs + M[1, 1] * ys + M[1, 2]
        bx0, bx1 = max(0.0, px.min() - 0.5), min(float(W), px.max() + 0.5)
        by0, by1 = max(0.0, py.min() - 0.5), min(float(H), py.max() + 0.5)
        if bx1 - bx0 >= 1 and by1 - by0 >= 1:
            boxes.append(DefectBox(label, (float(bx0), float(by0), float(bx1), float(by1))))
    return boxes
