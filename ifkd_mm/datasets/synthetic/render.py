"""Image rendering: optical (sea / ground / concrete texture, distractors, soft shadows, objects,
pixel noise) and SAR-like (dark clutter, dim silhouettes, bright scatterers, speckle)."""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from .drawing import ellipse, fill_polygon, lowfreq_noise
from .objects import SynthObject

#: Optical background kind -> ranges of its base colour, per channel.
PALETTES = {
    'sea': ((95, 135), (65, 100), (25, 60)),  # BGR ranges
    'ground': ((70, 105), (95, 130), (105, 145)),
    'concrete': ((105, 135), (110, 140), (110, 140)),
}


def optical_background(rng: np.random.Generator, size: int, kind: str = 'sea') -> np.ndarray:
    """Sea / ground texture: smooth noise, wave streaks, optional land patch; float32 BGR."""
    base = np.array([rng.uniform(*r) for r in PALETTES[kind]], np.float32)
    low = lowfreq_noise(rng, size)
    img = base[None, None, :] * (1 + 0.12 * low[..., None])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == 'sea':
        phi = rng.uniform(0, np.pi)
        lam = rng.uniform(5, 12)
        warp = lowfreq_noise(rng, size, (4,), (1.0,))
        waves = np.sin(2 * np.pi * (xx * math.cos(phi) + yy * math.sin(phi)) / lam + 1.5 * warp)
        amp = rng.uniform(3, 7) * np.clip(1 + 0.6 * lowfreq_noise(rng, size, (3,), (1.0,)), 0, 2)
        img += (amp * waves)[..., None]
        if rng.random() < 0.35:  # a strip of land along one edge
            land = np.array([rng.uniform(*r) for r in PALETTES['ground']], np.float32)
            depth = rng.uniform(0.08, 0.18) * size
            edge = int(rng.integers(4))
            coord = (xx, yy, size - 1 - xx, size - 1 - yy)[edge]
            mask = (coord < depth + 4 * lowfreq_noise(rng, size, (5,), (1.0,))).astype(np.float32)
            mask = cv2.GaussianBlur(mask, (0, 0), 1.0)[..., None]
            tex = land * (1 + 0.15 * lowfreq_noise(rng, size, (8, 24), (1.0, 0.5))[..., None])
            img = img * (1 - mask) + tex * mask
    else:
        img *= 1 + 0.06 * lowfreq_noise(rng, size, (24, 48), (1.0, 0.6))[..., None]
        for _ in range(int(rng.integers(0, 3))):  # roads / field edges
            p0 = rng.uniform(0, size, 2)
            ang = rng.uniform(0, np.pi)
            d = np.array([math.cos(ang), math.sin(ang)]) * size * 1.5
            tone = float(rng.uniform(0.75, 1.2))
            thick = int(rng.integers(1, 4))
            road = img.copy()
            cv2.line(road, tuple(int(v) for v in p0 - d), tuple(int(v) for v in p0 + d),
                     tuple(float(v) for v in base * tone), thick, cv2.LINE_AA)
            img = road
    return img


def _distractors(rng: np.random.Generator, img: np.ndarray, size: int, lo: float = 60,
                 hi: float = 215) -> None:
    """A few blobs, specks and thin lines that are not objects (drawn in place, uint8)."""
    for _ in range(int(rng.integers(2, 7))):
        kind = rng.choice(['blob', 'speck', 'line'])
        tone = float(rng.uniform(lo, hi))
        color = tuple(float(np.clip(tone + rng.uniform(-15, 15), 0, 255)) for _ in range(3))
        if img.ndim == 2:
            color = color[:1]
        c = rng.uniform(0, size, 2)
        if kind == 'blob':
            axes = rng.uniform(0.012, 0.04, 2) * size
            poly = ellipse(c[0], c[1], axes[0], axes[1], 16)
            fill_polygon(img, poly, color)
        elif kind == 'speck':
            r = rng.uniform(0.01, 0.035) * size
            ang = rng.uniform(0, np.pi)
            pts = np.array([[-r, -r * 0.6], [r, -r * 0.6], [r, r * 0.6], [-r, r * 0.6]])
            rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
            fill_polygon(img, pts @ rot.T + c, color)
        else:
            ang = rng.uniform(0, np.pi)
            length = rng.uniform(0.15, 0.5) * size
            d = np.array([math.cos(ang), math.sin(ang)]) * length / 2
            cv2.line(img, tuple(int(v) for v in c - d), tuple(int(v) for v in c + d), color, 1,
                     cv2.LINE_AA)


def render_optical(rng: np.random.Generator, size: int, objects: Sequence[SynthObject],
                   kind: str = 'sea') -> np.ndarray:
    """BGR uint8 image: background, distractors, soft shadows, objects, pixel noise."""
    img = optical_background(rng, size, kind)
    sun = rng.uniform(0, 2 * np.pi)
    shadow = np.zeros((size, size), np.uint8)
    for obj in objects:
        off = np.array([math.cos(sun), math.sin(sun)]) * max(1.0, 0.04 * obj.scale)
        for poly, _ in obj.shape.layers:
            fill_polygon(shadow, obj.to_image(poly) + off, 255)
    shadow = cv2.GaussianBlur(shadow.astype(np.float32) / 255, (0, 0), 1.2)
    img *= (1 - 0.45 * shadow)[..., None]
    out = np.clip(img, 0, 255).astype(np.uint8)
    _distractors(rng, out, size)
    for obj in objects:
        dark = kind != 'sea' and rng.random() < 0.1  # a few dark-painted objects on land
        level = rng.uniform(30, 50) if dark else rng.uniform(165, 215)
        tint = rng.uniform(-12, 12, 3)
        base = level + tint
        for poly, tone in obj.shape.layers:
            t = tone if not dark else 2.0 - tone * 0.8
            color = np.clip(base * t + rng.uniform(-6, 6), 0, 255)
            fill_polygon(out, obj.to_image(poly), color)
    out = out.astype(np.float32)
    out = cv2.GaussianBlur(out, (0, 0), 0.5)
    out += rng.normal(0, rng.uniform(2.5, 5.0), out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def _splat(canvas: np.ndarray, x: float, y: float, amp: float, sigma: float) -> None:
    """Max-blend a Gaussian spot of peak ``amp`` at ``(x, y)`` into ``canvas`` in place."""
    r = int(math.ceil(3 * sigma))
    x0, y0 = int(round(x)), int(round(y))
    ys, xs = slice(max(0, y0 - r), min(canvas.shape[0], y0 + r + 1)), \
        slice(max(0, x0 - r), min(canvas.shape[1], x0 + r + 1))
    if ys.start >= ys.stop or xs.start >= xs.stop:
        return
    gy, gx = np.mgrid[ys, xs].astype(np.float32)
    blob = amp * np.exp(-((gx - x) ** 2 + (gy - y) ** 2) / (2 * sigma ** 2))
    canvas[ys, xs] = np.maximum(canvas[ys, xs], blob)


def render_sar(rng: np.random.Generator, size: int, objects: Sequence[SynthObject]) -> np.ndarray:
    """SAR-like BGR uint8 image: dark clutter, dim silhouettes, bright scatterers, speckle."""
    bg = rng.uniform(22, 40) * np.clip(1 + 0.25 * lowfreq_noise(rng, size), 0.4, 1.7)
    img = bg.astype(np.float32)
    for _ in range(int(rng.integers(1, 3))):  # apron / taxiway bands
        c = rng.uniform(0, size, 2)
        ang = rng.uniform(0, np.pi)
        d = np.array([math.cos(ang), math.sin(ang)]) * size * 1.5
        band = np.zeros_like(img)
        cv2.line(band, tuple(int(v) for v in c - d), tuple(int(v) for v in c + d), 1.0,
                 int(rng.integers(3, max(4, size // 12))), cv2.LINE_AA)
        img *= 1 + float(rng.uniform(-0.35, 0.35)) * band
    scat = np.zeros_like(img)
    for _ in range(int(rng.integers(3, 9))):  # clutter: bright point clusters
        c = rng.uniform(0, size, 2)
        for _ in range(int(rng.integers(1, 5))):
            p = c + rng.normal(0, 0.015 * size, 2)
            _splat(scat, p[0], p[1], float(rng.uniform(100, 230)), float(rng.uniform(0.6, 1.4)))
    sil = np.zeros((size, size), np.uint8)
    for obj in objects:
        level = rng.uniform(95, 130)
        for poly, tone in obj.shape.layers:
            fill_polygon(sil, obj.to_image(poly),
                         float(np.clip(level * (0.5 + 0.5 * tone), 0, 255)))
        sigma = max(0.7, 0.02 * obj.scale)
        for u, v, amp in obj.shape.points:
            x, y = obj.to_image(np.array([[u, v]]))[0]
            _splat(scat, x, y, float(min(255, rng.uniform(170, 230) * amp)), sigma)
        for _ in range(int(rng.integers(2, 6))):  # random returns along the structure
            poly, _ = obj.shape.layers[int(rng.integers(len(obj.shape.layers)))]
            x, y = obj.to_image(poly[int(rng.integers(len(poly)))][None])[0]
            _splat(scat, x, y, float(rng.uniform(120, 200)), sigma * 0.8)
    img = np.maximum(img, sil.astype(np.float32))
    img = np.maximum(img, scat)
    looks = rng.uniform(1.5, 4.0)
    img *= rng.gamma(looks, 1.0 / looks, img.shape).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 0.45)
    gray = np.clip(img, 0, 255).astype(np.uint8)
    return cv2.merge([gray, gray, gray])
