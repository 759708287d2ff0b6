"""Generated objects in pixel coordinates, and their random placement in an image.

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

import math
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from .drawing import polygon_area
from .shapes import Shape, Template


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


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two ``[xmin, ymin, xmax, ymax]`` boxes."""
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
