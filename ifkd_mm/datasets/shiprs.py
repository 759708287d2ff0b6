"""ShipRSImageNet in its COCO format (``COCO_Format/ShipRSImageNet_bbox_{split}_level_{0..3}.json``).

The class names of a level are read from the json's ``categories`` (ids from 1), not guessed. The
horizontal reader gives ``bbox`` ``[x1, y1, x2, y2]``; the rotated reader gives the ship's 4-point
``segmentation`` polygon, which mmrotate's ``ConvertBoxType`` turns into a rotated box.
"""
import json
import os.path as osp
from typing import List, Optional

from mmdet.datasets import CocoDataset
from mmengine.fileio import get_local_path

from ..registry import DATASETS, ROTATED_DATASETS
from .checks import AnnotationError, checked_hbox, checked_polygon, to_number


def shiprs_classes(ann_file: str) -> tuple:
    """Class names of a ShipRSImageNet json, ordered by category id."""
    with open(ann_file) as f:
        categories = json.load(f).get('categories')
    if not categories:
        raise AnnotationError(f'{ann_file}: no "categories" list')
    return tuple(cat['name'] for cat in sorted(categories, key=lambda cat: cat['id']))


@DATASETS.register_module()
class ShipRSImageNetDataset(CocoDataset):
    """ShipRSImageNet with horizontal boxes, any level; metric: COCO bbox mAP/AP50/AP75."""

    METAINFO = dict(classes=None, palette=None)
    box_source = 'bbox'

    def load_data_list(self) -> List[dict]:
        with get_local_path(self.ann_file, backend_args=self.backend_args) as local_path:
            json_classes = shiprs_classes(local_path)
        wanted = self._metainfo.get('classes')
        if wanted is None:
            self._metainfo['classes'] = json_classes
        else:
            unknown = [name for name in wanted if name not in json_classes]
            if unknown:
                raise AnnotationError(f'{self.ann_file}: classes {unknown} of the config are not '
                                      f'among the file\'s categories {json_classes}')
        if not self._metainfo.get('palette'):
            self._metainfo['palette'] = [
                tuple(int(37 * (i + 1) * k) % 256 for k in (3, 5, 7))
                for i in range(len(self._metainfo['classes']))]
        return super().load_data_list()

    def parse_data_info(self, raw_data_info: dict) -> dict:
        img_info = raw_data_info['raw_img_info']
        width, height = img_info['width'], img_info['height']
        source = f"{self.ann_file} (image {img_info['file_name']!r})"
        instances = []
        for ann in raw_data_info['raw_ann_info']:
            obj = f"annotation id {ann['id']}"
            if ann['category_id'] not in self.cat2label:
                continue
            instance = self._parse_box(ann, width, height, source, obj)
            if instance is None:
                continue
            instance['ignore_flag'] = int(bool(ann.get('iscrowd', 0) or ann.get('ignore', 0)))
            instance['bbox_label'] = self.cat2label[ann['category_id']]
            instances.append(instance)
        return dict(
            img_path=osp.join(self.data_prefix['img'], img_info['file_name']),
            img_id=img_info['img_id'], seg_map_path=None, height=height, width=width,
            instances=instances)

    def _parse_box(self, ann: dict, width: int, height: int, source: str,
                   obj: str) -> Optional[dict]:
        bbox = ann.get('bbox')
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            raise AnnotationError(f'{source}, {obj}: "bbox" must be '
                                  f'[xmin, ymin, w, h], got {bbox!r}')
        x1, y1, w, h = (to_number(v, 'bbox', source, obj) for v in bbox)
        box = checked_hbox([x1, y1, x1 + w, y1 + h], width, height, source, obj)
        return None if box is None else dict(bbox=box)


@ROTATED_DATASETS.register_module()
class ShipRSImageNetRotatedDataset(ShipRSImageNetDataset):
    """ShipRSImageNet with rotated boxes from the ships' 4-point ``segmentation`` polygons."""

    def _parse_box(self, ann: dict, width: int, height: int, source: str,
                   obj: str) -> Optional[dict]:
        segmentation = ann.get('segmentation')
        if not segmentation or not isinstance(segmentation[0], (list, tuple)):
            raise AnnotationError(f'{source}, {obj}: "segmentation" must hold '
                                  f'one polygon [[x1, y1, ..., x4, y4]], got {segmentation!r}')
        polygon = [to_number(v, 'segmentation', source, obj) for v in segmentation[0]]
        polygon = checked_polygon(polygon, width, height, source, obj)
        return None if polygon is None else dict(bbox=polygon)
