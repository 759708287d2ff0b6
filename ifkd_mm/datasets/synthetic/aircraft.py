"""Top-down aircraft silhouettes by type (wing sweep, engine placement, tail form, ...), for the
SAR-AIRcraft, DOTA and DIOR-R planes and the AFGR50 / airplane scene images."""
from __future__ import annotations

import math
import zlib
from typing import Dict

import numpy as np

from .drawing import ellipse, jitter, mirror, rect
from .shapes import Shape, Template

#: Aircraft parameters in fuselage-length units; engines: (u, v, length, width), right side.
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
        p[key] = jitter(rng, p[key], 0.04)
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
    s.add(mirror(wing), 0.88)
    # horizontal stabilisers
    ts, tsw = p['tail_span'] / 2, p['tail_sweep']
    tu = -0.47 if p.get('t_tail') else -0.38
    tail = np.array([(tu + 0.06, fw * 0.5), (tu + 0.06 - tsw, ts), (tu - 0.02 - tsw, ts),
                     (tu - 0.04, fw * 0.5)])
    if p.get('t_tail'):
        tail = np.array([(tu + 0.05, 0.0), (tu + 0.05 - tsw, ts), (tu - 0.02 - tsw, ts),
                         (tu - 0.03, 0.0)])
    s.add(tail, 0.88)
    s.add(mirror(tail), 0.88)
    # fuselage: round nose, cylinder, tapered tail cone
    nose = [(0.5 - 0.08 * (1 - math.cos(a)), fw * math.sin(a))
            for a in np.linspace(0, np.pi / 2, 7)]
    body = np.array([(-0.5, fw * 0.3), (-0.28, fw)] + nose[::-1])  # tail -> nose, right side
    fus = np.concatenate([body, mirror(body)])
    s.add(fus, 1.05)
    if p.get('hump'):
        s.add(ellipse(0.30, 0.0, 0.16, fw * 1.25, 18), 1.1)
    if p.get('t_tail'):
        s.add(rect(-0.5, -0.40, -fw * 0.25, fw * 0.25), 0.8)  # fin seen from above
    s.add(rect(0.40, 0.44, -fw * 0.7, fw * 0.7), 0.45)  # cockpit windows
    pts = [(0.5, 0, 1.0), (-0.5, 0, 0.8), (wu, fw, 0.8), (wu, -fw, 0.8),
           (le_root - sweep - tip / 2, half, 0.9), (le_root - sweep - tip / 2, -half, 0.9),
           (tu - tsw, ts, 0.7), (tu - tsw, -ts, 0.7)]
    for (eu, ev, el, ew) in p['engines']:
        for sign in (1, -1):
            s.add(rect(eu - el / 2, eu + el / 2, sign * ev - ew / 2, sign * ev + ew / 2), 0.55)
            pts.append((eu, sign * ev, 1.3))
    if p.get('rear_engines'):
        eu, ev, el, ew = p['rear_engines']
        for sign in (1, -1):
            s.add(rect(eu - el / 2, eu + el / 2, sign * ev - ew / 2, sign * ev + ew / 2), 0.55)
            pts.append((eu, sign * ev, 1.3))
    s.points = pts
    return s


def plane_template(name: str) -> Template:
    """The template that draws aircraft of type ``name``."""
    return lambda rng: aircraft(name, rng)
