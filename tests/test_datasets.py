"""Dataset readers on synthetic files in the official layouts, including bad input."""
import json
import os
import os.path as osp
import shutil
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from ifkd_mm.datasets import (AnnotationError, AnnotationWarning, CheckedDOTADataset,
                              DIORRDataset, SARAircraftDataset, SceneFolderDataset,
                              ShipRSImageNetDataset, ShipRSImageNetRotatedDataset,
                              train_ratio_split)
from ifkd_mm.registry import CLS_DATASETS, DATASETS, ROTATED_DATASETS, ROTATED_METRICS

from .conftest import REPO, SMALL


def shiprs(root, split='train', level=3, cls=ShipRSImageNetDataset, **kwargs):
    return cls(data_root=osp.join(root, 'ShipRSImageNet'),
               ann_file=f'COCO_Format/ShipRSImageNet_bbox_{split}_level_{level}.json',
               data_prefix=dict(img='VOC_Format/JPEGImages/'), pipeline=[], **kwargs)


def load_json(root, split, level):
    with open(osp.join(root, 'ShipRSImageNet', 'COCO_Format',
                       f'ShipRSImageNet_bbox_{split}_level_{level}.json')) as f:
        return json.load(f)


def copy_dataset(src_root, name, tmp_path):
    dst = osp.join(str(tmp_path), name)
    shutil.copytree(osp.join(src_root, name), dst)
    return dst


# ShipRSImageNet -------------------------------------------------------------------------------

@pytest.mark.parametrize('level', [0, 1, 2, 3])
def test_shiprs_classes_and_boxes_come_from_the_json(synthetic_root, level):
    data = load_json(synthetic_root, 'train', level)
    dataset = shiprs(synthetic_root, level=level)
    categories = sorted(data['categories'], key=lambda c: c['id'])
    assert dataset.metainfo['classes'] == tuple(c['name'] for c in categories)
    assert len(dataset) == SMALL['num_train']
    expected = {}
    for ann in data['annotations']:
        x, y, w, h = ann['bbox']
        label = [c['id'] for c in categories].index(ann['category_id'])
        expected.setdefault(ann['image_id'], []).append((label, [x, y, x + w, y + h]))
    for info in dataset:
        got = [(inst['bbox_label'], inst['bbox']) for inst in info['instances']]
        want = expected[info['img_id']]
        assert [label for label, _ in got] == [label for label, _ in want]
        np.testing.assert_allclose([b for _, b in got], [b for _, b in want], atol=1e-6)
        assert osp.isfile(info['img_path']) and info['img_path'].endswith('.bmp')


def test_shiprs_rotated_reader_gives_the_polygons(synthetic_root):
    init_default_scope('mmrotate')
    data = load_json(synthetic_root, 'val', 3)
    dataset = shiprs(synthetic_root, split='val', cls=ShipRSImageNetRotatedDataset,
                     test_mode=True)
    polygons = {ann['id']: ann['segmentation'][0] for ann in data['annotations']}
    got = [inst['bbox'] for info in dataset for inst in info['instances']]
    np.testing.assert_allclose(sorted(got), sorted(polygons.values()), atol=1e-6)

    from mmcv.transforms import Compose
    from mmrotate.registry import TRANSFORMS
    pipeline = Compose([TRANSFORMS.build(t) for t in [
        dict(type='mmdet.LoadImageFromFile'),
        dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
        dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox'))]])
    result = pipeline(dataset.get_data_info(0))
    rboxes = result['gt_bboxes'].tensor.numpy()
    quads = np.array([inst['bbox'] for inst in dataset.get_data_info(0)['instances']])
    np.testing.assert_allclose(rboxes[:, :2], quads.reshape(-1, 4, 2).mean(1), atol=1e-3)


def test_shiprs_degenerate_box_is_named_and_left_out(synthetic_root, tmp_path):
    root = copy_dataset(synthetic_root, 'ShipRSImageNet', tmp_path)
    path = osp.join(root, 'COCO_Format', 'ShipRSImageNet_bbox_train_level_3.json')
    data = json.load(open(path))
    bad = data['annotations'][0]
    bad['bbox'][2] = 0
    json.dump(data, open(path, 'w'))
    with pytest.warns(AnnotationWarning, match=rf"annotation id {bad['id']}: box .* no area"):
        dataset = shiprs(str(tmp_path))
    n_instances = sum(len(info['instances']) for info in dataset)
    assert n_instances == len(data['annotations']) - 1


def test_shiprs_malformed_bbox_names_file_and_annotation(synthetic_root, tmp_path):
    root = copy_dataset(synthetic_root, 'ShipRSImageNet', tmp_path)
    path = osp.join(root, 'COCO_Format', 'ShipRSImageNet_bbox_train_level_3.json')
    data = json.load(open(path))
    data['annotations'][1]['bbox'] = [1, 2, 3]
    json.dump(data, open(path, 'w'))
    ann_id = data['annotations'][1]['id']
    with pytest.raises(AnnotationError, match=rf'level_3.json.*annotation id {ann_id}.*bbox'):
        shiprs(str(tmp_path))


def test_shiprs_config_classes_must_exist_in_the_json(synthetic_root):
    with pytest.raises(AnnotationError, match="'Nimitz'"):
        shiprs(synthetic_root, metainfo=dict(classes=('Nimitz', )))


def test_shiprs_test_json_has_images_but_no_annotations(synthetic_root):
    dataset = shiprs(synthetic_root, split='test', test_mode=True)
    assert len(dataset) > 0
    assert all(len(info['instances']) == 0 for info in dataset)


# SAR-AIRcraft-1.0 -----------------------------------------------------------------------------

def sar(root, split='train', **kwargs):
    return SARAircraftDataset(data_root=osp.join(root, 'SAR-AIRcraft-1.0'),
                              ann_file=f'ImageSets/Main/{split}.txt',
                              data_prefix=dict(sub_data_root=''), pipeline=[], **kwargs)


def test_sar_aircraft_reads_the_voc_xml(synthetic_root):
    dataset = sar(synthetic_root)
    ids = open(osp.join(synthetic_root, 'SAR-AIRcraft-1.0', 'ImageSets', 'Main',
                        'train.txt')).read().split()
    assert [info['img_id'] for info in dataset] == ids
    for info in dataset:
        root = ET.parse(info['xml_path']).getroot()
        want = [(dataset.metainfo['classes'].index(obj.find('name').text),
                 [float(obj.find('bndbox').find(t).text) - 1
                  for t in ('xmin', 'ymin', 'xmax', 'ymax')]) for obj in root.iter('object')]
        got = [(inst['bbox_label'], inst['bbox']) for inst in info['instances']]
        assert [g[0] for g in got] == [w[0] for w in want]
        np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want])
        assert info['img_path'].endswith(f"JPEGImages/{info['img_id']}.jpg")
        assert osp.isfile(info['img_path'])


def rewrite_first_xml(dataset_dir, subdir, edit):
    """Apply ``edit(root)`` to the first annotation XML; returns its path."""
    folder = osp.join(dataset_dir, subdir)
    path = osp.join(folder, sorted(f for f in os.listdir(folder))[0])
    tree = ET.parse(path)
    edit(tree.getroot())
    tree.write(path)
    return path


@pytest.mark.parametrize('edit, message', [
    (lambda root: setattr(root.find('object/name'), 'text', 'B747'), r"unknown class 'B747'"),
    (lambda root: setattr(root.find('object/bndbox/xmin'), 'text', 'ten'),
     r'<xmin> is .ten., not a number'),
    (lambda root: root.find('object').remove(root.find('object/bndbox')), 'missing <bndbox>'),
])
def test_sar_aircraft_malformed_objects_name_file_and_object(synthetic_root, tmp_path, edit,
                                                             message):
    dataset_dir = copy_dataset(synthetic_root, 'SAR-AIRcraft-1.0', tmp_path)
    path = rewrite_first_xml(dataset_dir, 'Annotations', edit)
    img_id = osp.splitext(osp.basename(path))[0]
    split = next(s for s in ('train', 'val', 'test') if img_id in open(
        osp.join(dataset_dir, 'ImageSets', 'Main', f'{s}.txt')).read().split())
    with pytest.raises(ValueError, match=rf'{img_id}\.xml, object 0: .*{message}'):
        sar(str(tmp_path), split=split)


def test_sar_aircraft_broken_xml_names_the_file(synthetic_root, tmp_path):
    dataset_dir = copy_dataset(synthetic_root, 'SAR-AIRcraft-1.0', tmp_path)
    first = open(osp.join(dataset_dir, 'ImageSets', 'Main', 'train.txt')).read().split()[0]
    with open(osp.join(dataset_dir, 'Annotations', f'{first}.xml'), 'w') as f:
        f.write('<annotation><object>')
    with pytest.raises(AnnotationError, match=rf'{first}\.xml: not a valid XML'):
        sar(str(tmp_path))


# DOTA, DIOR-R, HRSC2016 -----------------------------------------------------------------------

def dota(root, split='train'):
    return CheckedDOTADataset(data_root=osp.join(root, 'DOTA'), ann_file=f'{split}/labelTxt/',
                              data_prefix=dict(img_path=f'{split}/images/'), pipeline=[])


def test_dota_reads_label_txt(synthetic_root):
    dataset = dota(synthetic_root)
    assert len(dataset) == SMALL['num_train']
    classes = dataset.metainfo['classes']
    for info in dataset:
        lines = open(osp.join(synthetic_root, 'DOTA', 'train', 'labelTxt',
                              f"{info['img_id']}.txt")).read().splitlines()[2:]
        want = [([float(v) for v in line.split()[:8]], classes.index(line.split()[8]),
                 int(line.split()[9])) for line in lines]
        assert [(i['bbox'], i['bbox_label'], i['ignore_flag']) for i in info['instances']] == \
            [(p, c, int(d > dataset.diff_thr)) for p, c, d in want]
        assert osp.isfile(info['img_path'])


@pytest.mark.parametrize('line, message', [
    ('10 10 20 10 20 20 10 20 spaceship 0', r"line 3.*unknown class 'spaceship'"),
    ('10 10 20 10 20 20 10 20 ship 0 extra', r'line 3: expected'),
    ('10 10 20 10 20 x 10 20 ship 0', r"line 3: field x/y is 'x', not a number"),
])
def test_dota_malformed_line_names_file_and_line(synthetic_root, tmp_path, line, message):
    dataset_dir = copy_dataset(synthetic_root, 'DOTA', tmp_path)
    label_dir = osp.join(dataset_dir, 'train', 'labelTxt')
    name = sorted(os.listdir(label_dir))[0]
    lines = open(osp.join(label_dir, name)).read().splitlines()
    lines.insert(2, line)
    open(osp.join(label_dir, name), 'w').write('\n'.join(lines) + '\n')
    with pytest.raises(AnnotationError, match=rf'{name}, {message}'):
        dota(str(tmp_path))


def test_dota_zero_area_polygon_is_named_and_left_out(synthetic_root, tmp_path):
    dataset_dir = copy_dataset(synthetic_root, 'DOTA', tmp_path)
    label_dir = osp.join(dataset_dir, 'train', 'labelTxt')
    name = sorted(os.listdir(label_dir))[0]
    with open(osp.join(label_dir, name), 'a') as f:
        f.write('10 10 20 20 30 30 40 40 ship 0\n')
    with pytest.warns(AnnotationWarning, match=rf'{name}, line \d+: polygon .* no area'):
        dataset = dota(str(tmp_path))
    assert len(dataset.get_data_info(0)['instances']) == len(
        dota(synthetic_root).get_data_info(0)['instances'])


def test_split_dota_keeps_the_objects_an_independent_iof_count_keeps(tmp_path):
    """Per patch, the objects written are those whose polygon lies in the window with an IoF
    (shapely's intersection area / area) of at least 0.7; those the window does not cover get
    difficulty 2, the others keep theirs. The old splitter wrote 2 for about a third of the
    objects lying wholly inside a patch (mmrotate's IoF, float64 area over float32 area, is not
    1)."""
    from shapely.geometry import Polygon, box

    from tools.data.split_dota import split_folder

    rng = np.random.default_rng(0)
    src = tmp_path / 'src'
    os.makedirs(src / 'images')
    os.makedirs(src / 'labelTxt')
    cv2.imwrite(str(src / 'images' / 'P0001.png'), np.zeros((256, 256, 3), np.uint8))
    # 128 px patches with an overlap of 32 on 256 px: steps of 96, the last one moved to 128
    windows = [box(x, y, x + 128, y + 128) for x in (0, 96, 128) for y in (0, 96, 128)]
    objects = []
    while len(objects) < 40:
        centre, size, angle = rng.uniform(20, 236, 2), rng.uniform(6, 40, 2), rng.uniform(-3, 3)
        cos, sin = np.cos(angle), np.sin(angle)
        corners = [centre + [cos * dx - sin * dy, sin * dx + cos * dy]
                   for dx, dy in size / 2 * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])]
        quad = np.round(np.array(corners) + rng.normal(0, 1, (4, 2)) * (len(objects) % 2), 1)
        iofs = [Polygon(quad).intersection(w).area / Polygon(quad).area for w in windows]
        if all(abs(iof - 0.7) > 0.01 for iof in iofs):  # clear of the threshold
            objects.append((quad, int(rng.random() < 0.3)))
    (src / 'labelTxt' / 'P0001.txt').write_text(''.join(
        ' '.join(f'{v:.1f}' for v in quad.ravel()) + f' ship {difficult}\n'
        for quad, difficult in objects))

    split_folder(str(src), str(tmp_path / 'out'), size=128, overlap=32, iof_thr=0.7)

    ann_dir = tmp_path / 'out' / 'annfiles'
    assert sorted(os.listdir(ann_dir)) == sorted(
        f'P0001__128__{int(w.bounds[0])}___{int(w.bounds[1])}.txt' for w in windows)
    kept_cut = dropped_touching = 0
    for window in windows:
        x, y = int(window.bounds[0]), int(window.bounds[1])
        want = []
        for quad, difficult in objects:
            polygon = Polygon(quad)
            iof = polygon.intersection(window).area / polygon.area
            if iof >= 0.7:
                covered = window.covers(polygon)
                want.append((tuple(quad.ravel()), difficult if covered else 2))
                kept_cut += not covered
            else:
                dropped_touching += iof > 0
        rows = [line.split() for line in open(ann_dir / f'P0001__128__{x}___{y}.txt')]
        written = [(tuple(np.round(np.array(row[:8], float) + [x, y] * 4, 1)), int(row[9]))
                   for row in rows]
        assert all(row[8] == 'ship' for row in rows)
        assert sorted(written) == sorted(want), f'patch at {x}, {y}'
    assert kept_cut >= 5 and dropped_touching >= 5  # objects across the patch borders


def dior(root, split='train', **kwargs):
    return DIORRDataset(data_root=osp.join(root, 'DIOR-R'), ann_file=f'ImageSets/Main/{split}.txt',
                        data_prefix=dict(img_path='JPEGImages-trainval'), pipeline=[], **kwargs)


def test_dior_r_reads_oriented_boxes(synthetic_root):
    dataset = dior(synthetic_root)
    assert len(dataset) == SMALL['num_train']
    info = dataset.get_data_info(0)
    root = ET.parse(info['xml_path']).getroot()
    corners = [[float(obj.find('robndbox').find(t).text) for t in (
        'x_left_top', 'y_left_top', 'x_right_top', 'y_right_top', 'x_right_bottom',
        'y_right_bottom', 'x_left_bottom', 'y_left_bottom')] for obj in root.iter('object')]
    np.testing.assert_allclose([i['bbox'] for i in info['instances']], corners)
    assert osp.isfile(info['img_path'])


def test_dior_r_bbox_min_size_compares_box_sides_not_image_size(synthetic_root):
    sides = [min(np.linalg.norm(np.diff(np.asarray(i['bbox']).reshape(4, 2)[:3], axis=0), axis=1))
             for info in dior(synthetic_root) for i in info['instances']]
    threshold = float(np.median(sides))
    dataset = dior(synthetic_root, filter_cfg=dict(bbox_min_size=threshold))
    flags = [i['ignore_flag'] for info in dataset for i in info['instances']]
    assert flags == [int(side < threshold) for side in sides]
    assert 0 < sum(flags) < len(flags)  # mmrotate's bug would flag all or none (image size)


def test_dior_r_without_size_reads_height_and_width_from_image(synthetic_root, tmp_path):
    dataset_dir = copy_dataset(synthetic_root, 'DIOR-R', tmp_path)
    path = rewrite_first_xml(dataset_dir, osp.join('Annotations', 'Oriented Bounding Boxes'),
                             lambda root: root.remove(root.find('size')))
    img_id = osp.splitext(osp.basename(path))[0]
    split = next(s for s in ('train', 'val', 'test') if img_id in open(
        osp.join(dataset_dir, 'ImageSets', 'Main', f'{s}.txt')).read().split())
    folder = 'JPEGImages-test' if split == 'test' else 'JPEGImages-trainval'
    img_path = osp.join(dataset_dir, folder, f'{img_id}.jpg')
    image = cv2.imread(img_path)
    cv2.imwrite(img_path, image[:, :image.shape[1] // 2 + 7])  # not square any more
    dataset = DIORRDataset(data_root=dataset_dir, ann_file=f'ImageSets/Main/{split}.txt',
                           data_prefix=dict(img_path=folder), pipeline=[])
    info = next(i for i in dataset if i['img_id'] == img_id)
    assert (info['height'], info['width']) == (image.shape[0], image.shape[1] // 2 + 7)


def test_hrsc2016_is_read_by_mmrotate(synthetic_root):
    init_default_scope('mmrotate')
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets/hrsc2016.py'))
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.update(data_root=osp.join(synthetic_root, 'HRSC2016') + '/', pipeline=[])
    dataset = ROTATED_DATASETS.build(dataset_cfg)
    assert len(dataset) == SMALL['num_train'] + SMALL['num_val']  # trainval
    xml = ET.parse(dataset.get_data_info(0)['xml_path']).getroot()
    assert len(dataset.get_data_info(0)['instances']) == len(xml.findall('.//HRSC_Object'))


# Scene classification folders ----------------------------------------------------------------

def test_train_ratio_split_is_stratified_seeded_and_disjoint():
    labels = [0] * 10 + [1] * 20 + [2] * 5
    mask = train_ratio_split(labels, 0.2, seed=3)
    assert [int(mask[np.array(labels) == c].sum()) for c in range(3)] == [2, 4, 1]
    np.testing.assert_array_equal(mask, train_ratio_split(labels, 0.2, seed=3))
    assert not np.array_equal(mask, train_ratio_split(labels, 0.2, seed=4))
    with pytest.raises(ValueError, match='train_ratio'):
        train_ratio_split(labels, 1.5, seed=0)


def test_scene_folder_dataset_splits_cover_all_images(synthetic_root):
    root = osp.join(synthetic_root, 'NWPU-RESISC45')
    train = SceneFolderDataset(data_root=root, split='train', train_ratio=0.3, seed=1,
                               pipeline=[])
    test = SceneFolderDataset(data_root=root, split='test', train_ratio=0.3, seed=1, pipeline=[])
    train_paths = {i['img_path'] for i in train}
    test_paths = {i['img_path'] for i in test}
    assert not train_paths & test_paths
    assert len(train_paths | test_paths) == 30
    assert len(train) == 9 and train.metainfo['classes'] == ('airplane', 'beach', 'bridge')
    assert all(osp.basename(osp.dirname(i['img_path'])) == train.metainfo['classes'][
        i['gt_label']] for i in train)


# Base configs build their datasets through the registries ------------------------------------

@pytest.mark.parametrize('config, folder, scope, registry', [
    ('shiprs_level3.py', 'ShipRSImageNet', 'mmdet', DATASETS),
    ('sar_aircraft.py', 'SAR-AIRcraft-1.0', 'mmdet', DATASETS),
    ('dota.py', 'DOTA', 'mmrotate', ROTATED_DATASETS),
    ('dior_r.py', 'DIOR-R', 'mmrotate', ROTATED_DATASETS),
    ('hrsc2016.py', 'HRSC2016', 'mmrotate', ROTATED_DATASETS),
    ('nwpu45.py', 'NWPU-RESISC45', 'mmpretrain', CLS_DATASETS),
])
def test_base_dataset_configs_build_and_load(synthetic_root, config, folder, scope, registry):
    init_default_scope(scope)
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets', config))
    data_root = osp.join(synthetic_root, folder) + '/'
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        dataset_cfg = loader.dataset
        for sub in dataset_cfg.get('datasets', [dataset_cfg]):
            sub.data_root = data_root
        dataset = registry.build(dataset_cfg)
        assert len(dataset) > 0
        sample = dataset[0]
        assert sample['inputs'].ndim == 3 and sample['inputs'].shape[0] == 3


@pytest.mark.parametrize('config, folder', [('dota.py', 'DOTA'), ('dior_r.py', 'DIOR-R')])
def test_rotated_val_pipelines_keep_the_quadrilaterals_the_metric_scores(
        synthetic_root, config, folder):
    """The DOTA / DIOR-R val pipelines hand the annotated quadrilaterals to InProcessDOTAMetric
    (devkit protocol): the ground truth given back as rotated-box predictions scores 1.0, and
    a prediction shifted by half a box width scores far less."""
    from mmrotate.structures.bbox import qbox2rbox
    init_default_scope('mmrotate')
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets', config))
    cfg.test_dataloader.dataset.data_root = osp.join(synthetic_root, folder) + '/'
    dataset = ROTATED_DATASETS.build(cfg.test_dataloader.dataset)
    scores = {}
    for shift in (0.0, 0.5):
        metric = ROTATED_METRICS.build(cfg.test_evaluator)
        metric.dataset_meta = dataset.metainfo
        for index in range(len(dataset)):
            sample = dataset[index]['data_samples']
            gt = sample.gt_instances
            assert gt.bboxes.tensor.shape[-1] == 8  # quadrilaterals reach the metric
            rboxes = qbox2rbox(gt.bboxes.tensor)
            rboxes[:, 0] += shift * rboxes[:, 2]
            metric.process({}, [dict(
                img_id=sample.img_id, gt_instances=gt.to_dict(),
                ignored_instances=sample.ignored_instances.to_dict(),
                pred_instances=dict(bboxes=rboxes, scores=torch.ones(len(rboxes)),
                                    labels=gt.labels))])
        scores[shift] = metric.compute_metrics(metric.results)['mAP']
    assert scores[0.0] == pytest.approx(1.0)
    assert scores[0.5] < 0.5
