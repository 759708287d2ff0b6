"""HRSC2016 in the layout mmrotate 1.x ``HRSCDataset`` reads: BMP images and ``HRSC_Image`` xml
with rotated boxes and bow points."""
from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from typing import Dict, Optional

import cv2

from .classes import HRSC_USED_CLASSES
from .detection import check_img_size, generate_image, split_plan
from .folders import DATASET_FOLDERS, finish_folder, prepare_folder, write_lines
from .rounding import int_box
from .shapes import Template, ship_carrier, ship_destroyer, ship_submarine, ship_tanker
from .xml_annotations import sub_element, write_xml

HRSC_TEMPLATES: Dict[str, Template] = {
    'aircraft carrier': ship_carrier, 'warcraft': ship_destroyer, 'merchant ship': ship_tanker,
    'submarine': ship_submarine}


def make_hrsc2016(root: str, num_train: int = 48, num_val: int = 16, img_size: int = 256,
                  seed: int = 0, num_test: Optional[int] = None) -> str:
    """HRSC2016 in the layout read by mmrotate 1.x ``HRSCDataset``, under ``root/HRSC2016``.

    ``FullDataSet/AllImages/100000001.bmp``, ``FullDataSet/Annotations/100000001.xml`` (root
    ``HRSC_Image`` with ``Img_SizeWidth`` / ``Img_SizeHeight``; objects under
    ``HRSC_Objects/HRSC_Object`` with ``Class_ID``, ``difficult``, ``box_xmin..box_ymax``,
    ``mbox_cx/cy/w/h`` (w along the ship), ``mbox_ang`` (radians, in [-pi/2, pi/2)),
    ``header_x/header_y`` (the bow)), ``ImageSets/{train,val,trainval,test}.txt`` (ids).
    Config: ``data_root=<this folder>``, ``ann_file='ImageSets/trainval.txt'``,
    ``data_prefix=dict(sub_data_root='FullDataSet/')``. Classes (``HRSC_USED_CLASSES``):
    aircraft carrier (100000002), warcraft (100000003), merchant ship (100000004) and submarine
    (100000027), all valid with ``classwise=True``; with ``classwise=False`` all are 'ship'.
    Images are square because mmrotate 1.x reads the height from ``Img_SizeWidth``.
    ``num_test`` defaults to ``num_val``.
    """
    check_img_size(img_size)
    num_test = num_val if num_test is None else num_test
    params = dict(num_train=num_train, num_val=num_val, img_size=img_size, seed=seed,
                  num_test=num_test)
    path = os.path.join(root, DATASET_FOLDERS['hrsc2016'])
    prepare_folder(path)
    img_dir = os.path.join(path, 'FullDataSet', 'AllImages')
    ann_dir = os.path.join(path, 'FullDataSet', 'Annotations')
    sets = os.path.join(path, 'ImageSets')
    for d in (img_dir, ann_dir, sets):
        os.makedirs(d, exist_ok=True)
    classes = tuple(HRSC_USED_CLASSES)
    counts, lists, number = {}, {}, 0
    for split, n in split_plan(num_train, num_val, num_test):
        ids, n_obj = [], 0
        for i in range(n):
            number += 1
            img, objects, _ = generate_image('hrsc2016', split, i, seed, img_size, classes,
                                             HRSC_TEMPLATES, 'sea')
            img_id = f'1{number:08d}'
            ids.append(img_id)
            cv2.imwrite(os.path.join(img_dir, f'{img_id}.bmp'), img)
            ann = ET.Element('HRSC_Image')
            for tag, v in (('Img_ID', img_id), ('Place_ID', '100000001'),
                           ('Source_ID', '100000001'), ('Img_NO', img_id),
                           ('Img_FileName', img_id), ('Img_FileFmt', 'bmp'),
                           ('Img_Date', '2016-01-01'), ('Img_CusType', 'sealand'),
                           ('Img_Des', ''), ('Img_Location', '0,0'),
                           ('Img_SizeWidth', img_size), ('Img_SizeHeight', img_size),
                           ('Img_SizeDepth', 3), ('Img_Resolution', '1.0'),
                           ('Img_Resolution_Layer', '18'), ('Img_Scale', '100'),
                           ('Img_SclPxlNum', ''), ('segmented', 0),
                           ('Img_Havemask', 0), ('Img_MaskFileName', ''),
                           ('Img_MaskFmt', ''), ('Img_MaskType', ''),
                           ('Img_SegFileName', ''), ('Img_SegFmt', ''),
                           ('Img_Rotation', '000d'), ('Annotated', 1)):
                sub_element(ann, tag, v)
            objs_el = sub_element(ann, 'HRSC_Objects')
            for j, obj in enumerate(objects):
                xmin, ymin, xmax, ymax = int_box(obj.polygon.reshape(-1), img_size)
                ang = math.radians(obj.heading)
                ang = (ang + math.pi / 2) % math.pi - math.pi / 2
                o = sub_element(objs_el, 'HRSC_Object')
                for tag, v in (('Object_ID', f'{number * 100 + j}'),
                               ('Class_ID', HRSC_USED_CLASSES[obj.name]),
                               ('Object_NO', j + 1), ('truncated', 0), ('difficult', 0),
                               ('box_xmin', xmin), ('box_ymin', ymin), ('box_xmax', xmax),
                               ('box_ymax', ymax), ('mbox_cx', f'{obj.cx:.4f}'),
                               ('mbox_cy', f'{obj.cy:.4f}'), ('mbox_w', f'{obj.w:.4f}'),
                               ('mbox_h', f'{obj.h:.4f}'), ('mbox_ang', f'{ang:.6f}'),
                               ('header_x', int(round(obj.head[0]))),
                               ('header_y', int(round(obj.head[1]))), ('seg_color', '')):
                    sub_element(o, tag, v)
            write_xml(ann, os.path.join(ann_dir, f'{img_id}.xml'))
            n_obj += len(objects)
        lists[split] = ids
        counts[split] = dict(images=n, objects=n_obj)
    for split in ('train', 'val', 'test'):
        write_lines(os.path.join(sets, f'{split}.txt'), lists[split])
    write_lines(os.path.join(sets, 'trainval.txt'), lists['train'] + lists['val'])
    return finish_folder(path, 'hrsc2016', params, counts)
