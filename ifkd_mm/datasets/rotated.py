"""Readers of the rotated-box datasets, on top of mmrotate's, with checked annotations.

* :class:`CheckedDOTADataset`: mmrotate's DOTA-v1.0 reader, but a malformed ``labelTxt`` line
  raises an error that names the file and line instead of a bare ``KeyError``/``IndexError``.
* :class:`DIORRDataset`: mmrotate's DIOR-R reader with its two bugs fixed: ``bbox_min_size`` is
  compared with the box's sides (mmrotate compares it with the image size), and an annotation
  without ``<size>`` takes ``height, width`` from the image in that order (mmrotate swaps them).
"""
import glob
import math
import os.path as osp
from typing import List, Tuple

import mmcv
import numpy as np
from mmengine.fileio import get
from mmrotate.datasets import DIORDataset, DOTADataset

from ..registry import ROTATED_DATASETS
from .checks import (AnnotationError, checked_polygon, class_label, read_xml, to_number,
                     xml_number, xml_text)

DOTA_HEADERS = ('imagesource:', 'gsd:')
DIOR_CORNERS = ('x_left_top', 'y_left_top', 'x_right_top', 'y_right_top', 'x_right_bottom',
                'y_right_bottom', 'x_left_bottom', 'y_left_bottom')


def parse_dota_line(line: str, classes: tuple, source: str, line_no: int) -> tuple:
    """``(polygon, label, difficulty)`` of one ``x1 y1 ... x4 y4 class difficult`` line."""
    fields = line.split()
    if len(fields) not in (9, 10):
        raise AnnotationError(f'{source}, line {line_no}: expected "x1 y1 x2 y2 x3 y3 x4 y4 '
                              f'class difficult", got {line.strip()!r}')
    polygon = [to_number(v, 'x/y', source, f'line {line_no}') for v in fields[:8]]
    label = class_label(fields[8], classes, source, f'line {line_no}')
    difficulty = int(to_number(fields[9], 'difficult', source, f'line {line_no}')) \
        if len(fields) == 10 else 0
    return polygon, label, difficulty


def read_dota_objects(txt_file: str, classes: tuple,
                      keep_degenerate: bool = False) -> List[Tuple[List[float], int, int]]:
    """``(polygon, label, difficulty)`` of the objects of one DOTA ``labelTxt`` file.

    The ``imagesource:``/``gsd:`` header lines and empty lines are skipped, a polygon without area
    is left out with a warning (kept with ``keep_degenerate``: DOTA's devkit scores it), a
    malformed line raises :class:`AnnotationError` naming the file and line.
    """
    objects = []
    with open(txt_file) as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip() or line.startswith(DOTA_HEADERS):
                continue
            polygon, label, difficulty = parse_dota_line(line, classes, txt_file, line_no)
            if not keep_degenerate:
                polygon = checked_polygon(polygon, math.inf, math.inf, txt_file,
                                          f'line {line_no}')
            if polygon is not None:
                objects.append((polygon, label, difficulty))
    return objects


@ROTATED_DATASETS.register_module()
class CheckedDOTADataset(DOTADataset):
    """DOTA-v1.0 (``labelTxt/*.txt`` beside ``images/``), malformed lines named; VOC07 AP50."""

    def load_data_list(self) -> List[dict]:
        if self.ann_file == '':
            return super().load_data_list()
        txt_files = sorted(glob.glob(osp.join(self.ann_file, '*.txt')))
        if not txt_files:
            raise FileNotFoundError(f'no DOTA labelTxt files (*.txt) in {self.ann_file}')
        classes = tuple(self.metainfo['classes'])
        data_list = []
        for txt_file in txt_files:
            img_id = osp.splitext(osp.basename(txt_file))[0]
            file_name = f'{img_id}.{self.img_suffix}'
            instances = [dict(bbox=polygon, bbox_label=label,
                              ignore_flag=int(difficulty > self.diff_thr))
                         for polygon, label, difficulty in read_dota_objects(txt_file, classes)]
            data_list.append(dict(img_id=img_id, file_name=file_name, instances=instances,
                                  img_path=osp.join(self.data_prefix['img_path'], file_name)))
        return data_list


def quad_sides(polygon: List[float]) -> tuple:
    """Lengths of the first two sides of a quadrilateral ``[x1, y1, ..., x4, y4]``."""
    points = np.asarray(polygon, dtype=np.float64).reshape(4, 2)
    return (float(np.linalg.norm(points[1] - points[0])),
            float(np.linalg.norm(points[2] - points[1])))


@ROTATED_DATASETS.register_module()
class DIORRDataset(DIORDataset):
    """DIOR-R (``Annotations/Oriented Bounding Boxes/*.xml``); DOTA protocol AP50/AP75."""

    def parse_data_info(self, img_info: dict) -> dict:
        xml_path = img_info['xml_path']
        img_path = osp.join(self.data_prefix['img_path'], img_info['file_name'])
        root = read_xml(xml_path)
        size = root.find('size')
        if size is not None:
            width = int(xml_number(size, 'width', xml_path))
            height = int(xml_number(size, 'height', xml_path))
        else:
            image = mmcv.imfrombytes(get(img_path, backend_args=self.backend_args))
            if image is None:
                raise ValueError(f'{img_path}: cannot decode the image of {xml_path}')
            height, width = image.shape[:2]
        instances = []
        for index, obj in enumerate(root.findall('object')):
            name = xml_text(obj, 'name', xml_path, index).lower()
            label = class_label(name, self.metainfo['classes'], xml_path, index)
            box_tag = 'robndbox' if self.ann_type == 'obb' else 'bndbox'
            box = obj.find(box_tag)
            if box is None:
                raise AnnotationError(f'{xml_path}, object {index}: missing <{box_tag}>')
            if self.ann_type == 'obb':
                polygon = [xml_number(box, tag, xml_path, index) for tag in DIOR_CORNERS]
            else:
                x1, y1, x2, y2 = (xml_number(box, tag, xml_path, index)
                                  for tag in ('xmin', 'ymin', 'xmax', 'ymax'))
                polygon = [x1, y1, x2, y1, x2, y2, x1, y2]
            polygon = checked_polygon(polygon, width, height, xml_path, index)
            if polygon is None:
                continue
            too_small = (self.bbox_min_size is not None and not self.test_mode and
                         min(quad_sides(polygon)) < self.bbox_min_size)
            instances.append(dict(bbox=np.array(polygon, dtype=np.float32), bbox_label=label,
                                  ignore_flag=int(too_small)))
        return dict(img_path=img_path, img_id=img_info['img_id'], xml_path=xml_path,
                    height=height, width=width, instances=instances)
