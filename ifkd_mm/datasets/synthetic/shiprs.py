"""ShipRSImageNet (V1 layout): VOC xml with polygons and the four class levels, and COCO jsons
per split and level."""
from __future__ import annotations

import json
import os
from typing import Dict, Optional

import cv2
import numpy as np

from .classes import SHIPRS_CLASSES, SHIPRS_HIERARCHY, SHIPRS_LEVEL_CLASSES
from .detection import check_img_size, generate_image, split_plan
from .drawing import polygon_area
from .folders import DATASET_FOLDERS, finish_folder, prepare_folder, write_lines
from .rounding import int_box, one_decimal, round_polygon
from .shapes import Template, ship_container, ship_destroyer, ship_dock, ship_tug
from .xml_annotations import (sub_element, sub_values, voc_annotation, voc_box, voc_object,
                              write_xml)

SHIPRS_TEMPLATES: Dict[str, Template] = {
    'Arleigh Burke DD': ship_destroyer, 'Container Ship': ship_container, 'Tugboat': ship_tug,
    'Dock': ship_dock}


def make_shiprs(root: str, num_train: int = 48, num_val: int = 16, img_size: int = 256,
                seed: int = 0, num_test: Optional[int] = None) -> str:
    """ShipRSImageNet (V1 layout) under ``root/ShipRSImageNet``; returns that folder.

    Writes ``VOC_Format/{JPEGImages/*.bmp, Annotations/*.xml, ImageSets/{train,val,test}.txt}``
    (image file names, e.g. ``000001.bmp``), ``COCO_Format/ShipRSImageNet_bbox_{split}_level_
    {0..3}.json`` (test jsons have no annotations, as in v1.0) and an empty ``masks/``.
    Classes: ``SHIPRS_LEVEL_CLASSES`` (ids from 1 per level). ``num_test`` defaults to ``num_val``.
    """
    check_img_size(img_size)
    num_test = num_val if num_test is None else num_test
    params = dict(num_train=num_train, num_val=num_val, img_size=img_size, seed=seed,
                  num_test=num_test)
    path = os.path.join(root, DATASET_FOLDERS['shiprs'])
    prepare_folder(path)
    voc = os.path.join(path, 'VOC_Format')
    for sub in ('Annotations', 'ImageSets', 'JPEGImages'):
        os.makedirs(os.path.join(voc, sub), exist_ok=True)
    os.makedirs(os.path.join(path, 'masks'), exist_ok=True)
    os.makedirs(os.path.join(path, 'COCO_Format'), exist_ok=True)
    counts = {}
    number = 0
    for split, n in split_plan(num_train, num_val, num_test):
        files = []
        images, annotations = [], []
        for i in range(n):
            number += 1
            img, objects, _ = generate_image('shiprs', split, i, seed, img_size,
                                             SHIPRS_CLASSES, SHIPRS_TEMPLATES, 'sea')
            file_name = f'{number:06d}.bmp'
            files.append(file_name)
            cv2.imwrite(os.path.join(voc, 'JPEGImages', file_name), img)
            ann = voc_annotation(file_name, img_size, folder='JPEGImages')
            images.append(dict(id=i + 1, file_name=file_name, width=img_size, height=img_size))
            for obj in objects:
                poly = round_polygon(obj, 1)
                xmin, ymin, xmax, ymax = int_box(poly, img_size)
                area = round(polygon_area(np.array(poly).reshape(4, 2)), 1)
                levels = [SHIPRS_LEVEL_CLASSES[k].index((*SHIPRS_HIERARCHY[obj.name],
                                                         obj.name)[k]) + 1 for k in range(4)]
                o = voc_object(ann, obj.name)
                sub_values(o, 'polygon', [(f'{axis}{j + 1}', one_decimal(poly[2 * j + k]))
                                          for j in range(4) for k, axis in enumerate('xy')])
                sub_values(o, 'bndbox', voc_box(xmin, ymin, xmax, ymax))
                sub_element(o, 'Ship_area', one_decimal(area))
                for k in range(4):
                    sub_element(o, f'level_{k}', levels[k])
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=i + 1, levels=levels,
                    bbox=[xmin, ymin, xmax - xmin, ymax - ymin], area=area,
                    segmentation=[poly], iscrowd=0))
            write_xml(ann, os.path.join(voc, 'Annotations', file_name.replace('.bmp', '.xml')))
        write_lines(os.path.join(voc, 'ImageSets', f'{split}.txt'), files)
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
    return finish_folder(path, 'shiprs', params, counts)
