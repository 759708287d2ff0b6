"""DIOR-R: JPEG images, oriented (``robndbox``) and horizontal VOC xml per image, and the
``ImageSets/Main`` lists."""
from __future__ import annotations

import os
from typing import Dict, Optional

import cv2

from .aircraft import plane_template
from .classes import DIOR_USED_CLASSES
from .detection import check_img_size, generate_image, split_plan
from .folders import DATASET_FOLDERS, finish_folder, prepare_folder, write_lines
from .rounding import int_box, round_polygon
from .shapes import Template, ship_destroyer, storage_tank, vehicle_car
from .xml_annotations import (sub_element, sub_values, voc_annotation, voc_box, voc_object,
                              write_xml)

DIOR_TEMPLATES: Dict[str, Template] = {
    'airplane': plane_template('Boeing737'), 'ship': ship_destroyer, 'storagetank': storage_tank,
    'vehicle': vehicle_car}
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
    check_img_size(img_size)
    num_test = num_val if num_test is None else num_test
    params = dict(num_train=num_train, num_val=num_val, img_size=img_size, seed=seed,
                  num_test=num_test)
    path = os.path.join(root, DATASET_FOLDERS['dior_r'])
    prepare_folder(path)
    obb_dir = os.path.join(path, 'Annotations', 'Oriented Bounding Boxes')
    hbb_dir = os.path.join(path, 'Annotations', 'Horizontal Bounding Boxes')
    main = os.path.join(path, 'ImageSets', 'Main')
    for d in (obb_dir, hbb_dir, main, os.path.join(path, 'JPEGImages-trainval'),
              os.path.join(path, 'JPEGImages-test')):
        os.makedirs(d, exist_ok=True)
    counts, number = {}, 0
    for split, n in split_plan(num_train, num_val, num_test):
        img_dir = os.path.join(path, 'JPEGImages-test' if split == 'test' else
                               'JPEGImages-trainval')
        ids, n_obj = [], 0
        for i in range(n):
            number += 1
            img, objects, _ = generate_image('dior_r', split, i, seed, img_size,
                                             DIOR_USED_CLASSES, DIOR_TEMPLATES, 'mixed')
            img_id = f'{number:05d}'
            ids.append(img_id)
            cv2.imwrite(os.path.join(img_dir, f'{img_id}.jpg'), img,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            obb, hbb = (voc_annotation(f'{img_id}.jpg', img_size, database='DIOR')
                        for _ in range(2))
            for obj in objects:
                poly = round_polygon(obj, None)
                o = voc_object(obb, obj.name, obj_type='robndbox')
                sub_values(o, 'robndbox', tuple(zip(DIOR_CORNER_TAGS, poly)))
                sub_element(o, 'angle', int(round(obj.angle)) % 180)
                sub_values(voc_object(hbb, obj.name), 'bndbox',
                           voc_box(*int_box(poly, img_size)))
            write_xml(obb, os.path.join(obb_dir, f'{img_id}.xml'))
            write_xml(hbb, os.path.join(hbb_dir, f'{img_id}.xml'))
            n_obj += len(objects)
        write_lines(os.path.join(main, f'{split}.txt'), ids)
        counts[split] = dict(images=n, objects=n_obj)
    return finish_folder(path, 'dior_r', params, counts)
