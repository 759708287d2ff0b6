"""Shared low-level helpers: per-image random streams, polygon primitives and geometry, smooth
noise and anti-aliased polygon filling."""
from __future__ import annotations

import zlib
from typing import Sequence

import cv2
import numpy as np

_SPLIT_CODE = {'train': 0, 'val': 1, 'test': 2, 'all': 3}


def image_rng(seed: int, dataset: str, split: str, index: int) -> np.random.Generator:
    """The independent random stream of one image."""
    if seed < 0:
        raise ValueError(f'seed must be >= 0, got {seed}')
    return np.random.default_rng([int(seed), zlib.crc32(dataset.encode()),
                                  _SPLIT_CODE.get(split, 9), int(index)])


def jitter(rng: np.random.Generator, value: float, rel: float = 0.06) -> float:
    """``value`` scaled by a uniform factor in ``[1 - rel, 1 + rel]``."""
    return float(value * (1 + rng.uniform(-rel, rel)))


def rect(u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    """Axis-aligned rectangle ``[u0, u1] x [v0, v1]`` as a (4, 2) polygon."""
    return np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]], dtype=np.float64)


def ellipse(uc: float, vc: float, ru: float, rv: float, n: int = 20) -> np.ndarray:
    """Ellipse centred on ``(uc, vc)`` with radii ``ru`` / ``rv``, as an (n, 2) polygon."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([uc + ru * np.cos(t), vc + rv * np.sin(t)], axis=1)


def mirror(poly: np.ndarray) -> np.ndarray:
    """``poly`` mirrored across the heading axis (v -> -v), in reverse point order."""
    out = np.asarray(poly, dtype=np.float64).copy()
    out[:, 1] *= -1
    return out[::-1]


def polygon_area(poly: np.ndarray) -> float:
    """Shoelace area of an (N, 2) polygon."""
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def lowfreq_noise(rng: np.random.Generator, size: int, grids: Sequence[int] = (3, 6, 12),
                  weights: Sequence[float] = (1.0, 0.6, 0.35)) -> np.ndarray:
    """Smooth noise (sum of upsampled random grids), zero mean, unit std, float32 (size, size)."""
    acc = np.zeros((size, size), np.float32)
    for g, wgt in zip(grids, weights):
        grid = rng.standard_normal((g + 1, g + 1)).astype(np.float32)
        acc += wgt * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    return (acc - acc.mean()) / (acc.std() + 1e-6)


def fixed_point(pts: np.ndarray) -> np.ndarray:
    """Points as OpenCV 4-bit fixed-point integers (use with ``shift=4``)."""
    return np.round(np.asarray(pts) * 16).astype(np.int32).reshape(-1, 1, 2)


def fill_polygon(img: np.ndarray, pts: np.ndarray, color) -> None:
    """Fill the polygon ``pts`` (N, 2) into ``img`` in place, anti-aliased, sub-pixel exact."""
    color = tuple(float(c) for c in np.atleast_1d(color))
    if img.ndim == 2:
        color = color[0]
    cv2.fillPoly(img, [fixed_point(pts)], color, lineType=cv2.LINE_AA, shift=4)
