"""Scene-classification image patterns: themed scenes (airplane, airport, baseball field, beach,
bridge, bare land), a generic per-class pattern for other names, and single aircraft on tarmac
(AFGR50)."""
from __future__ import annotations

import math
from typing import Callable, Dict, Sequence

import cv2
import numpy as np

from .aircraft import aircraft
from .drawing import ellipse, fill_polygon, fixed_point, lowfreq_noise
from .objects import SynthObject


def _scene_base(rng: np.random.Generator, size: int, bgr: Sequence[float], var: float = 0.1,
                grids: Sequence[int] = (3, 6, 12)) -> np.ndarray:
    """Float32 BGR base: ``bgr`` jittered per channel, modulated by smooth noise."""
    base = np.array(bgr, np.float32) * rng.uniform(0.88, 1.12, 3).astype(np.float32)
    return base[None, None, :] * (1 + var * lowfreq_noise(rng, size, grids)[..., None])


def _band(img: np.ndarray, center, ang: float, length: float, width: float, color) -> None:
    """Fill a ``length`` x ``width`` band centred on ``center``, rotated by ``ang`` (radians)."""
    c, s = math.cos(ang), math.sin(ang)
    pts = np.array([[-length / 2, -width / 2], [length / 2, -width / 2],
                    [length / 2, width / 2], [-length / 2, width / 2]])
    rot = np.array([[c, -s], [s, c]])
    fill_polygon(img, pts @ rot.T + np.asarray(center), color)


def _scene_airplane(rng: np.random.Generator, size: int) -> np.ndarray:
    img = np.clip(_scene_base(rng, size, (125, 128, 128), 0.08), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        shape = aircraft('airliner', rng)
        obj = SynthObject('airplane', np.zeros((4, 2)), (0, 0, 0, 0), *rng.uniform(
            0.2, 0.8, 2) * size, 1, 1, 0, float(rng.uniform(0, 360)), (0, 0), shape,
            rng.uniform(0.3, 0.5) * size)
        color = rng.uniform(200, 240) + rng.uniform(-8, 8, 3)
        for poly, tone in shape.layers:
            fill_polygon(img, obj.to_image(poly), np.clip(color * tone, 0, 255))
    return img


def _scene_airport(rng: np.random.Generator, size: int) -> np.ndarray:
    img = np.clip(_scene_base(rng, size, (95, 125, 120), 0.1), 0, 255).astype(np.uint8)
    ang = rng.uniform(0, np.pi)
    for k in range(int(rng.integers(1, 3))):
        c = size / 2 + rng.normal(0, size * 0.15, 2)
        a = ang + (k * rng.choice([0.0, np.pi / 2, np.pi / 3]))
        w = rng.uniform(0.12, 0.2) * size
        _band(img, c, a, size * 2, w, (70, 72, 75))
        for t in np.linspace(-size, size, 12):
            d = np.array([math.cos(a), math.sin(a)]) * t
            _band(img, c + d, a, size * 0.05, max(1.0, w * 0.06), (230, 230, 230))
    return img


def _scene_baseball(rng: np.random.Generator, size: int) -> np.ndarray:
    img = np.clip(_scene_base(rng, size, (60, 140, 80), 0.1), 0, 255).astype(np.uint8)
    c = size / 2 + rng.normal(0, size * 0.06, 2)
    ang = rng.uniform(0, 2 * np.pi)
    r = rng.uniform(0.35, 0.45) * size
    t = np.linspace(ang - np.pi / 4, ang + np.pi / 4, 16)
    fan = np.concatenate([[c], c + r * np.stack([np.cos(t), np.sin(t)], 1)])
    fill_polygon(img, fan, (90, 140, 185))  # sand infield
    d = r * 0.45
    diamond = c + np.array([[0, 0], [d * math.cos(ang - np.pi / 4), d * math.sin(ang - np.pi / 4)],
                            [d * 1.41 * math.cos(ang), d * 1.41 * math.sin(ang)],
                            [d * math.cos(ang + np.pi / 4), d * math.sin(ang + np.pi / 4)]])
    fill_polygon(img, diamond, (70, 150, 90))
    cv2.polylines(img, [fixed_point(diamond)], True, (235, 235, 235), 1, cv2.LINE_AA, 4)
    return img


def _scene_beach(rng: np.random.Generator, size: int) -> np.ndarray:
    sea = _scene_base(rng, size, (130, 100, 40), 0.08)
    sand = _scene_base(rng, size, (150, 195, 215), 0.06)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    coord = (xx - size / 2) * math.cos(ang) + (yy - size / 2) * math.sin(ang)
    edge = (coord + size * 0.08 * lowfreq_noise(rng, size, (3,), (1.0,)) +
            rng.uniform(-0.15, 0.15) * size)
    m = np.clip(edge / 1.5 + 0.5, 0, 1)[..., None]
    img = sea * (1 - m) + sand * m
    surf = np.exp(-((edge + 2.5) ** 2) / 4.0)[..., None]
    img = img * (1 - surf) + 240 * surf
    return np.clip(img, 0, 255).astype(np.uint8)


def _scene_bridge(rng: np.random.Generator, size: int) -> np.ndarray:
    img = np.clip(_scene_base(rng, size, (115, 95, 50), 0.1), 0, 255).astype(np.uint8)
    ang = rng.uniform(0, np.pi)
    c = size / 2 + rng.normal(0, size * 0.08, 2)
    w = rng.uniform(0.08, 0.14) * size
    _band(img, c, ang, size * 2, w + 2, (40, 40, 40))
    _band(img, c, ang, size * 2, w, (165, 165, 160))
    _band(img, c, ang, size * 2, max(1.0, w * 0.08), (235, 235, 235))
    for side in (-1, 1):  # banks
        d = np.array([math.cos(ang), math.sin(ang)]) * side * size * 0.75
        _band(img, c + d, ang + np.pi / 2, size * 2, size * rng.uniform(0.3, 0.5),
              (80, 120, 110))
    return img


def _scene_bareland(rng: np.random.Generator, size: int) -> np.ndarray:
    img = _scene_base(rng, size, (95, 130, 165), 0.12, (4, 12, 32))
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(0, 3))):
        p = rng.uniform(0, size, 2)
        q = rng.uniform(0, size, 2)
        cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q), (120, 150, 180), 1,
                 cv2.LINE_AA)
    return img


def generic_pattern(kind: int, params: np.random.Generator, rng: np.random.Generator,
                    size: int) -> np.ndarray:
    """Fallback class pattern ``kind`` (0 stripes, 1 blobs, 2 grid, 3 rings); ``params`` is
    fixed per class, ``rng`` per image."""
    palette = params.uniform(40, 220, 3)
    img = _scene_base(rng, size, palette, 0.08)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == 0:  # stripes
        ang = params.uniform(0, np.pi) + rng.normal(0, 0.2)
        lam = params.uniform(4, 12) * rng.uniform(0.9, 1.1)
        wave = np.sin(2 * np.pi * (xx * math.cos(ang) + yy * math.sin(ang)) / lam + rng.uniform(
            0, 6.3))
        img *= (1 + 0.25 * wave)[..., None]
    elif kind == 1:  # blobs
        out = np.clip(img, 0, 255).astype(np.uint8)
        for _ in range(int(params.integers(5, 30) * rng.uniform(0.8, 1.2))):
            c = rng.uniform(0, size, 2)
            r = params.uniform(1.5, 4) * rng.uniform(0.8, 1.2)
            fill_polygon(out, ellipse(c[0], c[1], r, r, 12), 255 - palette)
        return out
    elif kind == 2:  # grid
        step = params.uniform(6, 14) * rng.uniform(0.9, 1.1)
        ox, oy = rng.uniform(0, step, 2)
        grid = ((np.mod(xx + ox, step) < 1.5) | (np.mod(yy + oy, step) < 1.5)).astype(np.float32)
        img = img * (1 - 0.5 * grid[..., None])
    else:  # rings
        c = size / 2 + rng.normal(0, size * 0.1, 2)
        r = np.hypot(xx - c[0], yy - c[1])
        lam = params.uniform(5, 12) * rng.uniform(0.9, 1.1)
        img *= (1 + 0.3 * np.sin(2 * np.pi * r / lam))[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


#: A scene pattern draws one BGR uint8 image of ``size`` px from a random stream.
ScenePattern = Callable[[np.random.Generator, int], np.ndarray]
#: Themed patterns by class name, lower-case letters and digits only ('Baseball Field' ->
#: 'baseballfield').
SCENE_PATTERNS: Dict[str, ScenePattern] = {
    'airplane': _scene_airplane, 'airport': _scene_airport, 'baseballdiamond': _scene_baseball,
    'baseballfield': _scene_baseball, 'beach': _scene_beach, 'bridge': _scene_bridge,
    'bareland': _scene_bareland,
}


def scene_aircraft(name: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """One aircraft of type ``name`` roughly centred on a tarmac with painted lines."""
    img = _scene_base(rng, size, (120, 122, 118), 0.08)
    out = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        c = rng.uniform(0, size, 2)
        _band(out, c, rng.uniform(0, np.pi), size * 2, 1.0, (80, 170, 190))
    shape = aircraft(name, rng)
    umin, umax, vmin, vmax = shape.extent()
    scale = rng.uniform(0.55, 0.75) * size / max(umax - umin, vmax - vmin)
    obj = SynthObject(name, np.zeros((4, 2)), (0, 0, 0, 0),
                      *(size / 2 + rng.normal(0, 0.05 * size, 2)), 1, 1, 0,
                      float(rng.uniform(0, 360)), (0, 0), shape, scale,
                      ((umin + umax) / 2, (vmin + vmax) / 2))
    shadow = np.zeros((size, size), np.uint8)
    for poly, _ in shape.layers:
        fill_polygon(shadow, obj.to_image(poly) + 1.5, 255)
    out = (out * (1 - 0.4 * cv2.GaussianBlur(shadow.astype(np.float32) / 255, (0, 0), 1.0)
                  [..., None])).astype(np.uint8)
    level = rng.uniform(180, 235)
    for poly, tone in shape.layers:
        fill_polygon(out, obj.to_image(poly), np.clip(level * tone + rng.uniform(-8, 8, 3), 0, 255))
    return out
