"""How the written annotations round the geometry: one-decimal text, rounded polygons and the
integer box covering a written polygon."""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .objects import SynthObject


def one_decimal(x: float) -> str:
    """``x`` as text with one decimal (``'12.3'``)."""
    return f'{x:.1f}'


def int_box(poly: Sequence[float], size: int) -> Tuple[int, int, int, int]:
    """Integer box covering a flat polygon ``[x1, y1, ...]`` (as written): floor of the min,
    ceil of the max, clipped to the image."""
    xs, ys = np.asarray(poly[0::2], np.float64), np.asarray(poly[1::2], np.float64)
    return (max(0, int(math.floor(xs.min()))), max(0, int(math.floor(ys.min()))),
            min(size - 1, int(math.ceil(xs.max()))), min(size - 1, int(math.ceil(ys.max()))))


def round_polygon(obj: SynthObject, ndigits: Optional[int]) -> List[float]:
    """The flat polygon ``[x1, y1, ..., x4, y4]`` of ``obj`` rounded to ``ndigits`` decimals
    (to integers for ``None``)."""
    flat = obj.polygon.reshape(-1)
    if ndigits is None:
        return [int(round(v)) for v in flat]
    return [round(float(v), ndigits) for v in flat]
