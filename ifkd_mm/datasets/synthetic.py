"""Deterministic synthetic remote-sensing datasets, written in the datasets' official layouts.

Every maker draws small images (sea / ground texture for optical data, speckled dark clutter for
SAR) with 1-4 oriented objects whose classes differ in *shape details* (bow form, superstructure
layout, wing sweep, engine placement, tail form, ...), and writes them exactly as the real
dataset is laid out on disk, so that the real readers (mmdet / mmrotate / mmpretrain) load them.

Only numpy, opencv and the standard library are used (no torch, no mm* packages), so the module
can run before the training stack is installed. The same arguments give byte-identical files:
every image has its own ``numpy.random.default_rng([seed, dataset, split, index])`` stream.

Geometry conventions (pixel coordinates, x right, y down):

* ``polygon``: the 4 corners of the oriented box, clockwise on screen, starting at the corner
  that is "stern/tail, port/left" of the object: (-u,-v), (+u,-v), (+u,+v), (-u,+v) with ``u``
  along the object's heading (bow / nose at +u).
* ``w`` is the box side along the heading, ``h`` the side across it, ``angle`` (degrees, in
  [0, 180)) the heading modulo 180, measured from +x towards +y (clockwise on screen), i.e. the
  corners are ``c + R(angle) @ (+-w/2, +-h/2)``.
* ``hbox``: ``[xmin, ymin, xmax, ymax]`` = min / max of the polygon, clipped to the image.
* ``head``: the bow / nose point (used for HRSC2016's ``header_x`` / ``header_y``).
"""
from __future__ import annotations

import inspect
import json
import math
import os
import shutil
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

GENERATOR = 'ifkd_mm.datasets.synthetic'
GENERATOR_VERSION = 1
MARKER = '.complete'
IN_PROGRESS = '.incomplete'

# --------------------------------------------------------------------------------------------
# Class lists
# --------------------------------------------------------------------------------------------

#: Real ShipRSImageNet level lists (official order), for reference.
SHIPRS_REAL_LEVEL_CLASSES: Dict[int, Tuple[str, ...]] = {
    0: ('Ship', 'Dock'),
    1: ('Other Ship', 'Warship', 'Merchant', 'Dock'),
    2: ('Other Ship', 'Other Warship', 'Submarine', 'Aircraft Carrier', 'Cruiser', 'Destroyer',
        'Frigate', 'Patrol', 'Landing', 'Commander', 'Auxiliary Ships', 'Other Merchant',
        'Container Ship', 'RoRo', 'Cargo', 'Barge', 'Tugboat', 'Ferry', 'Yacht', 'Sailboat',
        'Fishing Vessel', 'Oil Tanker', 'Hovercraft', 'Motorboat', 'Dock'),
    3: ('Other Ship', 'Other Warship', 'Submarine', 'Other Aircraft Carrier', 'Enterprise',
        'Nimitz', 'Midway', 'Ticonderoga', 'Other Destroyer', 'Atago DD', 'Arleigh Burke DD',
        'Hatsuyuki DD', 'Hyuga DD', 'Asagiri DD', 'Other Frigate', 'Perry FF', 'Patrol',
        'Other Landing', 'YuTing LL', 'YuDeng LL', 'YuDao LL', 'YuZhao LL', 'Austin LL',
        'Osumi LL', 'Wasp LL', 'LSD 41 LL', 'LHA LL', 'Commander', 'Other Auxiliary Ship',
        'Medical Ship', 'Test Ship', 'Training Ship', 'AOE', 'Masyuu AS', 'Sanantonio AS', 'EPF',
        'Other Merchant', 'Container Ship', 'RoRo', 'Cargo', 'Barge', 'Tugboat', 'Ferry', 'Yacht',
        'Sailboat', 'Fishing Vessel', 'Oil Tanker', 'Hovercraft', 'Motorboat', 'Dock'),
}
#: level-3 class -> (level 0, level 1, level 2) names, as in the real hierarchy.
SHIPRS_HIERARCHY: Dict[str, Tuple[str, str, str]] = {
    'Arleigh Burke DD': ('Ship', 'Warship', 'Destroyer'),
    'Container Ship': ('Ship', 'Merchant', 'Container Ship'),
    'Tugboat': ('Ship', 'Merchant', 'Tugboat'),
    'Dock': ('Dock', 'Dock', 'Dock'),
}
#: The synthetic class list of every level (used classes only, in the real lists' order);
#: category id = 1 + index.
SHIPRS_LEVEL_CLASSES: Dict[int, Tuple[str, ...]] = {
    level: tuple(name for name in SHIPRS_REAL_LEVEL_CLASSES[level]
                 if any((*chain, leaf)[level] == name
                        for leaf, chain in SHIPRS_HIERARCHY.items()))
    for level in range(4)
}
SHIPRS_CLASSES = SHIPRS_LEVEL_CLASSES[3]

SAR_AIRCRAFT_CLASSES = ('A220', 'A320/321', 'A330', 'ARJ21', 'Boeing737', 'Boeing787', 'other')
SAR_AIRCRAFT_USED_CLASSES = ('A220', 'A330', 'ARJ21', 'Boeing787')

DOTA_CLASSES = ('plane', 'baseball-diamond', 'bridge', 'ground-track-field', 'small-vehicle',
                'large-vehicle', 'ship', 'tennis-court', 'basketball-court', 'storage-tank',
                'soccer-ball-field', 'roundabout', 'harbor', 'swimming-pool', 'helicopter')
DOTA_USED_CLASSES = ('plane', 'large-vehicle', 'ship', 'harbor')

DIOR_CLASSES = ('airplane', 'airport', 'baseballfield', 'basketballcourt', 'bridge', 'chimney',
                'expressway-service-area', 'expressway-toll-station', 'dam', 'golffield',
                'groundtrackfield', 'harbor', 'overpass', 'ship', 'stadium', 'storagetank',
                'tenniscourt', 'trainstation', 'vehicle', 'windmill')
DIOR_USED_CLASSES = ('airplane', 'ship', 'storagetank', 'vehicle')

#: HRSC2016 classes written (name as in mmrotate's HRSCDataset -> HRSC Class_ID). All of them are
#: in mmrotate's classwise list; with ``classwise=False`` every object is 'ship'.
HRSC_USED_CLASSES: Dict[str, str] = {
    'aircraft carrier': '100000002',
    'warcraft': '100000003',
    'merchant ship': '100000004',
    'submarine': '100000027',
}

NWPU45_CLASSES = ('airplane', 'airport', 'baseball_diamond', 'beach', 'bridge')
AID_CLASSES = ('Airport', 'BareLand', 'BaseballField', 'Beach', 'Bridge')
AFGR50_CLASSES = ('A220', 'A330', 'B737', 'B747', 'C130')

# --------------------------------------------------------------------------------------------
# Shapes (templates in object units: u along the heading, bow / nose at +u; v across)
# --------------------------------------------------------------------------------------------


@dataclass
class Shape:
    """An object template: filled polygons with a relative tone, plus SAR scatter points."""

    layers: List[Tuple[np.ndarray, float]] = field(default_factory=list)
    points: List[Tuple[float, float, float]] = field(default_factory=list)  # (u, v, amplitude)
    fixed_angle: bool = False  # round objects (tanks): the box is kept axis-aligned

    def add(self, poly, tone: float) -> None:
        """Append a polygon (N x 2, (u, v)) drawn with ``tone`` x the object's base colour."""
        self.layers.append((np.asarray(poly, dtype=np.float64), float(tone)))

    def extent(self) -> Tuple[float, float, float, float]:
        """``(umin, umax, vmin, vmax)`` over all polygons."""
        pts = np.concatenate([poly for poly, _ in self.layers])
        return (float(pts[:, 0].min()), float(pts[:, 0].max()), float(pts[:, 1].min()),
                float(pts[:, 1].max()))


def _rect(u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    return np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]], dtype=np.float64)


def _ellipse(uc: float, vc: float, ru: float, rv: float, n: int = 20) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([uc + ru * np.cos(t), vc + rv * np.sin(t)], axis=1)


def _mirror(poly: np.ndarray) -> np.ndarray:
    out = np.asarray(poly, dtype=np.float64).copy()
    out[:, 1] *= -1
    return out[::-1]


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


def _jit(rng: np.random.Generator, value: float, rel: float = 0.06) -> float:
    return float(value * (1 + rng.uniform(-rel, rel)))


def ship_destroyer(rng: np.random.Generator) -> Shape:
    """Destroyer / warcraft: pointed bow, gun dot, two blocks amidships, bright helideck aft."""
    beam = 1 / _jit(rng, 7.0, 0.12)
    s = Shape()
    s.add(_hull(beam, 'pointed', 0.32), 1.0)
    s.add(_rect(-0.49, -0.37, -beam * 0.38, beam * 0.38), 1.22)  # helicopter deck
    s.add(_rect(-0.45, -0.41, -beam * 0.06, beam * 0.06), 0.6)
    s.add(_rect(-0.20, -0.06, -beam * 0.30, beam * 0.30), 0.55)  # aft superstructure
    s.add(_rect(0.00, 0.15, -beam * 0.34, beam * 0.34), 0.55)  # forward superstructure
    s.add(_ellipse(0.30, 0.0, beam * 0.2, beam * 0.2, 12), 0.45)  # gun
    s.points = [(0.5, 0, 1.0), (0.30, 0, 0.9), (0.08, 0, 1.0), (-0.13, 0, 0.9), (-0.45, 0, 0.7)]
    return s


def ship_container(rng: np.random.Generator) -> Shape:
    """Container ship: blunt bow, grid of container bays, white superstructure at the stern."""
    beam = 1 / _jit(rng, 6.6, 0.12)
    s = Shape()
    s.add(_hull(beam, 'blunt', 0.12), 0.9)
    bays = int(rng.integers(7, 10))
    u0, u1 = -0.31, 0.36
    step = (u1 - u0) / bays
    for i in range(bays):
        for j, (v0, v1) in enumerate(((-0.42, -0.02), (0.02, 0.42))):
            tone = float(rng.choice([0.55, 0.7, 0.8, 1.25])) + (i + j) % 2 * 0.05
            s.add(_rect(u0 + i * step + 0.006, u0 + (i + 1) * step - 0.006, beam * v0,
                        beam * v1), tone)
    s.add(_rect(-0.45, -0.34, -beam * 0.45, beam * 0.45), 1.35)  # superstructure at the stern
    s.add(_rect(-0.43, -0.39, -beam * 0.1, beam * 0.1), 0.35)  # funnel
    s.points = [(0.5, 0, 0.8), (-0.40, 0, 1.0), (0.0, 0.3 * beam, 0.7), (0.2, -0.3 * beam, 0.7)]
    return s


def ship_tug(rng: np.random.Generator) -> Shape:
    """Tugboat: short and wide, round bow and stern, dark fender rim, house forward."""
    beam = 1 / _jit(rng, 3.6, 0.12)
    s = Shape()
    s.add(_hull(beam, 'round', 0.32, 'round', 0.2), 0.45)  # fender rim
    inner = _hull(beam * 0.8, 'round', 0.28, 'round', 0.17) * np.array([0.92, 1.0])
    s.add(inner, 1.05)
    s.add(_rect(-0.06, 0.26, -beam * 0.28, beam * 0.28), 0.5)  # deckhouse
    s.add(_rect(0.02, 0.18, -beam * 0.15, beam * 0.15), 1.3)  # wheelhouse roof
    s.add(_ellipse(-0.26, 0.0, 0.035, 0.035, 10), 0.35)  # towing bitt
    s.points = [(0.45, 0, 0.9), (0.1, 0, 1.0), (-0.26, 0, 0.8)]
    return s


def ship_dock(rng: np.random.Generator) -> Shape:
    """Dock / pier: plain rectangle, bright kerb on one side, bollards on the other, slab joints."""
    beam = 1 / rng.uniform(5.6, 8.0)
    s = Shape()
    s.add(_rect(-0.5, 0.5, -beam / 2, beam / 2), 0.85)
    s.add(_rect(-0.5, 0.5, beam * 0.32, beam / 2), 1.25)  # kerb
    for x in np.linspace(-0.4, 0.4, 5):
        s.add(_rect(x - 0.004, x + 0.004, -beam / 2, beam * 0.32), 0.65)  # slab joints
    for x in np.linspace(-0.45, 0.45, int(rng.integers(5, 8))):
        s.add(_ellipse(x, -beam * 0.33, 0.018, 0.018, 8), 0.35)  # bollards
    s.points = [(x, 0, 0.7) for x in (-0.45, -0.15, 0.15, 0.45)]
    return s


def ship_carrier(rng: np.random.Generator) -> Shape:
    """Aircraft carrier: wide flat deck with an angled landing stripe and a side island."""
    beam = 1 / _jit(rng, 5.2, 0.12)
    s = Shape()
    deck = np.array([[-0.5, -0.30], [-0.5, 0.42], [0.05, 0.5], [0.30, 0.5], [0.5, 0.12],
                     [0.5, -0.12], [0.25, -0.5], [-0.05, -0.5], [-0.35, -0.36]]) * [1, beam]
    s.add(deck, 0.62)
    ang = math.radians(rng.uniform(8, 11))
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    stripe = _rect(-0.30, 0.30, -0.012, 0.012) @ rot.T + [-0.12, 0.0]
    s.add(stripe, 1.5)  # angled landing-area stripe
    for x in (0.28, 0.40):  # bow catapult tracks
        s.add(_rect(x - 0.09, x + 0.05, -0.008, 0.008) + [0, (0.35 - x) * 0.4 * beam], 1.5)
    s.add(_rect(-0.12, 0.05, beam * 0.36, beam * 0.49), 1.3)  # island on the starboard edge
    s.points = [(0.45, 0, 0.8), (-0.03, 0.42 * beam, 1.0), (-0.45, 0, 0.8), (0.2, 0, 0.6)]
    return s


def ship_tanker(rng: np.random.Generator) -> Shape:
    """Merchant ship / tanker: blunt bow, centre pipeline with manifold, superstructure aft."""
    beam = 1 / _jit(rng, 6.4, 0.12)
    s = Shape()
    s.add(_hull(beam, 'blunt', 0.16), 0.95)
    s.add(_rect(-0.30, 0.38, -beam * 0.035, beam * 0.035), 0.45)  # pipeline
    s.add(_rect(0.0, 0.03, -beam * 0.40, beam * 0.40), 0.45)  # manifold
    for x in (-0.2, 0.2):
        s.add(_ellipse(x, 0, beam * 0.16, beam * 0.16, 10), 0.6)  # hatches
    s.add(_rect(-0.47, -0.33, -beam * 0.44, beam * 0.44), 1.35)  # superstructure aft
    s.add(_rect(-0.45, -0.40, -beam * 0.1, beam * 0.1), 0.4)  # funnel
    s.points = [(0.5, 0, 0.8), (-0.40, 0, 1.0), (0.015, 0, 0.8)]
    return s


def ship_submarine(rng: np.random.Generator) -> Shape:
    """Submarine: very slender cigar hull, small sail forward, cross-shaped stern planes."""
    beam = 1 / _jit(rng, 8.5, 0.12)
    s = Shape()
    s.add(_ellipse(0.0, 0.0, 0.5, beam * 0.36, 28) * [1, 1], 0.62)
    s.add(_rect(-0.47, -0.41, -beam * 0.5, beam * 0.5), 0.55)  # stern planes
    s.add(_rect(0.10, 0.22, -beam * 0.14, beam * 0.14), 0.3)  # sail
    s.add(_rect(0.14, 0.17, -beam * 0.42, beam * 0.42), 0.35)  # sail planes
    s.points = [(0.46, 0, 0.8), (0.16, 0, 1.0), (-0.44, 0, 0.8)]
    return s


def vehicle_truck(rng: np.random.Generator) -> Shape:
    """Large vehicle (truck): long ribbed trailer, dark gap, cab with dark windscreen in front."""
    width = 1 / _jit(rng, 3.3)
    s = Shape()
    s.add(_rect(-0.5, 0.25, -width / 2, width / 2), 1.0)  # trailer
    for x in np.linspace(-0.4, 0.15, 6):
        s.add(_rect(x - 0.01, x + 0.01, -width / 2, width / 2), 0.75)
    s.add(_rect(0.25, 0.31, -width * 0.3, width * 0.3), 0.3)  # coupling gap
    s.add(_rect(0.31, 0.5, -width * 0.46, width * 0.46), 1.15)  # cab
    s.add(_rect(0.42, 0.47, -width * 0.4, width * 0.4), 0.3)  # windscreen
    s.points = [(0.45, 0, 1.0), (-0.45, 0, 0.8)]
    return s


def vehicle_car(rng: np.random.Generator) -> Shape:
    """Vehicle (car): rounded body, dark windscreen and rear window, bright roof."""
    width = 1 / _jit(rng, 2.1)
    s = Shape()
    s.add(_hull(width, 'round', 0.12, 'round', 0.1), 1.0)
    s.add(_rect(0.10, 0.22, -width * 0.4, width * 0.4), 0.3)  # windscreen
    s.add(_rect(-0.30, -0.22, -width * 0.38, width * 0.38), 0.35)  # rear window
    s.add(_rect(-0.22, 0.10, -width * 0.36, width * 0.36), 1.2)  # roof
    s.points = [(0.4, 0, 1.0), (-0.4, 0, 0.8)]
    return s


def harbor_pier(rng: np.random.Generator) -> Shape:
    """Harbor: T-shaped pier (narrow stem, wide head), bollards along the head."""
    stem = rng.uniform(0.16, 0.24)
    s = Shape()
    s.add(_rect(-0.5, 0.32, -stem / 2, stem / 2), 0.85)
    s.add(_rect(0.32, 0.5, -0.5 * 0.8, 0.5 * 0.8), 0.9)
    s.add(_rect(0.46, 0.5, -0.4, 0.4), 1.3)
    for v in np.linspace(-0.33, 0.33, 5):
        s.add(_ellipse(0.42, v, 0.015, 0.02, 8), 0.35)
    s.points = [(0.45, v, 0.8) for v in (-0.3, 0.0, 0.3)] + [(-0.2, 0, 0.6)]
    return s


def storage_tank(rng: np.random.Generator) -> Shape:
    """Storage tank: disc with a darker floating-roof ring and a centre vent; axis-aligned box."""
    s = Shape(fixed_angle=True)
    s.add(_ellipse(0, 0, 0.5, 0.5, 32), 1.05)
    s.add(_ellipse(0, 0, 0.40, 0.40, 32), 0.7)
    s.add(_ellipse(0, 0, 0.33, 0.33, 32), 1.15)
    s.add(_ellipse(0.12, 0.05, 0.05, 0.05, 10), 0.4)
    s.points = [(0.45, 0, 0.8), (-0.45, 0, 0.8), (0, 0.45, 0.8), (0, -0.45, 0.8)]
    return s


# Aircraft: parameters in fuselage-length units. engines: (u, v, length, width) right side.
AIRCRAFT_PARAMS: Dict[str, dict] = {
    'A220': dict(fus_w=0.105, span=0.92, sweep=0.13, root=0.20, tip=0.07, wing_u=0.02,
                 engines=[(0.10, 0.165, 0.12, 0.055)], tail_span=0.36, tail_sweep=0.08),
    'A320/321': dict(fus_w=0.095, span=0.86, sweep=0.17, root=0.20, tip=0.06, wing_u=0.04,
                     engines=[(0.13, 0.18, 0.11, 0.055)], tail_span=0.33, tail_sweep=0.10),
    'A330': dict(fus_w=0.085, span=1.02, sweep=0.24, root=0.20, tip=0.05, wing_u=0.06,
                 engines=[(0.17, 0.21, 0.12, 0.06)], tail_span=0.30, tail_sweep=0.10),
    'ARJ21': dict(fus_w=0.10, span=0.84, sweep=0.13, root=0.19, tip=0.07, wing_u=0.06,
                  engines=[], rear_engines=(-0.27, 0.10, 0.13, 0.055), tail_span=0.32,
                  tail_sweep=0.02, t_tail=True),
    'Boeing737': dict(fus_w=0.11, span=0.93, sweep=0.18, root=0.22, tip=0.06, wing_u=0.03,
                      engines=[(0.12, 0.13, 0.10, 0.065)], tail_span=0.38, tail_sweep=0.10),
    'Boeing787': dict(fus_w=0.09, span=1.05, sweep=0.30, root=0.20, tip=0.045, wing_u=0.06,
                      engines=[(0.17, 0.19, 0.14, 0.07)], tail_span=0.30, tail_sweep=0.12,
                      raked=True),
    'other': dict(fus_w=0.10, span=1.10, sweep=0.0, root=0.14, tip=0.09, wing_u=0.10,
                  engines=[(0.16, 0.20, 0.08, 0.04)], tail_span=0.36, tail_sweep=0.0),
    'B747': dict(fus_w=0.10, span=1.0, sweep=0.27, root=0.21, tip=0.05, wing_u=0.05,
                 engines=[(0.14, 0.17, 0.11, 0.055), (0.05, 0.31, 0.10, 0.05)],
                 tail_span=0.34, tail_sweep=0.11, hump=True),
    'C130': dict(fus_w=0.14, span=1.30, sweep=0.0, root=0.16, tip=0.09, wing_u=0.08,
                 engines=[(0.17, 0.19, 0.10, 0.045), (0.17, 0.38, 0.10, 0.045)],
                 tail_span=0.48, tail_sweep=0.03),
}
AIRCRAFT_PARAMS['B737'] = AIRCRAFT_PARAMS['Boeing737']
AIRCRAFT_PARAMS['airliner'] = AIRCRAFT_PARAMS['A330']


def _aircraft_params(name: str) -> dict:
    if name in AIRCRAFT_PARAMS:
        return AIRCRAFT_PARAMS[name]
    r = np.random.default_rng(zlib.crc32(name.encode()))  # fixed per unknown class name
    n_eng = int(r.integers(0, 3))
    return dict(fus_w=r.uniform(0.08, 0.13), span=r.uniform(0.8, 1.2), sweep=r.uniform(0, 0.3),
                root=r.uniform(0.15, 0.22), tip=r.uniform(0.04, 0.09), wing_u=r.uniform(0, 0.1),
                engines=[(0.14 - 0.08 * i, 0.15 + 0.14 * i, 0.1, 0.05) for i in range(n_eng)],
                tail_span=r.uniform(0.28, 0.45), tail_sweep=r.uniform(0, 0.12))


def aircraft(name: str, rng: np.random.Generator) -> Shape:
    """Top-down aircraft silhouette of type ``name`` (see ``AIRCRAFT_PARAMS``), small jitter."""
    p = dict(_aircraft_params(name))
    for key in ('fus_w', 'span', 'sweep', 'root', 'tail_span'):
        p[key] = _jit(rng, p[key], 0.04)
    s = Shape()
    fw = p['fus_w'] / 2
    half, sweep, root, tip, wu = p['span'] / 2, p['sweep'], p['root'], p['tip'], p['wing_u']
    # wings (right side, then mirrored)
    le_root = wu + root / 2
    wing = [(le_root, fw * 0.9), (le_root - sweep, half), (le_root - sweep - tip, half),
            (wu - root / 2, fw * 0.9)]
    if p.get('raked'):
        wing = [(le_root, fw * 0.9), (le_root - sweep * 0.85, half * 0.9),
                (le_root - sweep - tip * 1.6, half), (le_root - sweep - tip * 0.9, half * 0.9),
                (wu - root / 2, fw * 0.9)]
    wing = np.array(wing)
    s.add(wing, 0.88)
    s.add(_mirror(wing), 0.88)
    # horizontal stabilisers
    ts, tsw = p['tail_span'] / 2, p['tail_sweep']
    tu = -0.47 if p.get('t_tail') else -0.38
    tail = np.array([(tu + 0.06, fw * 0.5), (tu + 0.06 - tsw, ts), (tu - 0.02 - tsw, ts),
                     (tu - 0.04, fw * 0.5)])
    if p.get('t_tail'):
        tail = np.array([(tu + 0.05, 0.0), (tu + 0.05 - tsw, ts), (tu - 0.02 - tsw, ts),
                         (tu - 0.03, 0.0)])
    s.add(tail, 0.88)
    s.add(_mirror(tail), 0.88)
    # fuselage: round nose, cylinder, tapered tail cone
    nose = [(0.5 - 0.08 * (1 - math.cos(a)), fw * math.sin(a))
            for a in np.linspace(0, np.pi / 2, 7)]
    body = np.array([(-0.5, fw * 0.3), (-0.28, fw)] + nose[::-1])  # tail -> nose, right side
    fus = np.concatenate([body, _mirror(body)])
    s.add(fus, 1.05)
    if p.get('hump'):
        s.add(_ellipse(0.30, 0.0, 0.16, fw * 1.25, 18), 1.1)
    if p.get('t_tail'):
        s.add(_rect(-0.5, -0.40, -fw * 0.25, fw * 0.25), 0.8)  # fin seen from above
    s.add(_rect(0.40, 0.44, -fw * 0.7, fw * 0.7), 0.45)  # cockpit windows
    pts = [(0.5, 0, 1.0), (-0.5, 0, 0.8), (wu, fw, 0.8), (wu, -fw, 0.8),
           (le_root - sweep - tip / 2, half, 0.9), (le_root - sweep - tip / 2, -half, 0.9),
           (tu - tsw, ts, 0.7), (tu - tsw, -ts, 0.7)]
    for (eu, ev, el, ew) in p['engines']:
        for sign in (1, -1):
            s.add(_rect(eu - el / 2, eu + el / 2, sign * ev - ew / 2, sign * ev + ew / 2), 0.55)
            pts.append((eu, sign * ev, 1.3))
    if p.get('rear_engines'):
        eu, ev, el, ew = p['rear_engines']
        for sign in (1, -1):
            s.add(_rect(eu - el / 2, eu + el / 2, sign * ev - ew / 2, sign * ev + ew / 2), 0.55)
            pts.append((eu, sign * ev, 1.3))
    s.points = pts
    return s


Template = Callable[[np.random.Generator], Shape]


def _plane(name: str) -> Template:
    return lambda rng: aircraft(name, rng)


SHIP_TEMPLATES: Dict[str, Template] = {
    'destroyer': ship_destroyer, 'container': ship_container, 'tugboat': ship_tug,
    'dock': ship_dock, 'carrier': ship_carrier, 'tanker': ship_tanker,
    'submarine': ship_submarine,
}
SHIPRS_TEMPLATES: Dict[str, Template] = {
    'Arleigh Burke DD': ship_destroyer, 'Container Ship': ship_container, 'Tugboat': ship_tug,
    'Dock': ship_dock}
HRSC_TEMPLATES: Dict[str, Template] = {
    'aircraft carrier': ship_carrier, 'warcraft': ship_destroyer, 'merchant ship': ship_tanker,
    'submarine': ship_submarine}
DOTA_TEMPLATES: Dict[str, Template] = {
    'plane': _plane('A330'), 'large-vehicle': vehicle_truck, 'ship': ship_tanker,
    'harbor': harbor_pier}
DIOR_TEMPLATES: Dict[str, Template] = {
    'airplane': _plane('Boeing737'), 'ship': ship_destroyer, 'storagetank': storage_tank,
    'vehicle': vehicle_car}

# --------------------------------------------------------------------------------------------
# Objects, placement and rendering
# --------------------------------------------------------------------------------------------


@dataclass
class SynthObject:
    """One generated object, in pixel coordinates (see the module docstring)."""

    name: str
    polygon: np.ndarray  # (4, 2), clockwise
    hbox: Tuple[float, float, float, float]
    cx: float
    cy: float
    w: float
    h: float
    angle: float  # degrees in [0, 180)
    heading: float  # degrees in [0, 360), bow / nose direction
    head: Tuple[float, float]
    shape: Shape = field(repr=False, default_factory=Shape)
    scale: float = 1.0  # pixels per template unit
    center_uv: Tuple[float, float] = (0.0, 0.0)

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        """Template points (N, 2) -> pixel points (N, 2)."""
        th = math.radians(self.heading)
        c, s = math.cos(th), math.sin(th)
        d = (np.asarray(uv, dtype=np.float64) - self.center_uv) * self.scale
        return np.stack([self.cx + d[:, 0] * c - d[:, 1] * s,
                         self.cy + d[:, 0] * s + d[:, 1] * c], axis=1)

    def silhouette_box(self, size: int) -> Tuple[float, float, float, float]:
        """Tight horizontal box of the drawn shape (not of its oriented box), in the image."""
        pts = np.concatenate([self.to_image(poly) for poly, _ in self.shape.layers])
        return (max(0.0, float(pts[:, 0].min())), max(0.0, float(pts[:, 1].min())),
                min(float(size), float(pts[:, 0].max())), min(float(size), float(pts[:, 1].max())))

    @property
    def area(self) -> float:
        """Area of the oriented box polygon (shoelace)."""
        return polygon_area(self.polygon)


def polygon_area(poly: np.ndarray) -> float:
    """Shoelace area of an (N, 2) polygon."""
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _obb_overlap(a: np.ndarray, b: np.ndarray, frac: float = 0.05) -> bool:
    """Whether two oriented boxes overlap by more than ``frac`` of the smaller one."""
    inter, _ = cv2.intersectConvexConvex(a.astype(np.float32), b.astype(np.float32))
    return inter > frac * min(polygon_area(a), polygon_area(b))


def place_objects(rng: np.random.Generator, img_size: int, classes: Sequence[str],
                  templates: Dict[str, Template], num_range: Tuple[int, int] = (1, 4),
                  size_range: Tuple[float, float] = (0.12, 0.30), max_iou: float = 0.1,
                  margin: float = 3.0, tries: int = 60) -> List[SynthObject]:
    """Sample 1-4 oriented objects fully inside the image, axis-aligned-box IoU <= ``max_iou``
    and oriented boxes overlapping by at most 5% of the smaller one.

    The long side of every object is ``size_range`` x ``img_size``; its class is uniform over
    ``classes``; its heading uniform in [0, 360) (0 for ``fixed_angle`` shapes).
    """
    n = int(rng.integers(num_range[0], num_range[1] + 1))
    objects: List[SynthObject] = []
    for _ in range(n):
        for _attempt in range(tries):
            name = classes[int(rng.integers(len(classes)))]
            shape = templates[name](rng)
            umin, umax, vmin, vmax = shape.extent()
            eu, ev = umax - umin, vmax - vmin
            long_side = rng.uniform(*size_range) * img_size
            k = long_side / max(eu, ev)
            w, h = eu * k, ev * k
            heading = 0.0 if shape.fixed_angle else float(rng.uniform(0, 360))
            th = math.radians(heading)
            hx = (abs(w * math.cos(th)) + abs(h * math.sin(th))) / 2
            hy = (abs(w * math.sin(th)) + abs(h * math.cos(th))) / 2
            lo_x, hi_x = margin + hx, img_size - 1 - margin - hx
            lo_y, hi_y = margin + hy, img_size - 1 - margin - hy
            if lo_x >= hi_x or lo_y >= hi_y:
                continue
            cx, cy = float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y))
            hbox = (cx - hx, cy - hy, cx + hx, cy + hy)
            if any(_iou(hbox, o.hbox) > max_iou for o in objects):
                continue
            obj = SynthObject(name=name, polygon=np.zeros((4, 2)), hbox=hbox, cx=cx, cy=cy,
                              w=w, h=h, angle=heading % 180.0, heading=heading, head=(0, 0),
                              shape=shape, scale=k,
                              center_uv=((umin + umax) / 2, (vmin + vmax) / 2))
            corners = np.array([[umin, vmin], [umax, vmin], [umax, vmax], [umin, vmax]])
            obj.polygon = obj.to_image(corners)
            xs, ys = obj.polygon[:, 0], obj.polygon[:, 1]
            obj.hbox = (max(0.0, float(xs.min())), max(0.0, float(ys.min())),
                        min(float(img_size), float(xs.max())),
                        min(float(img_size), float(ys.max())))
            if any(_obb_overlap(obj.polygon, o.polygon) for o in objects):
                continue
            head = obj.to_image(np.array([[umax, 0.0]]))[0]
            obj.head = (float(head[0]), float(head[1]))
            objects.append(obj)
            break
    return objects


def _lowfreq(rng: np.random.Generator, size: int, grids: Sequence[int] = (3, 6, 12),
             weights: Sequence[float] = (1.0, 0.6, 0.35)) -> np.ndarray:
    """Smooth noise (sum of upsampled random grids), zero mean, unit std, float32 (size, size)."""
    acc = np.zeros((size, size), np.float32)
    for g, wgt in zip(grids, weights):
        grid = rng.standard_normal((g + 1, g + 1)).astype(np.float32)
        acc += wgt * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    return (acc - acc.mean()) / (acc.std() + 1e-6)


def _fixed(pts: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts) * 16).astype(np.int32).reshape(-1, 1, 2)


def _fill(img: np.ndarray, pts: np.ndarray, color) -> None:
    color = tuple(float(c) for c in np.atleast_1d(color))
    if img.ndim == 2:
        color = color[0]
    cv2.fillPoly(img, [_fixed(pts)], color, lineType=cv2.LINE_AA, shift=4)


PALETTES = {
    'sea': ((95, 135), (65, 100), (25, 60)),  # BGR ranges
    'ground': ((70, 105), (95, 130), (105, 145)),
    'concrete': ((105, 135), (110, 140), (110, 140)),
}


def optical_background(rng: np.random.Generator, size: int, kind: str = 'sea') -> np.ndarray:
    """Sea / ground texture: smooth noise, wave streaks, optional land patch; float32 BGR."""
    base = np.array([rng.uniform(*r) for r in PALETTES[kind]], np.float32)
    low = _lowfreq(rng, size)
    img = base[None, None, :] * (1 + 0.12 * low[..., None])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == 'sea':
        phi = rng.uniform(0, np.pi)
        lam = rng.uniform(5, 12)
        warp = _lowfreq(rng, size, (4,), (1.0,))
        waves = np.sin(2 * np.pi * (xx * math.cos(phi) + yy * math.sin(phi)) / lam + 1.5 * warp)
        amp = rng.uniform(3, 7) * np.clip(1 + 0.6 * _lowfreq(rng, size, (3,), (1.0,)), 0, 2)
        img += (amp * waves)[..., None]
        if rng.random() < 0.35:  # a strip of land along one edge
            land = np.array([rng.uniform(*r) for r in PALETTES['ground']], np.float32)
            depth = rng.uniform(0.08, 0.18) * size
            edge = int(rng.integers(4))
            coord = (xx, yy, size - 1 - xx, size - 1 - yy)[edge]
            mask = (coord < depth + 4 * _lowfreq(rng, size, (5,), (1.0,))).astype(np.float32)
            mask = cv2.GaussianBlur(mask, (0, 0), 1.0)[..., None]
            tex = land * (1 + 0.15 * _lowfreq(rng, size, (8, 24), (1.0, 0.5))[..., None])
            img = img * (1 - mask) + tex * mask
    else:
        img *= 1 + 0.06 * _lowfreq(rng, size, (24, 48), (1.0, 0.6))[..., None]
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
            poly = _ellipse(c[0], c[1], axes[0], axes[1], 16)
            _fill(img, poly, color)
        elif kind == 'speck':
            r = rng.uniform(0.01, 0.035) * size
            ang = rng.uniform(0, np.pi)
            pts = np.array([[-r, -r * 0.6], [r, -r * 0.6], [r, r * 0.6], [-r, r * 0.6]])
            rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
            _fill(img, pts @ rot.T + c, color)
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
            _fill(shadow, obj.to_image(poly) + off, 255)
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
            _fill(out, obj.to_image(poly), color)
    out = out.astype(np.float32)
    out = cv2.GaussianBlur(out, (0, 0), 0.5)
    out += rng.normal(0, rng.uniform(2.5, 5.0), out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def _splat(canvas: np.ndarray, x: float, y: float, amp: float, sigma: float) -> None:
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
    bg = rng.uniform(22, 40) * np.clip(1 + 0.25 * _lowfreq(rng, size), 0.4, 1.7)
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
            _fill(sil, obj.to_image(poly), float(np.clip(level * (0.5 + 0.5 * tone), 0, 255)))
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


# --------------------------------------------------------------------------------------------
# Writing helpers
# --------------------------------------------------------------------------------------------

DATASET_FOLDERS: Dict[str, str] = {
    'shiprs': 'ShipRSImageNet', 'sar_aircraft': 'SAR-AIRcraft-1.0', 'dota': 'DOTA',
    'dior_r': 'DIOR-R', 'hrsc2016': 'HRSC2016', 'nwpu45': 'NWPU-RESISC45', 'aid': 'AID',
    'afgr50': 'AFGR50'}
_SPLIT_CODE = {'train': 0, 'val': 1, 'test': 2, 'all': 3}


def image_rng(seed: int, dataset: str, split: str, index: int) -> np.random.Generator:
    """The independent random stream of one image."""
    if seed < 0:
        raise ValueError(f'seed must be >= 0, got {seed}')
    return np.random.default_rng([int(seed), zlib.crc32(dataset.encode()),
                                  _SPLIT_CODE.get(split, 9), int(index)])


def _prepare(path: str) -> None:
    """Empty ``path`` if it holds an earlier synthetic dataset; refuse to touch anything else."""
    if os.path.isdir(path) and os.listdir(path):
        if not (os.path.exists(os.path.join(path, MARKER)) or
                os.path.exists(os.path.join(path, IN_PROGRESS))):
            raise FileExistsError(f'{path} exists and is not a synthetic dataset written by '
                                  f'{GENERATOR}; refusing to overwrite it')
        shutil.rmtree(path)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, IN_PROGRESS), 'w') as f:
        f.write('generation in progress\n')


def _finish(path: str, dataset: str, params: dict, counts: dict) -> str:
    marker = dict(generator=GENERATOR, version=GENERATOR_VERSION, dataset=dataset,
                  params=params, counts=counts)
    with open(os.path.join(path, MARKER), 'w') as f:
        json.dump(marker, f, indent=1)
        f.write('\n')
    os.remove(os.path.join(path, IN_PROGRESS))
    return path


def read_marker(path: str) -> Optional[dict]:
    """The ``.complete`` marker of a generated dataset folder, or ``None``."""
    try:
        with open(os.path.join(path, MARKER)) as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get('generator') == GENERATOR else None


def _write_xml(root: ET.Element, path: str) -> None:
    ET.indent(root, space='\t')
    with open(path, 'wb') as f:
        f.write(ET.tostring(root, encoding='utf-8', short_empty_elements=False) + b'\n')


def _sub(parent: ET.Element, tag: str, text=None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    return el


def _sub_values(parent: ET.Element, tag: str, items: Sequence[Tuple[str, object]]) -> ET.Element:
    """A ``<tag>`` child of ``parent`` holding one child per ``(tag, value)`` of ``items``."""
    el = _sub(parent, tag)
    for child, value in items:
        _sub(el, child, value)
    return el


def _voc_annotation(file_name: str, img_size: int, folder: Optional[str] = None,
                    database: Optional[str] = None, segmented: bool = True) -> ET.Element:
    """A VOC ``<annotation>`` root: [folder], filename, [source/database], square size,
    [segmented 0]."""
    ann = ET.Element('annotation')
    if folder is not None:
        _sub(ann, 'folder', folder)
    _sub(ann, 'filename', file_name)
    if database is not None:
        _sub(_sub(ann, 'source'), 'database', database)
    _sub_values(ann, 'size', (('width', img_size), ('height', img_size), ('depth', 3)))
    if segmented:
        _sub(ann, 'segmented', 0)
    return ann


def _voc_object(ann: ET.Element, name: str, obj_type: Optional[str] = None) -> ET.Element:
    """A VOC ``<object>`` of ``ann``: [type], name, pose, truncated 0, difficult 0."""
    o = _sub(ann, 'object')
    if obj_type is not None:
        _sub(o, 'type', obj_type)
    for tag, value in (('name', name), ('pose', 'Unspecified'), ('truncated', 0),
                       ('difficult', 0)):
        _sub(o, tag, value)
    return o


def _voc_box(xmin: int, ymin: int, xmax: int, ymax: int) -> Tuple[Tuple[str, int], ...]:
    """The ``(tag, value)`` items of a VOC ``<bndbox>``."""
    return tuple(zip(('xmin', 'ymin', 'xmax', 'ymax'), (xmin, ymin, xmax, ymax)))


def _lines(path: str, items: Sequence[str]) -> None:
    with open(path, 'w') as f:
        f.write(''.join(f'{item}\n' for item in items))


def _f1(x: float) -> str:
    return f'{x:.1f}'


def _int_box(poly: Sequence[float], size: int) -> Tuple[int, int, int, int]:
    """Integer box covering a flat polygon ``[x1, y1, ...]`` (as written): floor of the min,
    ceil of the max, clipped to the image."""
    xs, ys = np.asarray(poly[0::2], np.float64), np.asarray(poly[1::2], np.float64)
    return (max(0, int(math.floor(xs.min()))), max(0, int(math.floor(ys.min()))),
            min(size - 1, int(math.ceil(xs.max()))), min(size - 1, int(math.ceil(ys.max()))))


def _round_poly(obj: SynthObject, ndigits: Optional[int]) -> List[float]:
    flat = obj.polygon.reshape(-1)
    if ndigits is None:
        return [int(round(v)) for v in flat]
    return [round(float(v), ndigits) for v in flat]


def _split_plan(num_train: int, num_val: int, num_test: int = 0) -> List[Tuple[str, int]]:
    for n, name in ((num_train, 'num_train'), (num_val, 'num_val')):
        if n < 1:
            raise ValueError(f'{name} must be >= 1, got {n}')
    plan = [('train', num_train), ('val', num_val)]
    if num_test:
        plan.append(('test', num_test))
    return plan


def _check_size(img_size: int) -> None:
    if img_size < 32:
        raise ValueError(f'img_size must be >= 32, got {img_size}')


def _generate(dataset: str, split: str, index: int, seed: int, img_size: int,
              classes: Sequence[str], templates: Dict[str, Template],
              style: str) -> Tuple[np.ndarray, List[SynthObject], np.random.Generator]:
    rng = image_rng(seed, dataset, split, index)
    objects = place_objects(rng, img_size, classes, templates)
    if style == 'sar':
        img = render_sar(rng, img_size, objects)
    else:
        kind = style if style in PALETTES else str(rng.choice(['ground', 'ground', 'concrete',
                                                               'sea']))
        img = render_optical(rng, img_size, objects, kind)
    return img, objects, rng


# --------------------------------------------------------------------------------------------
# Makers
# --------------------------------------------------------------------------------------------


def make_shiprs(root: str, num_train: int = 48, num_val: int = 16, img_size: int = 256,
                seed: int = 0, num_test: Optional[int] = None) -> str:
    """ShipRSImageNet (V1 layout) under ``root/ShipRSImageNet``; returns that folder.

    Writes ``VOC_Format/{JPEGImages/*.bmp, Annotations/*.xml, ImageSets/{train,val,test}.txt}``
    (image file names, e.g. ``000001.bmp``), ``COCO_Format/ShipRSImageNet_bbox_{split}_level_
    {0..3}.json`` (test jsons have no annotations, as in v1.0) and an empty ``masks/``.
    Classes: ``SHIPRS_LEVEL_CLASSES`` (ids from 1 per level). ``num_test`` defaults to ``num_val``.
    """
    _check_size(img_size)
    num_test = num_val if num_test is None else num_test
    params = dict(num_train=num_train, num_val=num_val, img_size=img_size, seed=seed,
                  num_test=num_test)
    path = os.path.join(root, DATASET_FOLDERS['shiprs'])
    _prepare(path)
    voc = os.path.join(path, 'VOC_Format')
    for sub in ('Annotations', 'ImageSets', 'JPEGImages'):
        os.makedirs(os.path.join(voc, sub), exist_ok=True)
    os.makedirs(os.path.join(path, 'masks'), exist_ok=True)
    os.makedirs(os.path.join(path, 'COCO_Format'), exist_ok=True)
    counts = {}
    number = 0
    for split, n in _split_plan(num_train, num_val, num_test):
        files = []
        images, annotations = [], []
        for i in range(n):
            number += 1
            img, objects, _ = _generate('shiprs', split, i, seed, img_size, SHIPRS_CLASSES,
                                        SHIPRS_TEMPLATES, 'sea')
            file_name = f'{number:06d}.bmp'
            files.append(file_name)
            cv2.imwrite(os.path.join(voc, 'JPEGImages', file_name), img)
            ann = _voc_annotation(file_name, img_size, folder='JPEGImages')
            images.append(dict(id=i + 1, file_name=file_name, width=img_size, height=img_size))
            for obj in objects:
                poly = _round_poly(obj, 1)
                xmin, ymin, xmax, ymax = _int_box(poly, img_size)
                area = round(polygon_area(np.array(poly).reshape(4, 2)), 1)
                levels = [SHIPRS_LEVEL_CLASSES[k].index((*SHIPRS_HIERARCHY[obj.name],
                                                         obj.name)[k]) + 1 for k in range(4)]
                o = _voc_object(ann, obj.name)
                _sub_values(o, 'polygon', [(f'{axis}{j + 1}', _f1(poly[2 * j + k]))
                                           for j in range(4) for k, axis in enumerate('xy')])
                _sub_values(o, 'bndbox', _voc_box(xmin, ymin, xmax, ymax))
                _sub(o, 'Ship_area', _f1(area))
                for k in range(4):
                    _sub(o, f'level_{k}', levels[k])
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=i + 1, levels=levels,
                    bbox=[xmin, ymin, xmax - xmin, ymax - ymin], area=area,
                    segmentation=[poly], iscrowd=0))
            _write_xml(ann, os.path.join(voc, 'Annotations', file_name.replace('.bmp', '.xml')))
        _lines(os.path.join(voc, 'ImageSets', f'{split}.txt'), files)
        for level in range(4):
            cats = [dict(id=j + 1, name=name, supercategory=name)
                    for j, name in enumerate(SHIPRS_LEVEL_CLASSES[level])]
            anns = [] if split == 'test' else [
                dict(id=a['id'], image_id=a['image_id'], category_id=a['levels'][level],
                     bbox=a['bbox'], area=a['area'], segmentation=a['segmentation'],
                     iscrowd=0) for a in annotations]
            with open(os.path.join(path, 'COCO_Format',
                                   f'ShipRSImageNet_bbox_{split}_level_{level}.json'), 'w') as f:
                json.dump(dict(images=images, annotations=anns, categories=cats), f)
        counts[split] = dict(images=n, objects=len(annotations))
    return _finish(path, 'shiprs', params, counts)


def make_sar_aircraft(root: str, num_train: int = 48, num_val: int = 16, img_size: int = 256,
                      seed: int = 0,
                      classes: Sequence[str] = SAR_AIRCRAFT_USED_CLASSES) -> str:
    """SAR-AIRcraft-1.0 (VOC layout) under ``root/SAR-AIRcraft-1.0``; returns that folder.

    ``JPEGImages/0000001.jpg``, ``Annotations/0000001.xml`` (horizontal boxes that hug the
    aircraft silhouette, in 1-based VOC pixel coordinates: ``xmin = floor(x) + 1``,
    ``xmax = ceil(x) + 1``),
    ``ImageSets/Main/{train,val,test,trainval}.txt`` (7-digit ids); test lists the val images.
    """
    _check_size(img_size)
    unknown = [c for c in classes if c not in SAR_AIRCRAFT_CLASSES]
    if unknown:
        raise ValueError(f'unknown SAR-AIRcraft classes {unknown}')
    params = dict(num_train=num_train, num_val=num_val, img_size=img_size, seed=seed,
                  classes=list(classes))
    path = os.path.join(root, DATASET_FOLDERS['sar_aircraft'])
    _prepare(path)
    for sub in ('Annotations', 'JPEGImages', os.path.join('ImageSets', 'Main')):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    templates = {c: _plane(c) for c in classes}
    counts, lists, number = {}, {}, 0
    for split, n in _split_plan(num_train, num_val):
        ids, n_obj = [], 0
        for i in range(n):
            number += 1
            img, objects, _ = _generate('sar_aircraft', split, i, seed, img_size, classes,
                                        templates, 'sar')
            img_id = f'{number:07d}'
            ids.append(img_id)
            cv2.imwrite(os.path.join(path, 'JPEGImages', f'{img_id}.jpg'), img,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            ann = _voc_annotation(f'{img_id}.jpg', img_size, folder='JPEGImages',
                                  segmented=False)
            for obj in objects:
                x0, y0, x1, y1 = obj.silhouette_box(img_size)
                xmin, ymin, xmax, ymax = _int_box([x0, y0, x1, y1], img_size)
                _sub_values(_voc_object(ann, obj.name), 'bndbox',
                            _voc_box(xmin + 1, ymin + 1, xmax + 1, ymax + 1))
            n_obj += len(objects)
            _write_xml(ann, os.path.join(path, 'Annotations', f'{img_id}.xml'))
        lists[split] = ids
        counts[split] = dict(images=n, objects=n_obj)
    main = os.path.join(path, 'ImageSets', 'Main')
    _lines(os.path.join(main, 'train.txt'), lists['train'])
    _lines(os.path.join(main, 'val.txt'), lists['val'])
    _lines(os.path.join(main, 'test.txt'), lists['val'])
    _lines(os.path.join(main, 'trainval.txt'), lists['train'] + lists['val'])
    counts['test'] = dict(counts['val'], same_as='val')
    return _finish(path, 'sar_aircraft', params, counts)


def make_dota(root: str, num_train: int = 48, num_val: int = 16, img_size: int = 256,
              seed: int = 0) -> str:
    """DOTA-v1.0 under ``root/DOTA``: ``{train,val}/{images/P0000.png, labelTxt/P0000.txt}``.

    labelTxt: ``imagesource:GoogleEarth``, ``gsd:0.5``, then ``x1 y1 ... x4 y4 class difficult``
    (1 decimal; about 5% of the objects are difficult=1). Classes: ``DOTA_USED_CLASSES``.
    Note: mmrotate's own ``DOTADataset`` does not skip the two header lines (it expects
    headerless, split patches); ``ifkd_mm``'s ``CheckedDOTADataset`` does.
    """
    _check_size(img_size)
    params = dict(num_train=num_train, num_val=num_val, img_size=img_size, seed=seed)
    path = os.path.join(root, DATASET_FOLDERS['dota'])
    _prepare(path)
    counts, number = {}, 0
    for split, n in _split_plan(num_train, num_val):
        img_dir = os.path.join(path, split, 'images')
        lbl_dir = os.path.join(path, split, 'labelTxt')
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(lbl_dir, exist_ok=True)
        n_obj = 0
        for i in range(n):
            img, objects, rng = _generate('dota', split, i, seed, img_size, DOTA_USED_CLASSES,
                                          DOTA_TEMPLATES, 'mixed')
            name = f'P{number:04d}'
            number += 1
            cv2.imwrite(os.path.join(img_dir, f'{name}.png'), img)
            lines = ['imagesource:GoogleEarth', 'gsd:0.5']
            for obj in objects:
                difficult = int(rng.random() < 0.05)
                coords = ' '.join(_f1(v) for v in _round_poly(obj, 1))
                lines.append(f'{coords} {obj.name} {difficult}')
            _lines(os.path.join(lbl_dir, f'{name}.txt'), lines)
            n_obj += len(objects)
        counts[split] = dict(images=n, objects=n_obj)
    return _finish(path, 'dota', params, counts)


DIOR_CORNER_TAGS = ('x_left_top', 'y_left_top', 'x_right_top', 'y_right_top', 'x_right_bottom',
                    'y_right_bottom', 'x_left_bottom', 'y_left_bottom')


def make_dior_r(root: str, num_train: int = 48, num_val: int = 16, img_size: int = 256,
                seed: int = 0, num_test: Optional[int] = None) -> str:
    """DIOR-R under ``root/DIOR-R``; returns that folder.

    ``JPEGImages-trainval/00001.jpg`` (train + val), ``JPEGImages-test/`` (test),
    ``Annotations/Oriented Bounding Boxes/00001.xml`` (``robndbox`` corners, integers, plus
    ``angle`` in degrees), ``Annotations/Horizontal Bounding Boxes/00001.xml`` (VOC ``bndbox``,
    as in DIOR), ``ImageSets/Main/{train,val,test}.txt`` (5-digit ids, numbered on across the
    splits like the real files). Classes: ``DIOR_USED_CLASSES``; ``num_test`` defaults to
    ``num_val``.
    """
    _check_size(img_size)
    num_test = num_val if num_test is None else num_test
    params = dict(num_train=num_train, num_val=num_val, img_size=img_size, seed=seed,
                  num_test=num_test)
    path = os.path.join(root, DATASET_FOLDERS['dior_r'])
    _prepare(path)
    obb_dir = os.path.join(path, 'Annotations', 'Oriented Bounding Boxes')
    hbb_dir = os.path.join(path, 'Annotations', 'Horizontal Bounding Boxes')
    main = os.path.join(path, 'ImageSets', 'Main')
    for d in (obb_dir, hbb_dir, main, os.path.join(path, 'JPEGImages-trainval'),
              os.path.join(path, 'JPEGImages-test')):
        os.makedirs(d, exist_ok=True)
    counts, number = {}, 0
    for split, n in _split_plan(num_train, num_val, num_test):
        img_dir = os.path.join(path, 'JPEGImages-test' if split == 'test' else
                               'JPEGImages-trainval')
        ids, n_obj = [], 0
        for i in range(n):
            number += 1
            img, objects, _ = _generate('dior_r', split, i, seed, img_size, DIOR_USED_CLASSES,
                                        DIOR_TEMPLATES, 'mixed')
            img_id = f'{number:05d}'
            ids.append(img_id)
            cv2.imwrite(os.path.join(img_dir, f'{img_id}.jpg'), img,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            obb, hbb = (_voc_annotation(f'{img_id}.jpg', img_size, database='DIOR')
                        for _ in range(2))
            for obj in objects:
                poly = _round_poly(obj, None)
                o = _voc_object(obb, obj.name, obj_type='robndbox')
                _sub_values(o, 'robndbox', tuple(zip(DIOR_CORNER_TAGS, poly)))
                _sub(o, 'angle', int(round(obj.angle)) % 180)
                _sub_values(_voc_object(hbb, obj.name), 'bndbox',
                            _voc_box(*_int_box(poly, img_size)))
            _write_xml(obb, os.path.join(obb_dir, f'{img_id}.xml'))
            _write_xml(hbb, os.path.join(hbb_dir, f'{img_id}.xml'))
            n_obj += len(objects)
        _lines(os.path.join(main, f'{split}.txt'), ids)
        counts[split] = dict(images=n, objects=n_obj)
    return _finish(path, 'dior_r', params, counts)


def make_hrsc2016(root: str, num_train: int = 48, num_val: int = 16, img_size: int = 256,
                  seed: int = 0, num_test: Optional[int] = None) -> str:
    """HRSC2016 in the layout read by mmrotate 1.x ``HRSCDataset``, under ``root/HRSC2016``.

    ``FullDataSet/AllImages/100000001.bmp``, ``FullDataSet/Annotations/100000001.xml`` (root
    ``HRSC_Image`` with ``Img_SizeWidth`` / ``Img_SizeHeight``; objects under
    ``HRSC_Objects/HRSC_Object`` with ``Class_ID``, ``difficult``, ``box_xmin..box_ymax``,
    ``mbox_cx/cy/w/h`` (w along the ship), ``mbox_ang`` (radians, in [-pi/2, pi/2)),
    ``header_x/header_y`` (the bow)), ``ImageSets/{train,val,trainval,test}.txt`` (ids).
    Config: ``data_root=<this folder>``, ``ann_file='ImageSets/trainval.txt'``,
    ``data_prefix=dict(sub_data_root='FullDataSet/')``. Classes (``HRSC_USED_CLASSES``):
    aircraft carrier (100000002), warcraft (100000003), merchant ship (100000004) and submarine
    (100000027), all valid with ``classwise=True``; with ``classwise=False`` all are 'ship'.
    Images are square because mmrotate 1.x reads the height from ``Img_SizeWidth``.
    ``num_test`` defaults to ``num_val``.
    """
    _check_size(img_size)
    num_test = num_val if num_test is None else num_test
    params = dict(num_train=num_train, num_val=num_val, img_size=img_size, seed=seed,
                  num_test=num_test)
    path = os.path.join(root, DATASET_FOLDERS['hrsc2016'])
    _prepare(path)
    img_dir = os.path.join(path, 'FullDataSet', 'AllImages')
    ann_dir = os.path.join(path, 'FullDataSet', 'Annotations')
    sets = os.path.join(path, 'ImageSets')
    for d in (img_dir, ann_dir, sets):
        os.makedirs(d, exist_ok=True)
    classes = tuple(HRSC_USED_CLASSES)
    counts, lists, number = {}, {}, 0
    for split, n in _split_plan(num_train, num_val, num_test):
        ids, n_obj = [], 0
        for i in range(n):
            number += 1
            img, objects, _ = _generate('hrsc2016', split, i, seed, img_size, classes,
                                        HRSC_TEMPLATES, 'sea')
            img_id = f'1{number:08d}'
            ids.append(img_id)
            cv2.imwrite(os.path.join(img_dir, f'{img_id}.bmp'), img)
            ann = ET.Element('HRSC_Image')
            for tag, v in (('Img_ID', img_id), ('Place_ID', '100000001'),
                           ('Source_ID', '100000001'), ('Img_NO', img_id),
                           ('Img_FileName', img_id), ('Img_FileFmt', 'bmp'),
                           ('Img_Date', '2016-01-01'), ('Img_CusType', 'sealand'),
                           ('Img_Des', ''), ('Img_Location', '0,0'),
                           ('Img_SizeWidth', img_size), ('Img_SizeHeight', img_size),
                           ('Img_SizeDepth', 3), ('Img_Resolution', '1.0'),
                           ('Img_Resolution_Layer', '18'), ('Img_Scale', '100'),
                           ('Img_SclPxlNum', ''), ('segmented', 0),
                           ('Img_Havemask', 0), ('Img_MaskFileName', ''),
                           ('Img_MaskFmt', ''), ('Img_MaskType', ''),
                           ('Img_SegFileName', ''), ('Img_SegFmt', ''),
                           ('Img_Rotation', '000d'), ('Annotated', 1)):
                _sub(ann, tag, v)
            objs_el = _sub(ann, 'HRSC_Objects')
            for j, obj in enumerate(objects):
                xmin, ymin, xmax, ymax = _int_box(obj.polygon.reshape(-1), img_size)
                ang = math.radians(obj.heading)
                ang = (ang + math.pi / 2) % math.pi - math.pi / 2
                o = _sub(objs_el, 'HRSC_Object')
                for tag, v in (('Object_ID', f'{number * 100 + j}'),
                               ('Class_ID', HRSC_USED_CLASSES[obj.name]),
                               ('Object_NO', j + 1), ('truncated', 0), ('difficult', 0),
                               ('box_xmin', xmin), ('box_ymin', ymin), ('box_xmax', xmax),
                               ('box_ymax', ymax), ('mbox_cx', f'{obj.cx:.4f}'),
                               ('mbox_cy', f'{obj.cy:.4f}'), ('mbox_w', f'{obj.w:.4f}'),
                               ('mbox_h', f'{obj.h:.4f}'), ('mbox_ang', f'{ang:.6f}'),
                               ('header_x', int(round(obj.head[0]))),
                               ('header_y', int(round(obj.head[1]))), ('seg_color', '')):
                    _sub(o, tag, v)
            _write_xml(ann, os.path.join(ann_dir, f'{img_id}.xml'))
            n_obj += len(objects)
        lists[split] = ids
        counts[split] = dict(images=n, objects=n_obj)
    for split in ('train', 'val', 'test'):
        _lines(os.path.join(sets, f'{split}.txt'), lists[split])
    _lines(os.path.join(sets, 'trainval.txt'), lists['train'] + lists['val'])
    return _finish(path, 'hrsc2016', params, counts)


# --------------------------------------------------------------------------------------------
# Scene classification folders
# --------------------------------------------------------------------------------------------


def _norm(name: str) -> str:
    return ''.join(ch for ch in name.lower() if ch.isalnum())


def _scene_base(rng: np.random.Generator, size: int, bgr: Sequence[float], var: float = 0.1,
                grids: Sequence[int] = (3, 6, 12)) -> np.ndarray:
    base = np.array(bgr, np.float32) * rng.uniform(0.88, 1.12, 3).astype(np.float32)
    return base[None, None, :] * (1 + var * _lowfreq(rng, size, grids)[..., None])


def _band(img: np.ndarray, center, ang: float, length: float, width: float, color) -> None:
    c, s = math.cos(ang), math.sin(ang)
    pts = np.array([[-length / 2, -width / 2], [length / 2, -width / 2],
                    [length / 2, width / 2], [-length / 2, width / 2]])
    rot = np.array([[c, -s], [s, c]])
    _fill(img, pts @ rot.T + np.asarray(center), color)


def _scene_airplane(rng, size):
    img = np.clip(_scene_base(rng, size, (125, 128, 128), 0.08), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        shape = aircraft('airliner', rng)
        obj = SynthObject('airplane', np.zeros((4, 2)), (0, 0, 0, 0), *rng.uniform(
            0.2, 0.8, 2) * size, 1, 1, 0, float(rng.uniform(0, 360)), (0, 0), shape,
            rng.uniform(0.3, 0.5) * size)
        color = rng.uniform(200, 240) + rng.uniform(-8, 8, 3)
        for poly, tone in shape.layers:
            _fill(img, obj.to_image(poly), np.clip(color * tone, 0, 255))
    return img


def _scene_airport(rng, size):
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


def _scene_baseball(rng, size):
    img = np.clip(_scene_base(rng, size, (60, 140, 80), 0.1), 0, 255).astype(np.uint8)
    c = size / 2 + rng.normal(0, size * 0.06, 2)
    ang = rng.uniform(0, 2 * np.pi)
    r = rng.uniform(0.35, 0.45) * size
    t = np.linspace(ang - np.pi / 4, ang + np.pi / 4, 16)
    fan = np.concatenate([[c], c + r * np.stack([np.cos(t), np.sin(t)], 1)])
    _fill(img, fan, (90, 140, 185))  # sand infield
    d = r * 0.45
    diamond = c + np.array([[0, 0], [d * math.cos(ang - np.pi / 4), d * math.sin(ang - np.pi / 4)],
                            [d * 1.41 * math.cos(ang), d * 1.41 * math.sin(ang)],
                            [d * math.cos(ang + np.pi / 4), d * math.sin(ang + np.pi / 4)]])
    _fill(img, diamond, (70, 150, 90))
    cv2.polylines(img, [_fixed(diamond)], True, (235, 235, 235), 1, cv2.LINE_AA, 4)
    return img


def _scene_beach(rng, size):
    sea = _scene_base(rng, size, (130, 100, 40), 0.08)
    sand = _scene_base(rng, size, (150, 195, 215), 0.06)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    coord = (xx - size / 2) * math.cos(ang) + (yy - size / 2) * math.sin(ang)
    edge = coord + size * 0.08 * _lowfreq(rng, size, (3,), (1.0,)) + rng.uniform(-0.15, 0.15) * size
    m = np.clip(edge / 1.5 + 0.5, 0, 1)[..., None]
    img = sea * (1 - m) + sand * m
    surf = np.exp(-((edge + 2.5) ** 2) / 4.0)[..., None]
    img = img * (1 - surf) + 240 * surf
    return np.clip(img, 0, 255).astype(np.uint8)


def _scene_bridge(rng, size):
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


def _scene_bareland(rng, size):
    img = _scene_base(rng, size, (95, 130, 165), 0.12, (4, 12, 32))
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(0, 3))):
        p = rng.uniform(0, size, 2)
        q = rng.uniform(0, size, 2)
        cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q), (120, 150, 180), 1,
                 cv2.LINE_AA)
    return img


def _generic_pattern(kind: int, params: np.random.Generator, rng, size):
    """Fallback class patterns; ``params`` is fixed per class, ``rng`` per image."""
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
            _fill(out, _ellipse(c[0], c[1], r, r, 12), 255 - palette)
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


SCENE_PATTERNS: Dict[str, Callable] = {
    'airplane': _scene_airplane, 'airport': _scene_airport, 'baseballdiamond': _scene_baseball,
    'baseballfield': _scene_baseball, 'beach': _scene_beach, 'bridge': _scene_bridge,
    'bareland': _scene_bareland,
}


def _scene_aircraft(name: str, rng: np.random.Generator, size: int) -> np.ndarray:
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
        _fill(shadow, obj.to_image(poly) + 1.5, 255)
    out = (out * (1 - 0.4 * cv2.GaussianBlur(shadow.astype(np.float32) / 255, (0, 0), 1.0)
                  [..., None])).astype(np.uint8)
    level = rng.uniform(180, 235)
    for poly, tone in shape.layers:
        _fill(out, obj.to_image(poly), np.clip(level * tone + rng.uniform(-8, 8, 3), 0, 255))
    return out


def make_scene_folders(root: str, name: str, classes: Sequence[str], per_class: int = 12,
                       img_size: int = 64, seed: int = 0, style: str = 'auto',
                       file_pattern: Optional[str] = None) -> str:
    """Scene-classification folders ``root/<name>/<class>/<file>.jpg``; returns ``root/<name>``.

    ``style``: 'texture' (a distinct scene pattern per class; recognised names get a themed
    pattern: airplane, airport, baseball diamond / field, beach, bridge, bare land, others a
    per-class stripes / blobs / grid / rings pattern), 'aircraft' (one aircraft of the class's
    type per image, as in AFGR50) or 'auto' ('aircraft' for names starting with AFGR).
    ``file_pattern`` (``{cls}``, ``{lower}``, ``{i}`` = 1-based index) defaults to the real
    naming: AID ``{lower}_{i}.jpg``, otherwise ``{cls}_{i:03d}.jpg`` (NWPU-RESISC45).
    """
    if img_size < 16:
        raise ValueError(f'img_size must be >= 16, got {img_size}')
    if per_class < 1:
        raise ValueError(f'per_class must be >= 1, got {per_class}')
    if style == 'auto':
        style = 'aircraft' if name.upper().startswith('AFGR') else 'texture'
    if file_pattern is None:
        file_pattern = '{lower}_{i}.jpg' if name == 'AID' else '{cls}_{i:03d}.jpg'
    params = dict(name=name, classes=list(classes), per_class=per_class, img_size=img_size,
                  seed=seed, style=style, file_pattern=file_pattern)
    path = os.path.join(root, name)
    _prepare(path)
    counts = {}
    for idx, cls in enumerate(classes):
        folder = os.path.join(path, cls.replace('/', '_'))
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            rng = image_rng(seed, f'{name}/{cls}', 'all', i)
            if style == 'aircraft':
                img = _scene_aircraft(cls, rng, img_size)
            elif _norm(cls) in SCENE_PATTERNS:
                img = SCENE_PATTERNS[_norm(cls)](rng, img_size)
            else:
                class_params = np.random.default_rng([zlib.crc32(cls.encode()), idx])
                img = _generic_pattern(idx % 4, class_params, rng, img_size)
            img = img.astype(np.float32) * rng.uniform(0.85, 1.15)
            img += rng.normal(0, 3.0, img.shape).astype(np.float32)
            img = np.clip(img, 0, 255).astype(np.uint8)
            fname = file_pattern.format(cls=cls.replace('/', '_'),
                                        lower=cls.lower().replace('/', '_'), i=i + 1)
            cv2.imwrite(os.path.join(folder, fname), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        counts[cls] = per_class
    return _finish(path, _norm(name), params, counts)


def make_nwpu45(root: str, per_class: int = 12, img_size: int = 64, seed: int = 0) -> str:
    """NWPU-RESISC45 subset (``NWPU45_CLASSES``): ``root/NWPU-RESISC45/<class>/<class>_001.jpg``."""
    return make_scene_folders(root, 'NWPU-RESISC45', NWPU45_CLASSES, per_class, img_size, seed)


def make_aid(root: str, per_class: int = 12, img_size: int = 64, seed: int = 0) -> str:
    """AID subset (``AID_CLASSES``): ``root/AID/<Class>/<class>_1.jpg``."""
    return make_scene_folders(root, 'AID', AID_CLASSES, per_class, img_size, seed)


def make_afgr50(root: str, per_class: int = 12, img_size: int = 64, seed: int = 0) -> str:
    """AFGR50 subset (``AFGR50_CLASSES``, aircraft types): ``root/AFGR50/<type>/<type>_001.jpg``."""
    return make_scene_folders(root, 'AFGR50', AFGR50_CLASSES, per_class, img_size, seed)


#: dataset name -> maker. Detection makers take ``(root, num_train, num_val, img_size, seed)``,
#: the scene makers (``SCENE_DATASETS``) ``(root, per_class, img_size, seed)``.
MAKERS: Dict[str, Callable[..., str]] = {
    'shiprs': make_shiprs, 'sar_aircraft': make_sar_aircraft, 'dota': make_dota,
    'dior_r': make_dior_r, 'hrsc2016': make_hrsc2016, 'nwpu45': make_nwpu45, 'aid': make_aid,
    'afgr50': make_afgr50,
}
DETECTION_DATASETS = ('shiprs', 'sar_aircraft', 'dota', 'dior_r', 'hrsc2016')
SCENE_DATASETS = ('nwpu45', 'aid', 'afgr50')


def effective_params(name: str, **kwargs) -> dict:
    """The parameters a maker records in its marker, for the given (possibly partial) kwargs."""
    maker = MAKERS[name]
    sig = inspect.signature(maker)
    kwargs = {k: v for k, v in kwargs.items() if v is not None and k in sig.parameters}
    bound = sig.bind('<root>', **kwargs)
    bound.apply_defaults()
    params = dict(bound.arguments)
    params.pop('root')
    if name in SCENE_DATASETS:  # recorded as make_scene_folders records them
        scene_sig = inspect.signature(make_scene_folders)
        name_folder = DATASET_FOLDERS[name]
        classes = {'nwpu45': NWPU45_CLASSES, 'aid': AID_CLASSES, 'afgr50': AFGR50_CLASSES}[name]
        scene = scene_sig.bind('<root>', name_folder, classes, **params)
        scene.apply_defaults()
        params = dict(scene.arguments)
        params.pop('root')
        params['classes'] = list(params['classes'])
        if params['style'] == 'auto':
            params['style'] = 'aircraft' if name_folder.upper().startswith('AFGR') else 'texture'
        if params['file_pattern'] is None:
            params['file_pattern'] = ('{lower}_{i}.jpg' if name_folder == 'AID'
                                      else '{cls}_{i:03d}.jpg')
        return params
    if name == 'sar_aircraft':
        params['classes'] = list(params['classes'])
    if 'num_test' in params and params['num_test'] is None:
        params['num_test'] = params['num_val']
    return params


def ensure_dataset(name: str, root: str, force: bool = False,
                   **kwargs) -> Tuple[str, bool, dict]:
    """Make dataset ``name`` under ``root`` unless a complete copy with the same parameters is
    there. Returns ``(path, generated, marker)``; ``kwargs`` go to the maker (``None`` = default).
    """
    path = os.path.join(root, DATASET_FOLDERS[name])
    wanted = effective_params(name, **kwargs)
    marker = read_marker(path)
    if (not force and marker is not None and marker.get('version') == GENERATOR_VERSION and
            marker.get('params') == wanted and not os.path.exists(os.path.join(path,
                                                                               IN_PROGRESS))):
        return path, False, marker
    kwargs = {k: v for k, v in kwargs.items()
              if v is not None and k in inspect.signature(MAKERS[name]).parameters}
    MAKERS[name](root, **kwargs)
    return path, True, read_marker(path)


__all__ = [
    'AFGR50_CLASSES', 'AID_CLASSES', 'DATASET_FOLDERS', 'DETECTION_DATASETS', 'DIOR_CLASSES',
    'DIOR_USED_CLASSES', 'DOTA_CLASSES', 'DOTA_USED_CLASSES', 'HRSC_USED_CLASSES', 'MAKERS',
    'NWPU45_CLASSES', 'SAR_AIRCRAFT_CLASSES', 'SAR_AIRCRAFT_USED_CLASSES', 'SCENE_DATASETS',
    'SHIPRS_CLASSES', 'SHIPRS_HIERARCHY', 'SHIPRS_LEVEL_CLASSES', 'SHIPRS_REAL_LEVEL_CLASSES',
    'Shape', 'SynthObject', 'effective_params', 'ensure_dataset', 'image_rng', 'make_aid',
    'make_afgr50', 'make_dior_r', 'make_dota', 'make_hrsc2016', 'make_nwpu45',
    'make_sar_aircraft', 'make_scene_folders', 'make_shiprs', 'place_objects', 'read_marker',
    'render_optical', 'render_sar',
]
