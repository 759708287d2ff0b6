"""DOTA-protocol rotated-box mAP, computed in process, and on whole images from patches.

* :class:`InProcessDOTAMetric`: mmrotate's ``DOTAMetric`` with its AP computed in this process
  (mmrotate's ``eval_rbbox_map`` starts a ``spawn`` process pool at every call, and each worker
  imports torch and mmrotate again: seconds and about 1 GB each).
* :class:`MergedDOTAMetric`: mmrotate's ``DOTAMetric(merge_patches=True)`` merges patch
  predictions into whole images but only writes the Task1 submission files: it returns no
  numbers, so a labelled split cut into patches (KD-RNet's 600x600 val patches) can only be scored
  patch by patch, where an object cut by two overlapping patches counts twice. This metric merges
  the same way (offsets read from the ``{image}__{size}__{x}___{y}`` patch names, class-wise
  rotated NMS) and scores the merged detections against the unsplit ``labelTxt`` files.

Both score as DOTA's devkit (``dota_evaluation_task1.py``), not as mmrotate's ``eval_rbbox_map``:

* IoU of the annotated quadrilaterals: mmrotate turns each ground-truth polygon into its
  minimum-area rotated box before the IoU, the devkit intersects the polygons themselves (on the
  devkit's example labels, half the objects are not rectangles). Predicted rotated boxes are
  scored as their four corners (:func:`quad_iou`, exact; mmcv's rotated IoU also fails on
  nearly coincident boxes, open-mmlab/mmcv issue 2621).
* A detection matches when its best IoU is above ``iou_thr`` (the devkit's ``>``; mmrotate
  ``>=``); its best ground truth may be a difficult (ignored) object, which makes it neither a
  true nor a false positive. Detections are ranked by score over all images, VOC07 11-point or
  area AP, as both.
* ``mean_over='gt_classes'`` (default, mmrotate's) averages the APs of the classes that have
  ground truth; ``'all'`` averages over every class, a class without ground truth counting 0,
  as the devkit does. On DOTA-v1.0 val every class has ground truth and the two agree.
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
from mmrotate.evaluation.functional.mean_ap import print_map_summary
from mmrotate.structures.bbox import rbox2qbox

from ..datasets.rotated import read_dota_objects
from ..registry import ROTATED_METRICS
from .quad_iou import quad_iou

PATCH_NAME = re.compile(r'^(?P<image>.+)__(?P<size>\d+)__(?P<x>\d+)___(?P<y>\d+)$')
MEAN_OVER = ('gt_classes', 'all')


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
    """The objects of a ``labelTxt`` file as ``(n, 8)`` quadrilaterals, in ``eval_rbbox_map``'s
    layout; objects whose difficulty exceeds ``diff_thr`` go to ``bboxes_ignore``.

    Polygons without area are kept, as the devkit keeps them: they can match nothing, so each
    such object that is not ignored counts as a miss (the training reader leaves them out).
    """
    objects = read_dota_objects(txt_file, classes, keep_degenerate=True)
    polygons = np.array([polygon for polygon, _, _ in objects], dtype=np.float64).reshape(-1, 8)
    labels = np.array([label for _, label, _ in objects], dtype=np.int64)
    ignored = np.array([difficulty > diff_thr for _, _, difficulty in objects], dtype=bool)
    return dict(bboxes=polygons[~ignored], labels=labels[~ignored],
                bboxes_ignore=polygons[ignored], labels_ignore=labels[ignored])


def as_quads(boxes: np.ndarray) -> np.ndarray:
    """``(n, 8)`` float64 corners of ``(n, 5)`` rotated boxes (mmrotate's ``rbox2qbox``, as the
    Task1 files the devkit reads) or of ``(n, 8)`` quadrilaterals (returned as they are)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] not in (5, 8):
        raise ValueError(f'expected (n, 5) rotated boxes or (n, 8) quadrilaterals, got an array '
                         f'of shape {boxes.shape}')
    return rbox2qbox(torch.from_numpy(boxes)).numpy() if boxes.shape[1] == 5 else boxes


def class_ground_truth(annotation: dict, label: int) -> Tuple[np.ndarray, np.ndarray]:
    """The quadrilaterals of one class in one image, ignored ones last, and which are ignored."""
    parts = []
    for boxes, labels in (('bboxes', 'labels'), ('bboxes_ignore', 'labels_ignore')):
        if labels in annotation and len(annotation[labels]):
            parts.append(as_quads(annotation[boxes][annotation[labels] == label]))
        else:
            parts.append(np.zeros((0, 8)))
    ignored = np.r_[np.zeros(len(parts[0]), bool), np.ones(len(parts[1]), bool)]
    return np.concatenate(parts), ignored


def match_detections(ious: np.ndarray, ignored: np.ndarray,
                     iou_thr: float) -> Tuple[np.ndarray, np.ndarray]:
    """True and false positives of detections in descending score order, as the devkit.

    ``ious`` is ``(detections, ground truths)``. A detection whose best IoU is above ``iou_thr``
    takes that ground truth: a true positive if it is not ignored and not already taken, a false
    positive if already taken, neither if ignored (difficult); any other detection is a false
    positive. A detection never falls back to its second-best ground truth.
    """
    true_pos, false_pos = np.zeros(len(ious)), np.zeros(len(ious))
    if ious.shape[1] == 0:
        false_pos[:] = 1
        return true_pos, false_pos
    best, best_iou = ious.argmax(axis=1), ious.max(axis=1)
    taken = np.zeros(ious.shape[1], dtype=bool)
    for index, (gt, iou) in enumerate(zip(best, best_iou)):
        if iou <= iou_thr:
            false_pos[index] = 1
        elif ignored[gt]:
            continue
        elif taken[gt]:
            false_pos[index] = 1
        else:
            true_pos[index] = 1
            taken[gt] = True
    return true_pos, false_pos


def check_mean_over(mean_over: str) -> str:
    """``mean_over`` if it is ``'gt_classes'`` or ``'all'``; a ``ValueError`` otherwise."""
    if mean_over not in MEAN_OVER:
        raise ValueError(f'mean_over must be one of {MEAN_OVER}, got {mean_over!r}')
    return mean_over


def rotated_voc_ap(det_results: List[List[np.ndarray]], annotations: List[dict],
                   iou_thr: float, use_07_metric: bool, classes: tuple,
                   logger: Optional[MMLogger] = None,
                   mean_over: str = 'gt_classes') -> Tuple[float, List[dict]]:
    """DOTA devkit's VOC AP of each class and their mean (see the module's docstring).

    ``det_results[image][class]`` holds ``(n, 6)`` rotated boxes or ``(n, 9)`` quadrilaterals
    with their scores last; ``annotations[image]`` the ``bboxes`` and ``labels`` (and optional
    ``bboxes_ignore``, ``labels_ignore``) of ``eval_rbbox_map``, as rotated boxes or
    quadrilaterals. ``mean_over``: ``'gt_classes'`` or ``'all'``.
    """
    check_mean_over(mean_over)
    eps = np.finfo(np.float32).eps
    per_class = []
    for label in range(len(classes)):
        scores, true_pos, false_pos, num_gts = [], [], [], 0
        for dets_per_class, annotation in zip(det_results, annotations):
            dets = np.asarray(dets_per_class[label], dtype=np.float64)
            dets = dets[np.argsort(-dets[:, -1], kind='stable')]
            gts, ignored = class_ground_truth(annotation, label)
            tp, fp = match_detections(quad_iou(as_quads(dets[:, :-1]), gts), ignored, iou_thr)
            scores.append(dets[:, -1])
            true_pos.append(tp)
            false_pos.append(fp)
            num_gts += int((~ignored).sum())
        order = np.argsort(-np.concatenate(scores), kind='stable')
        tp = np.cumsum(np.concatenate(true_pos)[order])
        fp = np.cumsum(np.concatenate(false_pos)[order])
        # float64 recalls, as mmrotate's and the devkit's: a recall of 0.6 then misses the
        # 11-point mark 6 * 0.1
        recalls = tp / np.maximum(np.float64(num_gts), eps)
        precisions = tp / np.maximum(tp + fp, eps)
        ap = average_precision(recalls, precisions, '11points' if use_07_metric else 'area')
        per_class.append(dict(num_gts=num_gts, num_dets=len(order), recall=recalls,
                              precision=precisions, ap=ap))
    aps = [result['ap'] for result in per_class
           if mean_over == 'all' or result['num_gts'] > 0]
    mean_ap = float(np.mean(aps)) if aps else 0.0
    print_map_summary(mean_ap, per_class, classes, logger=logger)
    return mean_ap, per_class


@ROTATED_METRICS.register_module()
class InProcessDOTAMetric(DOTAMetric):
    """mmrotate's ``DOTAMetric`` scored as DOTA's devkit (:func:`rotated_voc_ap`), in process.

    Same arguments and keys as ``DOTAMetric``, plus ``mean_over`` (``'gt_classes'``, default, or
    ``'all'``, the devkit's mean over every class); ``format_only`` and ``merge_patches`` (which
    only write files) are ``DOTAMetric``'s own. Scale ranges are not supported. The numbers
    differ from ``DOTAMetric``'s where the devkit's differ (module docstring), and the ``spawn``
    process pool that ``eval_rbbox_map`` starts at every evaluation is avoided.

    The ground truth is taken from the data samples: quadrilaterals when the test pipeline keeps
    ``LoadAnnotations(box_type='qbox')`` boxes (the devkit's numbers), rotated boxes (scored as
    their corners, which is exact for datasets annotated with rotated boxes, e.g. HRSC2016) when
    it converts them with ``ConvertBoxType``. The ignored objects are those the dataset flags:
    the devkit ignores ``difficult=1``, i.e. ``diff_thr=0`` (mmrotate's ``DOTADataset`` defaults
    to 100, which scores difficult objects as any other).
    """

    def __init__(self, *args, mean_over: str = 'gt_classes', **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.scale_ranges is not None:
            raise ValueError(f'{type(self).__name__} does not support scale_ranges; '
                             'use DOTAMetric')
        self.mean_over = check_mean_over(mean_over)

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
                                        classes, logger, self.mean_over)
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
        if any(np.shape(gt.get('bboxes', ()))[-1:] == (5, ) for gt in gts):
            MMLogger.get_current_instance().info(
                'the ground truth came as rotated boxes (ConvertBoxType in the test pipeline): '
                'scored as their corners, not as the annotated polygons')
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
        mean_over: ``'gt_classes'`` (mmrotate's) or ``'all'`` (the devkit's), as
            :class:`InProcessDOTAMetric`.
        collect_device, prefix: mmengine's (the prefix is ``dota`` by default).

    The merged detections are scored against the annotated quadrilaterals, as the devkit.
    """

    def __init__(self, ann_dir: str, iou_thrs: Union[float, List[float]] = 0.5,
                 iou_thr: float = 0.1, diff_thr: int = 0, eval_mode: str = '11points',
                 mean_over: str = 'gt_classes', collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(iou_thrs=iou_thrs, merge_patches=True, iou_thr=iou_thr,
                         eval_mode=eval_mode, mean_over=mean_over,
                         collect_device=collect_device, prefix=prefix)
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
