"""Validation shared by the dataset readers.

Malformed annotations (unparsable files, missing fields, non-numbers, unknown classes) raise an
:class:`AnnotationError` that names the file and the object. Degenerate ones (no area, outside the
image) are left out with an :class:`AnnotationWarning` that names them, never silently.
"""
import math
import warnings
import xml.etree.ElementTree as ET
from typing import Optional, Sequence, Union

import numpy as np


class AnnotationError(ValueError):
    """An annotation file that cannot be read as its format says."""


class AnnotationWarning(UserWarning):
    """An annotation that was read but left out (degenerate or outside its image)."""


Obj = Union[int, str, None]


def where(source: str, obj: Obj = None) -> str:
    """``'file'``, ``'file, object k'`` (k counts from 0 in file order) or ``'file, <obj>'``."""
    if obj is None:
        return source
    return f'{source}, object {obj}' if isinstance(obj, int) else f'{source}, {obj}'


def leave_out(source: str, obj: Obj, reason: str) -> None:
    """Warn that an object is left out of the dataset, and why."""
    warnings.warn(f'{where(source, obj)}: {reason}; the object is left out', AnnotationWarning,
                  stacklevel=2)


def read_xml(path: str) -> ET.Element:
    """Parse an XML annotation file, naming it in the error if it is not XML."""
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as err:
        raise AnnotationError(f'{path}: not a valid XML annotation ({err})') from err
    except OSError as err:
        raise AnnotationError(f'{path}: cannot read the annotation file ({err})') from err


def xml_text(parent: ET.Element, tag: str, source: str, obj: Obj = None) -> str:
    """Text of the child ``tag`` of ``parent``; an error naming the field if it is missing."""
    child = parent.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise AnnotationError(f'{where(source, obj)}: missing field <{tag}>')
    return child.text.strip()


def to_number(text: str, field: str, source: str, obj: Obj = None) -> float:
    """``float(text)``, finite, or an error naming the file, object and field."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise AnnotationError(
            f'{where(source, obj)}: field {field} is {text!r}, not a number') from None
    if not math.isfinite(value):
        raise AnnotationError(f'{where(source, obj)}: field {field} is {text!r}, not finite')
    return value


def xml_number(parent: ET.Element, tag: str, source: str, obj: Obj = None) -> float:
    """The number in the child ``tag`` of ``parent``."""
    return to_number(xml_text(parent, tag, source, obj), f'<{tag}>', source, obj)


def class_label(name: str, classes: Sequence[str], source: str, obj: Obj) -> int:
    """Index of ``name`` in ``classes``; an error listing the known classes otherwise."""
    try:
        return list(classes).index(name)
    except ValueError:
        raise AnnotationError(f'{where(source, obj)}: unknown class {name!r}; '
                              f'the dataset has {tuple(classes)}') from None


def checked_hbox(bbox: Sequence[float], width: int, height: int, source: str,
                 obj: Obj) -> Optional[list]:
    """Clip ``[x1, y1, x2, y2]`` to the image; ``None`` (warned) if under 1 px wide or high."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    if x2 <= x1 or y2 <= y1:
        leave_out(source, obj, f'box {[x1, y1, x2, y2]} has no area')
        return None
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
    if cx2 - cx1 < 1 or cy2 - cy1 < 1:
        leave_out(source, obj, f'box {[x1, y1, x2, y2]} lies outside the {width}x{height} image '
                  'or is under 1 pixel wide')
        return None
    return [cx1, cy1, cx2, cy2]


def polygon_area(polygon: Sequence[float]) -> float:
    """Area of a polygon ``[x1, y1, x2, y2, ...]`` (shoelace formula)."""
    points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def checked_polygon(polygon: Sequence[float], width: int, height: int, source: str,
                    obj: Obj) -> Optional[list]:
    """A 4-point polygon of 8 numbers with area, overlapping the image; ``None`` (warned) else."""
    if len(polygon) != 8:
        raise AnnotationError(f'{where(source, obj)}: a quadrilateral needs 8 coordinates, '
                              f'got {len(polygon)}')
    polygon = [float(v) for v in polygon]
    if polygon_area(polygon) < 1:
        leave_out(source, obj, f'polygon {polygon} has no area')
        return None
    xs, ys = polygon[0::2], polygon[1::2]
    if max(xs) <= 0 or max(ys) <= 0 or min(xs) >= width or min(ys) >= height:
        leave_out(source, obj, f'polygon {polygon} lies outside the {width}x{height} image')
        return None
    return polygon
