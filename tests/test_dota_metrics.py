"""InProcessDOTAMetric against mmrotate's DOTAMetric; MergedDOTAMetric: patch predictions merged
into whole images and scored against the unsplit labelTxt, checked against VOC07 APs computed by
hand."""
import math

import numpy as np
import pytest
from mmengine.registry import init_default_scope

import ifkd_mm  # noqa: F401
from ifkd_mm.datasets.synthetic import DOTA_CLASSES
from ifkd_mm.evaluation import (InProcessDOTAMetric, MergedDOTAMetric, merge_patch_detections,
                                patch_origin, rotated_voc_ap)
from ifkd_mm.registry import ROTATED_METRICS

SHIP, PLANE = DOTA_CLASSES.index('ship'), DOTA_CLASSES.index('plane')


def polygon(cx: float, cy: float, w: float, h: float, angle: float) -> list:
    """Corners of a rotated box, as a labelTxt polygon."""
    c, s = math.cos(angle), math.sin(angle)
    return [v for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2))
            for v in (cx + c * dx - s * dy, cy + s * dx + c * dy)]


SHIP_A = (100., 100., 20., 10., 0.)  # inside the patches at (0, 0), (64, 0), (0, 64), (64, 64)
SHIP_B = (180., 60., 30., 12., math.pi / 4)
SHIP_C = (40., 200., 16., 8., 0.)  # difficult


@pytest.fixture
def ann_dir(tmp_path):
    lines = ['imagesource:GoogleEarth', 'gsd:0.5']
    for box, difficult in ((SHIP_A, 0), (SHIP_B, 0), (SHIP_C, 1)):
        lines.append(' '.join(f'{v:.2f}' for v in polygon(*box)) + f' ship {difficult}')
    (tmp_path / 'P0001.txt').write_text('\n'.join(lines) + '\n')
    return str(tmp_path)


def patch(name: str, boxes: list, scores: list, labels: list) -> dict:
    return dict(img_id=name, bboxes=np.array(boxes, dtype=np.float32).reshape(-1, 5),
                scores=np.array(scores, dtype=np.float32), labels=np.array(labels))


def shifted(box: tuple, x: float, y: float) -> list:
    return [box[0] - x, box[1] - y, *box[2:]]


#: A seen by two overlapping patches (0.9, 0.7), B by one (0.8), a false ship at 0.95; C missed
PATCHES = [
    patch('P0001__128__0___0', [shifted(SHIP_A, 0, 0)], [0.9], [SHIP]),
    patch('P0001__128__64___64', [shifted(SHIP_A, 64, 64)], [0.7], [SHIP]),
    patch('P0001__128__64___0', [shifted(SHIP_B, 64, 0)], [0.8], [SHIP]),
    patch('P0001__128__128___128', [[20., 20., 10., 10., 0.]], [0.95], [SHIP]),
    patch('P0001__128__0___128', [], [], []),
]


def metric(ann_dir: str, **kwargs) -> MergedDOTAMetric:
    evaluator = MergedDOTAMetric(ann_dir=ann_dir, **kwargs)
    evaluator.dataset_meta = dict(classes=DOTA_CLASSES)
    return evaluator


def test_patch_names_give_the_image_and_the_offset():
    assert patch_origin('P0001__600__450___1350') == ('P0001', 450, 1350)
    assert patch_origin('a__b__128__0___64') == ('a__b', 0, 64)
    with pytest.raises(ValueError, match="'P0001.png' is not a DOTA patch name"):
        patch_origin('P0001.png')


def test_merging_moves_boxes_by_their_offset_and_keeps_one_copy_per_object():
    merged = merge_patch_detections(PATCHES, len(DOTA_CLASSES), nms_iou_thr=0.1)
    assert list(merged) == ['P0001']
    ships = merged['P0001'][SHIP]
    assert all(len(dets) == 0 for label, dets in enumerate(merged['P0001']) if label != SHIP)
    order = np.argsort(-ships[:, 5])
    np.testing.assert_allclose(ships[order], [[148., 148., 10., 10., 0., 0.95],
                                              [*SHIP_A, 0.9], [*SHIP_B, 0.8]], atol=1e-5)


def test_merged_ap_by_hand(ann_dir):
    # ranked: false 0.95, A 0.9, B 0.8 against A, B (C difficult, ignored): precision 1/2 at
    # recall 1/2 and 2/3 at recall 1, so each of the 11 VOC07 points is 2/3
    results = metric(ann_dir).compute_metrics(PATCHES)
    assert results['AP50'] == round(2 / 3, 3)
    assert results['mAP'] == pytest.approx(2 / 3, abs=1e-6)


def test_difficult_objects_count_above_diff_thr(ann_dir):
    # with C counted, recall stops at 2/3: points 0.0..0.6 have precision 2/3, 0.7..1.0 have 0
    results = metric(ann_dir, diff_thr=1).compute_metrics(PATCHES)
    assert results['mAP'] == pytest.approx(7 / 11 * 2 / 3, abs=1e-6)


def test_merging_removes_the_copy_that_would_be_a_false_positive(ann_dir):
    # A at 0.9 and, from the next patch, 1 px off (IoU 19/21) at 0.7; B at 0.6
    copies = [patch('P0001__128__0___0', [shifted(SHIP_A, 0, 0)], [0.9], [SHIP]),
              patch('P0001__128__64___64', [shifted(SHIP_A, 63, 64)], [0.7], [SHIP]),
              patch('P0001__128__64___0', [shifted(SHIP_B, 64, 0)], [0.6], [SHIP])]
    # merged: A, B both found before any false detection: every point has precision 1
    assert metric(ann_dir).compute_metrics(copies)['mAP'] == pytest.approx(1.0)
    # NMS at IoU 0.95 keeps the copy: A, A' (false), B -> precision 1 up to recall 1/2, then
    # 2/3: 6 points of 1 and 5 of 2/3
    unmerged = metric(ann_dir, iou_thr=0.95).compute_metrics(copies)
    assert unmerged['mAP'] == pytest.approx((6 + 5 * 2 / 3) / 11, abs=1e-6)


def test_the_mean_is_over_the_classes_with_ground_truth(ann_dir):
    plane = patch('P0001__128__0___0', [[30., 30., 10., 10., 0.]], [0.5], [PLANE])
    # a plane detection without plane ground truth: plane is not in the mean (mmrotate's VOC AP)
    assert metric(ann_dir).compute_metrics(PATCHES + [plane])['mAP'] == pytest.approx(2 / 3)


def test_a_missing_annotation_and_an_empty_run_are_named(ann_dir):
    with pytest.raises(FileNotFoundError, match=r"'P0009'.*P0009\.txt"):
        metric(ann_dir).compute_metrics([patch('P0009__128__0___0', [], [], [])])
    with pytest.raises(ValueError, match='no patch was predicted'):
        metric(ann_dir).compute_metrics([])


def random_results(seed: int = 0) -> tuple:
    """Per-image per-class detections (some near the GT, some random) and GT of 4 images, 3
    classes; class 2 has no ground truth, each image has one ignored GT box."""
    rng = np.random.default_rng(seed)

    def boxes(n):
        return np.column_stack([rng.uniform(20, 100, (n, 2)), rng.uniform(8, 30, (n, 2)),
                                rng.uniform(-1.5, 1.5, n)]).astype(np.float32)

    annotations, det_results = [], []
    for _ in range(4):
        gt = boxes(6)
        labels = rng.integers(0, 2, 6)
        annotations.append(dict(bboxes=gt[:5], labels=labels[:5], bboxes_ignore=gt[5:],
                                labels_ignore=labels[5:]))
        det_results.append([])
        for label in range(3):
            near = gt[labels == label] + rng.normal(0, 2, (int((labels == label).sum()), 5)) \
                * np.array([1, 1, 1, 1, 0.05])
            dets = np.vstack([near, boxes(2)]).astype(np.float32)
            det_results[-1].append(np.column_stack([dets, rng.uniform(0, 1, len(dets))]))
    return det_results, annotations


@pytest.mark.parametrize('use_07_metric', [True, False])
def test_in_process_ap_equals_mmrotates_eval_rbbox_map(use_07_metric):
    from mmrotate.evaluation.functional import eval_rbbox_map

    det_results, annotations = random_results()
    ours, ours_per_class = rotated_voc_ap(det_results, annotations, 0.5, use_07_metric,
                                          DOTA_CLASSES[:3])
    theirs, theirs_per_class = eval_rbbox_map(det_results, annotations, iou_thr=0.5,
                                              use_07_metric=use_07_metric, nproc=1)
    assert 0 < ours < 1 and ours == pytest.approx(theirs, abs=1e-9)
    assert [r['ap'] for r in ours_per_class] == pytest.approx([r['ap'] for r in theirs_per_class])
    assert [r['num_gts'] for r in ours_per_class] == [r['num_gts'] for r in theirs_per_class]


def test_in_process_metric_reports_what_dota_metric_reports(tmp_path):
    from mmrotate.evaluation import DOTAMetric

    det_results, annotations = random_results(seed=1)
    results = []
    for i, (per_class, ann) in enumerate(zip(det_results, annotations)):
        dets = np.vstack(per_class)
        labels = np.concatenate([np.full(len(d), label) for label, d in enumerate(per_class)])
        results.append((ann, dict(img_id=f'P{i:04d}', bboxes=dets[:, :5], scores=dets[:, 5],
                                  labels=labels, pred_bbox_scores=per_class)))
    reported = []
    for metric_type in (DOTAMetric, InProcessDOTAMetric):
        metric = metric_type(iou_thrs=[0.5, 0.75], outfile_prefix=str(tmp_path / 'dets'))
        metric.dataset_meta = dict(classes=DOTA_CLASSES[:3])
        reported.append(metric.compute_metrics(results))
    assert list(reported[1]) == ['mAP', 'AP50', 'AP75'] and reported[1]['AP50'] > 0
    assert reported[1] == pytest.approx(reported[0])
    assert (tmp_path / 'dets.bbox.json').is_file()
    with pytest.raises(ValueError, match='scale_ranges'):
        InProcessDOTAMetric(scale_ranges=[(0, 32)])


def test_the_metric_is_registered_for_mmrotate_configs(ann_dir):
    init_default_scope('mmrotate')
    built = ROTATED_METRICS.build(dict(type='MergedDOTAMetric', ann_dir=ann_dir, iou_thrs=[0.5]))
    assert isinstance(built, MergedDOTAMetric) and built.prefix == 'dota'
