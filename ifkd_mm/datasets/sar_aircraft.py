"""SAR-AIRcraft-1.0 in its VOC layout (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``)."""
import os.path as osp
from typing import List

from mmdet.datasets import XMLDataset

from ..registry import DATASETS
from .checks import class_label, checked_hbox, read_xml, xml_number, xml_text

SAR_AIRCRAFT_CLASSES = ('A220', 'A320/321', 'A330', 'ARJ21', 'Boeing737', 'Boeing787', 'other')


@DATASETS.register_module()
class SARAircraftDataset(XMLDataset):
    """SAR-AIRcraft-1.0 (7 aircraft classes, horizontal boxes); metric: COCO mAP/AP50/AP75.

    Boxes follow the VOC convention of 1-based pixel coordinates (``minus_one=True`` moves them
    to 0-based, as mmdet's VOC reader does). ``ann_file`` is ``ImageSets/Main/{split}.txt``.
    """

    METAINFO = dict(
        classes=SAR_AIRCRAFT_CLASSES,
        palette=[(220, 20, 60), (119, 11, 32), (0, 0, 142), (0, 0, 230), (106, 0, 228),
                 (0, 60, 100), (0, 80, 100)])

    def __init__(self, minus_one: bool = True, **kwargs) -> None:
        self.minus_one = minus_one
        super().__init__(**kwargs)

    def parse_data_info(self, img_info: dict) -> dict:
        xml_path = img_info['xml_path']
        root = read_xml(xml_path)
        size = root.find('size')
        if size is None:
            raise ValueError(f'{xml_path}: missing <size>; SAR-AIRcraft annotations carry '
                             'the image size')
        width = int(xml_number(size, 'width', xml_path))
        height = int(xml_number(size, 'height', xml_path))
        return dict(
            img_path=osp.join(self.sub_data_root, img_info['file_name']),
            img_id=img_info['img_id'], xml_path=xml_path, width=width, height=height,
            instances=self._parse_objects(root, width, height, xml_path))

    def _parse_objects(self, root, width: int, height: int, xml_path: str) -> List[dict]:
        instances = []
        shift = 1.0 if self.minus_one else 0.0
        for index, obj in enumerate(root.findall('object')):
            name = xml_text(obj, 'name', xml_path, index)
            label = class_label(name, self._metainfo['classes'], xml_path, index)
            difficult = obj.find('difficult')
            difficult = 0 if difficult is None or not difficult.text else int(difficult.text)
            bndbox = obj.find('bndbox')
            if bndbox is None:
                raise ValueError(f'{xml_path}, object {index}: missing <bndbox>')
            bbox = [xml_number(bndbox, tag, xml_path, index) - shift
                    for tag in ('xmin', 'ymin', 'xmax', 'ymax')]
            bbox = checked_hbox(bbox, width, height, xml_path, index)
            if bbox is None:
                continue
            too_small = (self.bbox_min_size is not None and not self.test_mode and
                         min(bbox[2] - bbox[0], bbox[3] - bbox[1]) < self.bbox_min_size)
            instances.append(dict(bbox=bbox, bbox_label=label,
                                  ignore_flag=int(bool(difficult) or too_small)))
        return instances
