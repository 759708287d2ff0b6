"""Object templates: a :class:`Shape` is a set of toned polygons (plus SAR scatter points) in
object units, ``u`` along the heading (bow / nose at +u) and ``v`` across it. Ships, vehicles,
a harbor pier and a storage tank; aircraft are in :mod:`.aircraft`."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, List, Tuple

import numpy as np

from .drawing import ellipse, jitter, rect


@dataclass
class Shape:
    """An object template: filled polygons with a relative tone, plus SAR scatter points."""

    layers: List[Tuple[np.ndarray, float]] = field(default_factory=list)
    points: List[Tuple[float, float, float]] = field(default_factory=list)  # (u, v, amplitude)
    fixed_angle: bool = False  # round objects (tanks): the box is kept axis-aligned

    def add(self, poly: np.ndarray, tone: float) -> None:
        """Append a polygon (N x 2, (u, v)) drawn with ``tone`` x the object's base colour."""
        self.layers.append((np.asarray(poly, dtype=np.float64), float(tone)))

    def extent(self) -> Tuple[float, float, float, float]:
        """``(umin, umax, vmin, vmax)`` over all polygons."""
        pts = np.concatenate([poly for poly, _ in self.layers])
        return (float(pts[:, 0].min()), float(pts[:, 0].max()), float(pts[:, 1].min()),
                float(pts[:, 1].max()))


#: A template draws one (slightly jittered) :class:`Shape` from a random stream.
Template = Callable[[np.random.Generator], Shape]


def _hull(beam: float, bow: str, bow_len: float, stern: str = 'flat', stern_len: float = 0.0,
          n: int = 10) -> np.ndarray:
    """Ship outline of length 1 (u in [-0.5, 0.5]) and width ``beam``.

    ``bow``: 'pointed' (parabolic taper to a sharp stem) or 'blunt' / 'round' (elliptic);
    ``stern``: 'flat' (transom) or 'round'.
    """
    half = beam / 2
    side = []  # starboard side (v > 0), stern to bow
    if stern == 'round':
        for t in np.linspace(0, 1, n):
            ang = t * np.pi / 2
            side.append((-0.5 + stern_len * (1 - np.cos(ang)), half * np.sin(ang) + 1e-9))
    else:
        side.append((-0.5, 0.0))
        side.append((-0.5, half * 0.86))
        side.append((-0.5 + 0.04, half))
    u_bow = 0.5 - bow_len
    side.append((u_bow, half))
    for t in np.linspace(0, 1, n)[1:]:
        u = u_bow + bow_len * t
        v = half * (1 - t ** 2) if bow == 'pointed' else half * math.sqrt(max(0.0, 1 - t ** 2))
        side.append((u, v))
    side = np.array(side, dtype=np.float64)
    port = side[::-1].copy()
    port[:, 1] *= -1
    pts = np.concatenate([side, port[1:-1]]) if stern == 'round' else np.concatenate(
        [side, port[1:]])
    return pts


def ship_destroyer(rng: np.random.Generator) -> Shape:
    """Destroyer / warcraft: pointed bow, gun dot, two blocks amidships, bright helideck aft."""
    beam = 1 / jitter(rng, 7.0, 0.12)
    s = Shape()
    s.add(_hull(beam, 'pointed', 0.32), 1.0)
    s.add(rect(-0.49, -0.37, -beam * 0.38, beam * 0.38), 1.22)  # helicopter deck
    s.add(rect(-0.45, -0.41, -beam * 0.06, beam * 0.06), 0.6)
    s.add(rect(-0.20, -0.06, -beam * 0.30, beam * 0.30), 0.55)  # aft superstructure
    s.add(rect(0.00, 0.15, -beam * 0.34, beam * 0.34), 0.55)  # forward superstructure
    s.add(ellipse(0.30, 0.0, beam * 0.2, beam * 0.2, 12), 0.45)  # gun
    s.points = [(0.5, 0, 1.0), (0.30, 0, 0.9), (0.08, 0, 1.0), (-0.13, 0, 0.9), (-0.45, 0, 0.7)]
    return s


def ship_container(rng: np.random.Generator) -> Shape:
    """Container ship: blunt bow, grid of container bays, white superstructure at the stern."""
    beam = 1 / jitter(rng, 6.6, 0.12)
    s = Shape()
    s.add(_hull(beam, 'blunt', 0.12), 0.9)
    bays = int(rng.integers(7, 10))
    u0, u1 = -0.31, 0.36
    step = (u1 - u0) / bays
    for i in range(bays):
        for j, (v0, v1) in enumerate(((-0.42, -0.02), (0.02, 0.42))):
            tone = float(rng.choice([0.55, 0.7, 0.8, 1.25])) + (i + j) % 2 * 0.05
            s.add(rect(u0 + i * step + 0.006, u0 + (i + 1) * step - 0.006, beam * v0,
                       beam * v1), tone)
    s.add(rect(-0.45, -0.34, -beam * 0.45, beam * 0.45), 1.35)  # superstructure at the stern
    s.add(rect(-0.43, -0.39, -beam * 0.1, beam * 0.1), 0.35)  # funnel
    s.points = [(0.5, 0, 0.8), (-0.40, 0, 1.0), (0.0, 0.3 * beam, 0.7), (0.2, -0.3 * beam, 0.7)]
    return s


def ship_tug(rng: np.random.Generator) -> Shape:
    """Tugboat: short and wide, round bow and stern, dark fender rim, house forward."""
    beam = 1 / jitter(rng, 3.6, 0.12)
    s = Shape()
    s.add(_hull(beam, 'round', 0.32, 'round', 0.2), 0.45)  # fender rim
    inner = _hull(beam * 0.8, 'round', 0.28, 'round', 0.17) * np.array([0.92, 1.0])
    s.add(inner, 1.05)
    s.add(rect(-0.06, 0.26, -beam * 0.28, beam * 0.28), 0.5)  # deckhouse
    s.add(rect(0.02, 0.18, -beam * 0.15, beam * 0.15), 1.3)  # wheelhouse roof
    s.add(ellipse(-0.26, 0.0, 0.035, 0.035, 10), 0.35)  # towing bitt
    s.points = [(0.45, 0, 0.9), (0.1, 0, 1.0), (-0.26, 0, 0.8)]
    return s


def ship_dock(rng: np.random.Generator) -> Shape:
    """Dock / pier: plain rectangle, bright kerb on one side, bollards on the other, slab joints."""
    beam = 1 / rng.uniform(5.6, 8.0)
    s = Shape()
    s.add(rect(-0.5, 0.5, -beam / 2, beam / 2), 0.85)
    s.add(rect(-0.5, 0.5, beam * 0.32, beam / 2), 1.25)  # kerb
    for x in np.linspace(-0.4, 0.4, 5):
        s.add(rect(x - 0.004, x + 0.004, -beam / 2, beam * 0.32), 0.65)  # slab joints
    for x in np.linspace(-0.45, 0.45, int(rng.integers(5, 8))):
        s.add(ellipse(x, -beam * 0.33, 0.018, 0.018, 8), 0.35)  # bollards
    s.points = [(x, 0, 0.7) for x in (-0.45, -0.15, 0.15, 0.45)]
    return s


def ship_carrier(rng: np.random.Generator) -> Shape:
    """Aircraft carrier: wide flat deck with an angled landing stripe and a side island."""
    beam = 1 / jitter(rng, 5.2, 0.12)
    s = Shape()
    deck = np.array([[-0.5, -0.30], [-0.5, 0.42], [0.05, 0.5], [0.30, 0.5], [0.5, 0.12],
                     [0.5, -0.12], [0.25, -0.5], [-0.05, -0.5], [-0.35, -0.36]]) * [1, beam]
    s.add(deck, 0.62)
    ang = math.radians(rng.uniform(8, 11))
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    stripe = rect(-0.30, 0.30, -0.012, 0.012) @ rot.T + [-0.12, 0.0]
    s.add(stripe, 1.5)  # angled landing-area stripe
    for x in (0.28, 0.40):  # bow catapult tracks
        s.add(rect(x - 0.09, x + 0.05, -0.008, 0.008) + [0, (0.35 - x) * 0.4 * beam], 1.5)
    s.add(rect(-0.12, 0.05, beam * 0.36, beam * 0.49), 1.3)  # island on the starboard edge
    s.points = [(0.45, 0, 0.8), (-0.03, 0.42 * beam, 1.0), (-0.45, 0, 0.8), (0.2, 0, 0.6)]
    return s


def ship_tanker(rng: np.random.Generator) -> Shape:
    """Merchant ship / tanker: blunt bow, centre pipeline with manifold, superstructure aft."""
    beam = 1 / jitter(rng, 6.4, 0.12)
    s = Shape()
    s.add(_hull(beam, 'blunt', 0.16), 0.95)
    s.add(rect(-0.30, 0.38, -beam * 0.035, beam * 0.035), 0.45)  # pipeline
    s.add(rect(0.0, 0.03, -beam * 0.40, beam * 0.40), 0.45)  # manifold
    for x in (-0.2, 0.2):
        s.add(ellipse(x, 0, beam * 0.16, beam * 0.16, 10), 0.6)  # hatches
    s.add(rect(-0.47, -0.33, -beam * 0.44, beam * 0.44), 1.35)  # superstructure aft
    s.add(rect(-0.45, -0.40, -beam * 0.1, beam * 0.1), 0.4)  # funnel
    s.points = [(0.5, 0, 0.8), (-0.40, 0, 1.0), (0.015, 0, 0.8)]
    return s


def ship_submarine(rng: np.random.Generator) -> Shape:
    """Submarine: very slender cigar hull, small sail forward, cross-shaped stern planes."""
    beam = 1 / jitter(rng, 8.5, 0.12)
    s = Shape()
    s.add(ellipse(0.0, 0.0, 0.5, beam * 0.36, 28) * [1, 1], 0.62)
    s.add(rect(-0.47, -0.41, -beam * 0.5, beam * 0.5), 0.55)  # stern planes
    s.add(rect(0.10, 0.22, -beam * 0.14, beam * 0.14), 0.3)  # sail
    s.add(rect(0.14, 0.17, -beam * 0.42, beam * 0.42), 0.35)  # sail planes
    s.points = [(0.46, 0, 0.8), (0.16, 0, 1.0), (-0.44, 0, 0.8)]
    return s


def vehicle_truck(rng: np.random.Generator) -> Shape:
    """Large vehicle (truck): long ribbed trailer, dark gap, cab with dark windscreen in front."""
    width = 1 / jitter(rng, 3.3)
    s = Shape()
    s.add(rect(-0.5, 0.25, -width / 2, width / 2), 1.0)  # trailer
    for x in np.linspace(-0.4, 0.15, 6):
        s.add(rect(x - 0.01, x + 0.01, -width / 2, width / 2), 0.75)
    s.add(rect(0.25, 0.31, -width * 0.3, width * 0.3), 0.3)  # coupling gap
    s.add(rect(0.31, 0.5, -width * 0.46, width * 0.46), 1.15)  # cab
    s.add(rect(0.42, 0.47, -width * 0.4, width * 0.4), 0.3)  # windscreen
    s.points = [(0.45, 0, 1.0), (-0.45, 0, 0.8)]
    return s


def vehicle_car(rng: np.random.Generator) -> Shape:
    """Vehicle (car): rounded body, dark windscreen and rear window, bright roof."""
    width = 1 / jitter(rng, 2.1)
    s = Shape()
    s.add(_hull(width, 'round', 0.12, 'round', 0.1), 1.0)
    s.add(rect(0.10, 0.22, -width * 0.4, width * 0.4), 0.3)  # windscreen
    s.add(rect(-0.30, -0.22, -width * 0.38, width * 0.38), 0.35)  # rear window
    s.add(rect(-0.22, 0.10, -width * 0.36, width * 0.36), 1.2)  # roof
    s.points = [(0.4, 0, 1.0), (-0.4, 0, 0.8)]
    return s


def harbor_pier(rng: np.random.Generator) -> Shape:
    """Harbor: T-shaped pier (narrow stem, wide head), bollards along the head."""
    stem = rng.uniform(0.16, 0.24)
    s = Shape()
    s.add(rect(-0.5, 0.32, -stem / 2, stem / 2), 0.85)
    s.add(rect(0.32, 0.5, -0.5 * 0.8, 0.5 * 0.8), 0.9)
    s.add(rect(0.46, 0.5, -0.4, 0.4), 1.3)
    for v in np.linspace(-0.33, 0.33, 5):
        s.add(ellipse(0.42, v, 0.015, 0.02, 8), 0.35)
    s.points = [(0.45, v, 0.8) for v in (-0.3, 0.0, 0.3)] + [(-0.2, 0, 0.6)]
    return s


def storage_tank(rng: np.random.Generator) -> Shape:
    """Storage tank: disc with a darker floating-roof ring and a centre vent; axis-aligned box."""
    s = Shape(fixed_angle=True)
    s.add(ellipse(0, 0, 0.5, 0.5, 32), 1.05)
    s.add(ellipse(0, 0, 0.40, 0.40, 32), 0.7)
    s.add(ellipse(0, 0, 0.33, 0.33, 32), 1.15)
    s.add(ellipse(0.12, 0.05, 0.05, 0.05, 10), 0.4)
    s.points = [(0.45, 0, 0.8), (-0.45, 0, 0.8), (0, 0.45, 0.8), (0, -0.45, 0.8)]
    return s
