"""DOTA-v1.0: PNG images and ``labelTxt`` files (polygon, class, difficult per line)."""
from __future__ import annotations

import os
from typing import Dict

import cv2

from .aircraft import plane_template
from .classes import DOTA_USED_CLASSES
from .detection import check_img_size, generate_image, split_plan
from .folders import DATASET_FOLDERS, finish_folder, prepare_folder, write_lines
from .rounding import one_decimal, round_polygon
from .shapes import Template, harbor_pier, ship_tanker, vehicle_truck

DOTA_TEMPLATES: Dict[str, Template] = {
    'plane': plane_template('A330'), 'large-vehicle': vehicle_truck, 'ship': ship_tanker,
    'harbor': harbor_pier}


def make_dota(root: str, num_train: int = 48, num_val: int = 16, img_size: int = 256,
              seed: int = 0) -> str:
    """DOTA-v1.0 under ``root/DOTA``: ``{train,val}/{images/P0000.png, labelTxt/P0000.txt}``.

    labelTxt: ``imagesource:GoogleEarth``, ``gsd:0.5``, then ``x1 y1 ... x4 y4 class difficult``
    (1 decimal; about 5% of the objects are difficult=1). Classes: ``DOTA_USED_CLASSES``.
    Note: mmrotate's own ``DOTADataset`` does not skip the two header lines (it expects
    headerless, split patches); ``ifkd_mm``'s ``CheckedDOTADataset`` does.
    """
    check_img_size(img_size)
    params = dict(num_train=num_train, num_val=num_val, img_size=img_size, seed=seed)
    path = os.path.join(root, DATASET_FOLDERS['dota'])
    prepare_folder(path)
    counts, number = {}, 0
    for split, n in split_plan(num_train, num_val):
        img_dir = os.path.join(path, split, 'images')
        lbl_dir = os.path.join(path, split, 'labelTxt')
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(lbl_dir, exist_ok=True)
        n_obj = 0
        for i in range(n):
            img, objects, rng = generate_image('dota', split, i, seed, img_size,
                                               DOTA_USED_CLASSES, DOTA_TEMPLATES, 'mixed')
            name = f'P{number:04d}'
            number += 1
            cv2.imwrite(os.path.join(img_dir, f'{name}.png'), img)
            lines = ['imagesource:GoogleEarth', 'gsd:0.5']
            for obj in objects:
                difficult = int(rng.random() < 0.05)
                coords = ' '.join(one_decimal(v) for v in round_polygon(obj, 1))
                lines.append(f'{coords} {obj.name} {difficult}')
            write_lines(os.path.join(lbl_dir, f'{name}.txt'), lines)
            n_obj += len(objects)
        counts[split] = dict(images=n, objects=n_obj)
    return finish_folder(path, 'dota', params, counts)
