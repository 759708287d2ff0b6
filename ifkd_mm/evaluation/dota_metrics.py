"""DOTA-protocol rotated-box mAP, computed in process, and on whole images from patches.

* :class:`InProcessDOTAMetric`: mmrotate's ``DOTAMetric`` (VOC AP of rotated boxes) computed in
  this process: mmrotate's ``eval_rbbox_map`` starts a ``spawn`` process pool at every call, and
  each worker imports torch and mmrotate again (seconds and about 1 GB each).
* :class:`MergedDOTAMetric`: mmrotate's ``DOTAMetric(merge_patches=True)`` merges patch
  predictions into whole images but only writes the Task1 submission files: it returns no
  numbers, so a labelled split cut into patches (KD-RNet's 600x600 val patches) can only be scored
  patch by patch, where an object cut by two overlapping patches counts twice. This metric merges
  the same way (offsets read from the ``{image}__{size}__{x}___{y}`` patch names, class-wise
  rotated NMS) and scores the merged detections against the unsplit ``labelTxt`` files.
"""
import glob
import os.path as osp
import re
from collections import OrderedDict, defaultdict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmcv.ops import nms_rotated
from mmdet.evaluation.functional import average_precision
from mmengine.logging import MMLogger
from mmrotate.evaluation import DOTAMetric
from mmrotate.evaluation.functional.mean_ap import (get_cls_results, print_map_summary,
                                                   tpfp_default)
from mmrotate.structures.bbox import qbox2rbox

from ..datasets.rotated import read_dota_objects
from ..registry import ROTATED_METRICS

PATCH_NAME = re.compile(r'^(?P<image>.+)__(?P<size>\d+)__(?P<x>\d+)___(?P<y>\d+)$')


def patch_origin(img_id: str) -> Tuple[str, int, int]:
    """``(image, x, y)`` of a patch named ``{image}__{size}__{x}___{y}``."""
    match = PATCH_NAME.match(img_id)
    if match is None:
        raise ValueError(f'img_id {img_id!r} is not a DOTA patch name '
                         '"{image}__{size}__{x}___{y}" (tools/data/split_dota.py writes them)')
    return match['image'], int(match['x']), int(match['y'])


def merge_patch_detections(results: Sequence[dict], num_classes: int,
                           nms_iou_thr: float) -> Dict[str, List[np.ndarray]]:
    """Per image, per class ``(n, 6)`` arrays ``cx, cy, w, h, angle, score`` in image pixels.

    ``results`` hold the ``img_id``, ``bboxes`` (``(n, 5)`` rotated boxes in patch pixels),
    ``scores`` and ``labels`` of each patch. Boxes are moved by their patch's offset, then the
    boxes of one class and image go through rotated NMS at ``nms_iou_thr``, which keeps one of
    the copies that overlapping patches predict for the same object.
    """
    collected = defaultdict(list)
    for result in results:
        image, x, y = patch_origin(result['img_id'])
        boxes = np.array(result['bboxes'], dtype=np.float32).reshape(-1, 5)
        boxes[:, :2] += np.array([x, y], dtype=np.float32)
        collected[image].append((boxes, np.asarray(result['scores'], dtype=np.float32),
                                 np.asarray(result['labels'], dtype=np.int64)))
    merged = {}
    for image, parts in collected.items():
        boxes, scores, labels = (np.concatenate(column) for column in zip(*parts))
        per_class = []
        for label in range(num_classes):
            chosen = labels == label
            if not chosen.any():
                per_class.append(np.zeros((0, 6), dtype=np.float32))
                continue
            dets, _ = nms_rotated(torch.from_numpy(boxes[chosen]),
                                  torch.from_numpy(scores[chosen]), nms_iou_thr)
            per_class.append(dets.numpy())
        merged[image] = per_class
    return merged


def dota_ground_truth(txt_file: str, classes: tuple, diff_thr: int) -> dict:
    """The objects of a ``labelTxt`` file as rotated boxes, in ``eval_rbbox_map``'s layout;
    objects whose difficulty exceeds ``diff_thr`` go to ``bboxes_ignore``."""
    objects = read_dota_objects(txt_file, classes)
    polygons = torch.tensor([polygon for polygon, _, _ in objects],
                            dtype=torch.float32).reshape(-1, 8)
    rboxes = qbox2rbox(polygons).numpy() if len(objects) else np.zeros((0, 5), np.float32)
    labels = np.array([label for _, label, _ in objects], dtype=np.int64)
    ignored = np.array([difficulty > diff_thr for _, _, difficulty in objects], dtype=bool)
    return dict(bboxes=rboxes[~ignored], labels=labels[~ignored],
                bboxes_ignore=rboxes[ignored], labels_ignore=labels[ignored])


def rotated_voc_ap(det_results: List[List[np.ndarray]], annotations: List[dict],
                   iou_thr: float, use_07_metric: bool, classes: tuple,
                   logger: Optional[MMLogger] = None) -> Tuple[float, List[dict]]:
    """mmrotate's ``eval_rbbox_map`` (without scale ranges) computed in this process.

    The matching (``tpfp_default``), the AP (VOC07 11 points or area) and the mean over the
    classes that have ground truth are mmrotate's and mmdet's; ``eval_rbbox_map`` itself starts a
    ``spawn`` process pool at every call, and each of its workers imports torch and mmrotate
    again (seconds and about 1 GB each).
    """
    eps = np.finfo(np.float32).eps
    per_class = []
    for label in range(len(classes)):
        dets, gts, gts_ignore = get_cls_results(det_results, annotations, label, 'rbox')
        tp, fp = (np.hstack(column)[0] for column in zip(*(
            tpfp_default(det, gt, ignore, iou_thr, 'rbox')
            for det, gt, ignore in zip(dets, gts, gts_ignore))))
        order = np.argsort(-np.vstack(dets)[:, -1])
        tp, fp = np.cumsum(tp[order]), np.cumsum(fp[order])
        num_gts = sum(len(gt) for gt in gts)
        # float64 recalls, as mmrotate's: a recall of 0.6 then misses the 11-point mark 6 * 0.1
        recalls = tp / np.maximum(np.float64(num_gts), eps)
        precisions = tp / np.maximum(tp + fp, eps)
        ap = average_precision(recalls, precisions, '11points' if use_07_metric else 'area')
        per_class.append(dict(num_gts=num_gts, num_dets=len(order), recall=recalls,
                              precision=precisions, ap=ap))
    aps = [result['ap'] for result in per_class if result['num_gts'] > 0]
    mean_ap = float(np.mean(aps)) if aps else 0.0
    print_map_summary(mean_ap, per_class, classes, logger=logger)
    return mean_ap, per_class


@ROTATED_METRICS.register_module()
class InProcessDOTAMetric(DOTAMetric):
    """mmrotate's ``DOTAMetric`` with its mAP computed in this process (:func:`rotated_voc_ap`).

    Same arguments, keys and numbers as ``DOTAMetric``, without the ``spawn`` process pool that
    ``eval_rbbox_map`` starts at every evaluation; ``format_only`` and ``merge_patches`` (which
    only write files) are ``DOTAMetric``'s own. Scale ranges are not supported.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.scale_ranges is not None:
            raise ValueError(f'{type(self).__name__} does not support scale_ranges; '
                             'use DOTAMetric')

    def voc_map(self, det_results: List[List[np.ndarray]],
                annotations: List[dict]) -> Dict[str, float]:
        """``AP50``, ... of each of ``iou_thrs`` and their mean ``mAP``, as ``DOTAMetric``."""
        classes = tuple(self.dataset_meta['classes'])
        logger = MMLogger.get_current_instance()
        eval_results = OrderedDict()
        mean_aps = []
        for iou_thr in self.iou_thrs:
            logger.info(f'\n{"-" * 15}iou_thr: {iou_thr}{"-" * 15}')
            mean_ap, _ = rotated_voc_ap(det_results, annotations, iou_thr, self.use_07_metric,
                                        classes, logger)
            mean_aps.append(mean_ap)
            eval_results[f'AP{int(iou_thr * 100):02d}'] = round(mean_ap, 3)
        eval_results['mAP'] = sum(mean_aps) / len(mean_aps)
        eval_results.move_to_end('mAP', last=False)
        return eval_results

    def compute_metrics(self, results: list) -> Dict[str, float]:
        if self.format_only or self.merge_patches:
            return super().compute_metrics(results)
        gts, preds = zip(*results)
        if self.outfile_prefix is not None:
            self.results2json(preds, self.outfile_prefix)
        return self.voc_map([pred['pred_bbox_scores'] for pred in preds], list(gts))


@ROTATED_METRICS.register_module()
class MergedDOTAMetric(InProcessDOTAMetric):
    """``DOTAMetric``'s mAP on whole images: patch predictions merged, scored against ``ann_dir``.

    Args:
        ann_dir: the unsplit ``labelTxt`` folder of the images the patches were cut from.
        iou_thrs: IoU threshold(s) of a match; ``AP50``, ... and their mean ``mAP`` are reported.
        iou_thr: IoU threshold of the rotated NMS that merges the patches (mmrotate's 0.1).
        diff_thr: objects with a larger ``difficult`` value are ignored (neither missed nor
            matched); 0, as DOTA's own evaluation, ignores ``difficult=1`` objects.
        eval_mode: ``'11points'`` (VOC07) or ``'area'``.
        collect_device, prefix: mmengine's (the prefix is ``dota`` by default).
    """

    def __init__(self, ann_dir: str, iou_thrs: Union[float, List[float]] = 0.5,
                 iou_thr: float = 0.1, diff_thr: int = 0, eval_mode: str = '11points',
                 collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(iou_thrs=iou_thrs, merge_patches=True, iou_thr=iou_thr,
                         eval_mode=eval_mode, collect_device=collect_device, prefix=prefix)
        self.ann_dir = ann_dir
        self.diff_thr = diff_thr

    def process(self, data_batch: Sequence[dict], data_samples: Sequence[dict]) -> None:
        """Keep each patch's name and predictions (the ground truth comes from ``ann_dir``)."""
        for data_sample in data_samples:
            pred = data_sample['pred_instances']
            self.results.append(dict(img_id=data_sample['img_id'],
                                     bboxes=pred['bboxes'].cpu().numpy(),
                                     scores=pred['scores'].cpu().numpy(),
                                     labels=pred['labels'].cpu().numpy()))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        if not results:
            raise ValueError('MergedDOTAMetric: no patch was predicted (empty dataloader?)')
        classes = tuple(self.dataset_meta['classes'])
        merged = merge_patch_detections(results, len(classes), self.iou_thr)
        images = sorted(merged)
        annotations = []
        for image in images:
            txt_file = osp.join(self.ann_dir, f'{image}.txt')
            if not osp.isfile(txt_file):
                raise FileNotFoundError(f'patches of image {image!r} were predicted but its '
                                        f'annotation {txt_file} does not exist (ann_dir)')
            annotations.append(dota_ground_truth(txt_file, classes, self.diff_thr))
        unseen = {osp.splitext(osp.basename(path))[0]
                  for path in glob.glob(osp.join(self.ann_dir, '*.txt'))} - set(merged)
        MMLogger.get_current_instance().info(
            f'{len(results)} patches merged into {len(images)} images of {self.ann_dir}'
            + (f'; {len(unseen)} annotated images had no patch and are not scored'
               if unseen else ''))
        return self.voc_map([merged[image] for image in images], annotations)
