"""InProcessDOTAMetric against mmrotate's DOTAMetric on rectangles; MergedDOTAMetric: patch
predictions merged into whole images and scored against the unsplit labelTxt, checked against
VOC07 APs computed by hand; the quadrilateral IoU and the devkit's scoring of non-rectangular
polygons checked against shapely's polygon intersections."""
import math
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from mmrotate.structures.bbox import qbox2rbox, rbox2qbox
from shapely.geometry import Polygon

import ifkd_mm  # noqa: F401
from ifkd_mm.datasets import CheckedDOTADataset
from ifkd_mm.datasets.synthetic import DOTA_CLASSES
from ifkd_mm.evaluation import (InProcessDOTAMetric, MergedDOTAMetric, merge_patch_detections,
                                patch_origin, quad_iou, rotated_voc_ap)
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


# ------------------------------------------------------------------------------------------
# IoU of the annotated quadrilaterals (DOTA devkit), checked with shapely
# ------------------------------------------------------------------------------------------

def polygon_iou(quad1, quad2) -> float:
    """IoU of two quadrilaterals by shapely's polygon intersection (independent of quad_iou)."""
    first, second = (Polygon(np.asarray(q, dtype=np.float64).reshape(4, 2)) for q in (quad1, quad2))
    inter = first.intersection(second).area
    return inter / (first.area + second.area - inter)


def corners(rbox) -> np.ndarray:
    return rbox2qbox(torch.tensor(np.reshape(rbox, (-1, 5)), dtype=torch.float64)).numpy()


def random_quads(rng, num: int) -> np.ndarray:
    """Rotated rectangles, general convex quadrilaterals and concave ones (one corner pushed past
    the centre), half of them clockwise, all near each other so that most pairs overlap."""
    quads = []
    while len(quads) < num:
        quad = corners([*rng.uniform(40, 60, 2), *rng.uniform(8, 40, 2), rng.uniform(-3, 3)])
        points = quad.reshape(4, 2)
        kind = len(quads) % 3
        if kind == 1:
            points = points + rng.normal(0, 4, (4, 2))
        elif kind == 2:
            centre, corner = points.mean(0), rng.integers(4)
            points[corner] = centre + 0.3 * (centre - points[corner])
        if rng.random() < 0.5:
            points = points[::-1]
        if Polygon(points).is_valid:
            quads.append(points.ravel())
    return np.array(quads)


def test_quad_iou_is_shapelys_polygon_iou():
    rng = np.random.default_rng(0)
    quads = random_quads(rng, 60)
    polygons = [Polygon(q.reshape(4, 2)) for q in quads]
    assert sum(p.convex_hull.area > p.area + 1e-6 for p in polygons) >= 15  # concave ones
    ours = quad_iou(quads, quads[::-1])
    theirs = np.array([[polygon_iou(a, b) for b in quads[::-1]] for a in quads])
    assert (theirs > 0).mean() > 0.5
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
    # a shared side, the lower half, a quad inside, a touching corner, disjoint
    square = np.array([0., 0., 10., 0., 10., 10., 0., 10.])
    others = np.array([[10., 0., 20., 0., 20., 10., 10., 10.], [0., 0., 10., 0., 10., 5., 0., 5.],
                       [2., 2., 5., 3., 4., 6., 1., 4.], [10., 10., 20., 10., 20., 20., 10., 20.],
                       [30., 30., 40., 30., 40., 40., 30., 40.]])
    # the third lies inside, with shoelace area (-4 + 18 + 10 - 6) / 2 = 9
    np.testing.assert_allclose(quad_iou(square, others)[0], [0., 0.5, 9 / 100, 0., 0.],
                               atol=1e-12)


def test_quad_iou_is_one_for_coincident_and_nearly_coincident_boxes():
    # open-mmlab/mmcv issue 2621's box, and boxes moved into a patch and back in float32 (what
    # a split/merge round trip does), where mmcv's CPU box_iou_rotated returns 0.33 for some
    rng = np.random.default_rng(1)
    boxes = np.column_stack([rng.uniform(0, 1000, (500, 2)), rng.uniform(5, 100, (500, 2)),
                             rng.uniform(-math.pi / 2, math.pi / 2, 500)]).astype(np.float32)
    boxes[0] = [0.0, 0.0, 180.6422271729, 136.3633728027, 0.9559648633]
    moved = boxes.copy()
    moved[:, :2] = (moved[:, :2] - np.float32(600)) + np.float32(600)
    ious = np.diag(quad_iou(corners(boxes), corners(moved)))
    theirs = [polygon_iou(a, b) for a, b in zip(corners(boxes), corners(moved))]
    assert min(ious) > 0.9999 and (np.array(theirs) < 1).any()  # apart by float32 rounding
    np.testing.assert_allclose(ious, theirs, rtol=0, atol=1e-9)
    assert quad_iou(corners(boxes[:1]), corners(boxes[:1]))[0, 0] == pytest.approx(1, abs=1e-12)


def test_a_self_intersecting_quad_is_scored_as_its_corners_in_boundary_order():
    bowtie = [0., 0., 10., 10., 10., 0., 0., 10.]
    square = [0., 0., 10., 0., 10., 10., 0., 10.]
    half = [0., 0., 5., 0., 5., 10., 0., 10.]
    assert quad_iou(bowtie, square)[0, 0] == pytest.approx(1.0)
    assert quad_iou(bowtie, half)[0, 0] == pytest.approx(0.5)


#: non-rectangular ground truth of one image: a sheared parallelogram, a concave dart, a
#: trapezoid and a difficult square; the minimum-area rectangles of G2 and G3 are far from them
G1 = [100., 100., 140., 100., 190., 140., 150., 140.]
G2 = [300., 100., 360., 130., 300., 160., 320., 130.]
G3 = [500., 100., 600., 100., 560., 130., 540., 130.]
G4 = [700., 100., 740., 100., 740., 140., 700., 140.]
GT_RECT_G1 = qbox2rbox(torch.tensor([G1])).numpy()[0]
GT_RECT_G2 = qbox2rbox(torch.tensor([G2])).numpy()[0]
#: ship detections (rotated boxes) by descending score
DETECTIONS = np.array([[550., 115., 40., 30., 0., 0.9],  # inside G3
                       [*GT_RECT_G2, 0.8],  # G2's minimum-area rectangle
                       [145., 120., 60., 36., math.atan2(40, 50) / 2, 0.7],  # along G1
                       [720., 120., 38., 38., 0., 0.6],  # the difficult G4
                       [*GT_RECT_G1, 0.5]])  # G1's minimum-area rectangle
#: by hand with shapely's IoUs (checked in the test): 0.9 matches G3 (IoU 0.6), 0.8 misses G2
#: (1/3), 0.7 matches G1 (0.56), 0.6 matches the ignored G4 (neither), 0.5's best is G1 (0.67),
#: already taken. Recall 1/3, 1/3, 2/3, 2/3, 2/3 at precision 1, 1/2, 2/3, 2/3, 1/2: VOC07
#: points 0-0.3 have precision 1, 0.4-0.6 have 2/3, 0.7-1 have 0 (without the last detection,
#: which patch merging removes as it overlaps 0.7, the same)
QUAD_AP = (4 * 1 + 3 * 2 / 3) / 11


def write_quad_labels(folder) -> None:
    lines = ['imagesource:GoogleEarth', 'gsd:0.5']
    lines += [' '.join(f'{v:g}' for v in quad) + f' ship {int(quad is G4)}'
              for quad in (G1, G2, G3, G4)]
    (folder / 'P0001.txt').write_text('\n'.join(lines) + '\n')


def test_the_hand_computed_matches_hold_for_shapelys_iou():
    dets = corners(DETECTIONS[:, :5])
    ious = np.array([[polygon_iou(det, gt) for gt in (G1, G2, G3, G4)] for det in dets])
    best = [(int(np.argmax(row)), row.max()) for row in ious]
    assert [gt for gt, _ in best] == [2, 1, 0, 3, 0]
    assert [iou > 0.5 for _, iou in best] == [True, False, True, True, True]
    assert polygon_iou(corners(GT_RECT_G2)[0], G2) == pytest.approx(1 / 3, abs=1e-3)


def test_merged_ap_scores_the_annotated_quadrilaterals(tmp_path):
    # the old scoring (IoU with the minimum-area rectangles) gave 2/11: 0.9 missed G3's
    # rectangle (IoU 0.4, and mmcv's box_iou_rotated said 0.27), 0.7 missed G1's (0.49), 0.8
    # matched G2's exactly
    write_quad_labels(tmp_path)
    patches = [patch('P0001__1024__0___0', DETECTIONS[:, :5], DETECTIONS[:, 5], [SHIP] * 5)]
    results = metric(str(tmp_path)).compute_metrics(patches)
    assert results['mAP'] == pytest.approx(QUAD_AP, abs=1e-6)
    dets = [[np.zeros((0, 6))] * SHIP + [DETECTIONS]]
    annotation = dict(bboxes=np.array([G1, G2, G3]), labels=np.full(3, SHIP),
                      bboxes_ignore=np.array([G4]), labels_ignore=np.array([SHIP]))
    mean_ap, per_class = rotated_voc_ap(dets, [annotation], 0.5, True, DOTA_CLASSES[:SHIP + 1])
    assert mean_ap == pytest.approx(QUAD_AP, abs=1e-6) and per_class[SHIP]['num_gts'] == 3


def test_the_devkit_mean_is_over_all_classes(ann_dir):
    plane = patch('P0001__128__0___0', [[30., 30., 10., 10., 0.]], [0.5], [PLANE])
    # ship 2/3, plane (no ground truth) 0, 13 other classes 0
    results = metric(ann_dir, mean_over='all').compute_metrics(PATCHES + [plane])
    assert results['mAP'] == pytest.approx(2 / 3 / 15)
    with pytest.raises(ValueError, match='mean_over'):
        metric(ann_dir, mean_over='images')


def test_a_degenerate_ground_truth_polygon_counts_as_a_miss(ann_dir):
    # the devkit keeps a polygon without area: it can match nothing, so recall stops at 2/3
    with open(osp.join(ann_dir, 'P0001.txt'), 'a') as f:
        f.write('5 5 5 5 5 5 5 5 ship 0\n')
    assert metric(ann_dir).compute_metrics(PATCHES)['mAP'] == pytest.approx(7 / 11 * 2 / 3)


def test_ground_truth_as_predictions_after_a_split_and_merge_scores_one(tmp_path):
    """Objects (some non-rectangular) cut into overlapping patches by the splitter; each
    patch's objects, as the rotated boxes the training pipeline makes of them, are the
    predictions. The old scoring gave 0.999 here: the copies moved into a patch and back are
    nearly coincident with the ground truth's box, and mmcv's box_iou_rotated put one at 0.33.
    """
    from tools.data.split_dota import split_folder

    rng = np.random.default_rng(3)
    src = tmp_path / 'src'
    (src / 'images').mkdir(parents=True)
    (src / 'labelTxt').mkdir()
    cv2.imwrite(str(src / 'images' / 'P0001.png'), np.zeros((384, 384, 3), np.uint8))
    lines = []
    for index, cell in enumerate(rng.permutation(144)[:100]):  # apart, as NMS merging needs
        centre = (np.array([cell % 12, cell // 12]) + 0.5) * 32 + rng.uniform(-3, 3, 2)
        quad = corners([*centre, *rng.uniform(6, 20, 2), rng.uniform(-math.pi, math.pi)])[0]
        quad += rng.normal(0, 1.0, 8) * (index % 2)  # every other one not a rectangle
        lines.append(' '.join(f'{v:.1f}' for v in quad) + f' ship {int(index % 17 == 0)}')
    (src / 'labelTxt' / 'P0001.txt').write_text('\n'.join(lines) + '\n')
    split_folder(str(src), str(tmp_path / 'val'), size=128, overlap=64)
    patches = []
    for txt_file in sorted((tmp_path / 'val' / 'annfiles').glob('*.txt')):
        rows = [line.split() for line in txt_file.read_text().splitlines()]
        quads = torch.tensor([[float(v) for v in row[:8]] for row in rows]).reshape(-1, 8)
        scores = rng.uniform(0.5, 1, len(rows))
        patches.append(patch(txt_file.stem, qbox2rbox(quads).numpy(), scores, [SHIP] * len(rows)))
    assert sum(len(p['scores']) for p in patches) > 250  # objects seen by several patches
    results = metric(str(src / 'labelTxt')).compute_metrics(patches)
    assert results['mAP'] == pytest.approx(1.0)


def test_in_process_metric_scores_the_quadrilaterals_of_the_data_samples(tmp_path):
    """The real test pipeline without ``ConvertBoxType`` packs the polygons (QuadriBoxes)."""
    (tmp_path / 'labelTxt').mkdir()
    (tmp_path / 'images').mkdir()
    write_quad_labels(tmp_path / 'labelTxt')
    cv2.imwrite(str(tmp_path / 'images' / 'P0001.png'), np.zeros((200, 800, 3), np.uint8))
    load = [dict(type='mmdet.LoadImageFromFile'),
            dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox')]
    pack = dict(type='mmdet.PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                       'img_shape'))
    init_default_scope('mmrotate')
    reported = []
    for convert in ([], [dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox'))]):
        dataset = CheckedDOTADataset(data_root=str(tmp_path), ann_file='labelTxt/', diff_thr=0,
                                     data_prefix=dict(img_path='images/'), test_mode=True,
                                     pipeline=load + convert + [pack])
        sample = dataset[0]['data_samples']
        sample.pred_instances = InstanceData(
            bboxes=torch.tensor(DETECTIONS[:, :5], dtype=torch.float32),
            scores=torch.tensor(DETECTIONS[:, 5]), labels=torch.full((5, ), SHIP))
        evaluator = InProcessDOTAMetric(iou_thrs=[0.5])
        evaluator.dataset_meta = dict(classes=DOTA_CLASSES)
        evaluator.process({}, [sample.to_dict()])
        reported.append(evaluator.compute_metrics(evaluator.results)['mAP'])
    assert reported[0] == pytest.approx(QUAD_AP, abs=1e-6)
    # converted to rotated boxes, the polygons are gone: the rectangles' matches, 0.9 and 0.7
    # missed, 0.8 and 0.5 matched (recall 1/3 then 2/3 at precision 1/2): 7/22
    assert reported[1] == pytest.approx(7 / 22, abs=1e-6)
