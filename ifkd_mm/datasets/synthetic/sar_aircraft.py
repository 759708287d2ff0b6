"""SAR-AIRcraft-1.0 (VOC layout): SAR-like images, horizontal boxes hugging the aircraft."""
from __future__ import annotations

import os
from typing import Sequence

import cv2

from .aircraft import plane_template
from .classes import SAR_AIRCRAFT_CLASSES, SAR_AIRCRAFT_USED_CLASSES
from .detection import check_img_size, generate_image, split_plan
from .folders import DATASET_FOLDERS, finish_folder, prepare_folder, write_lines
from .rounding import int_box
from .xml_annotations import sub_values, voc_annotation, voc_box, voc_object, write_xml


def make_sar_aircraft(root: str, num_train: int = 48, num_val: int = 16, img_size: int = 256,
                      seed: int = 0,
                      classes: Sequence[str] = SAR_AIRCRAFT_USED_CLASSES) -> str:
    """SAR-AIRcraft-1.0 (VOC layout) under ``root/SAR-AIRcraft-1.0``; returns that folder.

    ``JPEGImages/0000001.jpg``, ``Annotations/0000001.xml`` (horizontal boxes that hug the
    aircraft silhouette, in 1-based VOC pixel coordinates: ``xmin = floor(x) + 1``,
    ``xmax = ceil(x) + 1``),
    ``ImageSets/Main/{train,val,test,trainval}.txt`` (7-digit ids); test lists the val images.
    """
    check_img_size(img_size)
    unknown = [c for c in classes if c not in SAR_AIRCRAFT_CLASSES]
    if unknown:
        raise ValueError(f'unknown SAR-AIRcraft classes {unknown}')
    params = dict(num_train=num_train, num_val=num_val, img_size=img_size, seed=seed,
                  classes=list(classes))
    path = os.path.join(root, DATASET_FOLDERS['sar_aircraft'])
    prepare_folder(path)
    for sub in ('Annotations', 'JPEGImages', os.path.join('ImageSets', 'Main')):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    templates = {c: plane_template(c) for c in classes}
    counts, lists, number = {}, {}, 0
    for split, n in split_plan(num_train, num_val):
        ids, n_obj = [], 0
        for i in range(n):
            number += 1
            img, objects, _ = generate_image('sar_aircraft', split, i, seed, img_size,
                                             classes, templates, 'sar')
            img_id = f'{number:07d}'
            ids.append(img_id)
            cv2.imwrite(os.path.join(path, 'JPEGImages', f'{img_id}.jpg'), img,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            ann = voc_annotation(f'{img_id}.jpg', img_size, folder='JPEGImages',
                                 segmented=False)
            for obj in objects:
                x0, y0, x1, y1 = obj.silhouette_box(img_size)
                xmin, ymin, xmax, ymax = int_box([x0, y0, x1, y1], img_size)
                sub_values(voc_object(ann, obj.name), 'bndbox',
                           voc_box(xmin + 1, ymin + 1, xmax + 1, ymax + 1))
            n_obj += len(objects)
            write_xml(ann, os.path.join(path, 'Annotations', f'{img_id}.xml'))
        lists[split] = ids
        counts[split] = dict(images=n, objects=n_obj)
    main = os.path.join(path, 'ImageSets', 'Main')
    write_lines(os.path.join(main, 'train.txt'), lists['train'])
    write_lines(os.path.join(main, 'val.txt'), lists['val'])
    write_lines(os.path.join(main, 'test.txt'), lists['val'])
    write_lines(os.path.join(main, 'trainval.txt'), lists['train'] + lists['val'])
    counts['test'] = dict(counts['val'], same_as='val')
    return finish_folder(path, 'sar_aircraft', params, counts)
