"""MutDet's pre-training data: images with pseudo-label files as ground truth.

The boxes of a pseudo-label file are loaded as ``gt_bboxes`` with their own index as
``gt_bboxes_labels``, so that every transform that flips, resizes, crops or drops boxes carries
the index along with the box (mmdet's transforms keep ``gt_bboxes_labels`` aligned with
``gt_bboxes``). :class:`ResolveMutDetPseudoLabels`, after the geometric transforms, turns each index
into the box's cluster id and embedding, and :class:`PackMutDetInputs` packs the embeddings as
``gt_instances.embeddings`` beside the boxes and labels.
"""
import os
import os.path as osp
from typing import List, Optional

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.datasets import BaseDetDataset
from mmdet.datasets.transforms import PackDetInputs
from mmrotate.structures.bbox import RotatedBoxes

from ...registry import ROTATED_DATASETS, ROTATED_TRANSFORMS
from .storage import read_fields

STASH = ('pseudo_classes', 'pseudo_embeddings')


@ROTATED_DATASETS.register_module()
class MutDetPseudoLabelDataset(BaseDetDataset):
    """Images (``data_prefix['img_path']``) with the ``labels/`` files that
    ``tools/mutdet/make_pseudo_labels.py`` writes (``ann_file``: that folder).

    Each file names its image; the classes are the ``num_clusters`` pseudo classes. Empty images
    are dropped when ``filter_cfg=dict(filter_empty_gt=True)``.
    """

    def __init__(self, *args, num_clusters: int = 256, metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        metainfo = dict(metainfo or {})
        metainfo.setdefault('classes', tuple(f'cluster_{i}' for i in range(num_clusters)))
        super().__init__(*args, metainfo=metainfo, **kwargs)

    def load_data_list(self) -> List[dict]:
        label_dir, image_dir = self.ann_file, self.data_prefix.get('img_path', '')
        if not osp.isdir(label_dir):
            raise FileNotFoundError(f'pseudo-label folder {label_dir} does not exist')
        files = sorted(name for name in os.listdir(label_dir) if name.endswith('.npz'))
        if not files:
            raise ValueError(f'no pseudo-label files (.npz) in {label_dir}')
        data_list = []
        for file in files:
            path = osp.join(label_dir, file)
            fields = read_fields(path, ('image_name', 'image_shape', 'labels'))
            image_path = osp.join(image_dir, str(fields['image_name']))
            if not osp.exists(image_path):
                raise FileNotFoundError(f'{path} labels image {fields["image_name"]}, which is '
                                        f'not in {image_dir}')
            height, width = (int(v) for v in fields['image_shape'])
            data_list.append(dict(img_path=image_path, img_id=osp.splitext(file)[0],
                                  height=height, width=width, pseudo_label_path=path,
                                  num_boxes=len(fields['labels']), instances=[]))
        return data_list

    def filter_data(self) -> List[dict]:
        if self.test_mode or not (self.filter_cfg or {}).get('filter_empty_gt', False):
            return self.data_list
        return [info for info in self.data_list if info['num_boxes'] > 0]


@ROTATED_TRANSFORMS.register_module()
class LoadMutDetPseudoLabels(BaseTransform):
    """Load a pseudo-label file (after ``LoadImageFromFile``): ``gt_bboxes`` (le90
    ``RotatedBoxes``), ``gt_bboxes_labels`` = the box's index in the file, no ignored boxes; the
    cluster ids and embeddings wait in the results for :class:`ResolveMutDetPseudoLabels`."""

    def transform(self, results: dict) -> dict:
        path = results['pseudo_label_path']
        fields = read_fields(path, ('boxes', 'labels', 'embeddings', 'image_shape'))
        expected = tuple(int(v) for v in fields['image_shape'])
        if tuple(results['ori_shape'][:2]) != expected:
            raise ValueError(f'{path} was made for an image of {expected[0]}x{expected[1]} px, '
                             f'but {results["img_path"]} is {results["ori_shape"][0]}x'
                             f'{results["ori_shape"][1]}')
        boxes, labels, embeddings = fields['boxes'], fields['labels'], fields['embeddings']
        if not len(boxes) == len(labels) == len(embeddings):
            raise ValueError(f'{path}: {len(boxes)} boxes, {len(labels)} labels and '
                             f'{len(embeddings)} embeddings do not match')
        results['gt_bboxes'] = RotatedBoxes(boxes.reshape(-1, 5).astype(np.float32))
        results['gt_bboxes_labels'] = np.arange(len(boxes), dtype=np.int64)
        results['gt_ignore_flags'] = np.zeros(len(boxes), dtype=bool)
        results['pseudo_classes'] = labels.astype(np.int64)
        results['pseudo_embeddings'] = embeddings.astype(np.float32)
        return results


@ROTATED_TRANSFORMS.register_module()
class ResolveMutDetPseudoLabels(BaseTransform):
    """After the geometric transforms: each remaining box's index becomes its cluster id
    (``gt_bboxes_labels``) and its embedding (``gt_embeddings``)."""

    def transform(self, results: dict) -> dict:
        index = results['gt_bboxes_labels']
        results['gt_bboxes_labels'] = results['pseudo_classes'][index]
        results['gt_embeddings'] = results['pseudo_embeddings'][index]
        for key in STASH:
            results.pop(key)
        return results


@ROTATED_TRANSFORMS.register_module()
class PackMutDetInputs(PackDetInputs):
    """mmdet's ``PackDetInputs`` that also packs ``gt_embeddings`` as ``gt_instances.embeddings``
    (and those of ignored boxes as ``ignored_instances.embeddings``)."""

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        if 'gt_embeddings' in results:
            embeddings = torch.from_numpy(results['gt_embeddings'])
            ignored = torch.from_numpy(results.get('gt_ignore_flags',
                                                   np.zeros(len(embeddings), dtype=bool)))
            sample = packed['data_samples']
            sample.gt_instances.embeddings = embeddings[~ignored]
            sample.ignored_instances.embeddings = embeddings[ignored]
        return packed
