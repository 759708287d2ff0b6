"""XML annotation writing: element helpers and the pieces of a VOC annotation (root, object,
box), as written by the ShipRSImageNet, SAR-AIRcraft, DIOR-R and HRSC2016 layouts."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Optional, Sequence, Tuple


def write_xml(root: ET.Element, path: str) -> None:
    """Write ``root`` tab-indented, UTF-8, with explicit end tags and a final newline."""
    ET.indent(root, space='\t')
    with open(path, 'wb') as f:
        f.write(ET.tostring(root, encoding='utf-8', short_empty_elements=False) + b'\n')


def sub_element(parent: ET.Element, tag: str, text: object = None) -> ET.Element:
    """A new ``<tag>`` child of ``parent`` holding ``str(text)`` (no text for ``None``)."""
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    return el


def sub_values(parent: ET.Element, tag: str, items: Sequence[Tuple[str, object]]) -> ET.Element:
    """A ``<tag>`` child of ``parent`` holding one child per ``(tag, value)`` of ``items``."""
    el = sub_element(parent, tag)
    for child, value in items:
        sub_element(el, child, value)
    return el


def voc_annotation(file_name: str, img_size: int, folder: Optional[str] = None,
                   database: Optional[str] = None, segmented: bool = True) -> ET.Element:
    """A VOC ``<annotation>`` root: [folder], filename, [source/database], square size,
    [segmented 0]."""
    ann = ET.Element('annotation')
    if folder is not None:
        sub_element(ann, 'folder', folder)
    sub_element(ann, 'filename', file_name)
    if database is not None:
        sub_element(sub_element(ann, 'source'), 'database', database)
    sub_values(ann, 'size', (('width', img_size), ('height', img_size), ('depth', 3)))
    if segmented:
        sub_element(ann, 'segmented', 0)
    return ann


def voc_object(ann: ET.Element, name: str, obj_type: Optional[str] = None) -> ET.Element:
    """A VOC ``<object>`` of ``ann``: [type], name, pose, truncated 0, difficult 0."""
    o = sub_element(ann, 'object')
    if obj_type is not None:
        sub_element(o, 'type', obj_type)
    for tag, value in (('name', name), ('pose', 'Unspecified'), ('truncated', 0),
                       ('difficult', 0)):
        sub_element(o, tag, value)
    return o


def voc_box(xmin: int, ymin: int, xmax: int, ymax: int) -> Tuple[Tuple[str, int], ...]:
    """The ``(tag, value)`` items of a VOC ``<bndbox>``."""
    return tuple(zip(('xmin', 'ymin', 'xmax', 'ymax'), (xmin, ymin, xmax, ymax)))
