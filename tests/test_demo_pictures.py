"""The demo's pictures: detections side by side (tools/compare_detections.py) and loss curves
(tools/plot_losses.py)."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from tools.compare_detections import (BACKGROUND, MARGIN, TITLE_HEIGHT, Detections,
                                      compose_panels, draw_boxes, main, panel_title,
                                      render_panel, select_detections, validation_image)
from tools.plot_losses import (loss_series, main as plot_main, merge_scalars, needs_log_scale,
                               scalar_files, term_group)

from .conftest import tiny_config


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.any(before != after, axis=-1)


def test_draw_boxes_outlines_exactly_the_box_and_returns_a_copy():
    image = np.zeros((20, 30, 3), np.uint8)
    drawn = draw_boxes(image, np.array([[3.2, 4.0, 11.6, 15.4]]), (10, 20, 30))
    expected = np.zeros((20, 30), bool)
    expected[[4, 15], 3:13] = True  # corners rounded to (3, 4) and (12, 15), both inclusive
    expected[4:16, [3, 12]] = True
    np.testing.assert_array_equal(changed(image, drawn), expected)
    assert (drawn[expected] == (10, 20, 30)).all()
    assert not image.any()


@pytest.mark.parametrize('y1, above', [(30, True), (2, False)])
def test_draw_boxes_writes_the_text_on_a_band_above_the_box_or_inside(y1, above):
    image = np.zeros((60, 80, 3), np.uint8)
    box = np.array([[10, y1, 40, y1 + 20]])
    drawn = draw_boxes(image, box, (0, 140, 255), ['ship 0.9'])
    (width, height), baseline = cv2.getTextSize('ship 0.9', cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    top = y1 - height - baseline if above else y1
    allowed = draw_boxes(image, box, (0, 140, 255)).any(-1)
    allowed[top:top + height + baseline + 1, 10:10 + width + 1] = True
    diff = changed(image, drawn)
    assert not (diff & ~allowed).any()
    band = drawn[top:top + height + baseline + 1, 10:10 + width + 1]
    assert (band == (0, 0, 0)).all(-1).any(), 'the text is drawn in black on the band'


def test_render_panel_places_the_scaled_image_under_the_title_band():
    image = np.full((32, 64, 3), 90, np.uint8)
    panel = render_panel(image, ['model: 0 detections'], Detections(
        np.zeros((0, 4)), np.zeros(0, int), np.zeros(0)), ('ship', ), np.zeros((0, 4)), 128)
    assert panel.shape == (TITLE_HEIGHT + 64 + MARGIN, 128 + 2 * MARGIN, 3)
    assert (panel[TITLE_HEIGHT:TITLE_HEIGHT + 64, MARGIN:MARGIN + 128] == 90).all()
    assert (panel[-MARGIN:] == BACKGROUND).all()
    assert (panel[:, :MARGIN] == BACKGROUND).all() and (panel[:, -MARGIN:] == BACKGROUND).all()
    assert (panel[:TITLE_HEIGHT] != BACKGROUND).any(axis=-1).sum() > 20, 'title written'

    with_box = render_panel(image, ['model: 1 detections'], Detections(
        np.array([[8., 20., 24., 30.]]), np.array([0]), np.array([0.9])), ('ship', ),
        np.zeros((0, 4)), 128)
    scaled = with_box[TITLE_HEIGHT:TITLE_HEIGHT + 64, MARGIN:MARGIN + 128]
    orange = (0, 140, 255)  # corners scaled by 2: (16, 40)-(48, 60); the label is above row 40
    assert (scaled[60, 16:49] == orange).all()
    assert (scaled[41:61, 16] == orange).all() and (scaled[41:61, 48] == orange).all()
    assert (scaled[41:60, 17:48] == 90).all()


def test_compose_panels_puts_them_side_by_side_padding_shorter_ones_white():
    left, right = np.zeros((10, 4, 3), np.uint8), np.full((6, 3, 3), 7, np.uint8)
    composed = compose_panels([left, right])
    assert composed.shape == (10, 7, 3)
    np.testing.assert_array_equal(composed[:, :4], left)
    np.testing.assert_array_equal(composed[:6, 4:], right)
    assert (composed[6:, 4:] == BACKGROUND).all()


@pytest.fixture(scope='module')
def tiny_shiprs(tmp_path_factory):
    """A 2-image ShipRSImageNet val split (128 px) and a demo R18 student config on it."""
    from ifkd_mm.datasets.synthetic import make_shiprs

    root = tmp_path_factory.mktemp('pictures')
    make_shiprs(str(root), num_train=1, num_val=2, img_size=128, seed=0)
    return str(root), tiny_config(root, str(root), 1, 1)


def json_ground_truth(root: str, index: int):
    """File name, ``x1, y1, x2, y2`` boxes of the index-th val image and the class names, read
    from the json itself."""
    with open(osp.join(root, 'ShipRSImageNet', 'COCO_Format',
                       'ShipRSImageNet_bbox_val_level_3.json')) as f:
        data = json.load(f)
    image = data['images'][index]
    boxes = [[x, y, x + w, y + h] for ann in data['annotations'] if ann['image_id'] == image['id']
             for x, y, w, h in [ann['bbox']]]
    classes = tuple(cat['name'] for cat in sorted(data['categories'], key=lambda c: c['id']))
    return image['file_name'], np.array(boxes, dtype=np.float64).reshape(-1, 4), classes


def test_select_detections_keeps_the_top_k_above_the_threshold_best_first():
    from mmengine.structures import InstanceData
    scores = torch.tensor([0.2, 0.9, 0.5, 0.05, 0.9])
    pred = InstanceData(scores=scores, labels=torch.arange(5),
                        bboxes=torch.arange(5.).view(5, 1).expand(5, 4) * 10)
    everything = select_detections(pred, 0.1)
    assert everything.labels.tolist() == [0, 1, 2, 4]  # the model's order, 0.05 left out
    best_two = select_detections(pred, 0.1, top_k=2)
    assert best_two.labels.tolist() == [1, 4]  # ties in the model's order
    np.testing.assert_array_equal(best_two.boxes, [[10] * 4, [40] * 4])
    np.testing.assert_allclose(best_two.scores, [0.9, 0.9])
    assert select_detections(pred, 0.1, top_k=10).labels.tolist() == [1, 4, 2, 0]
    assert select_detections(pred, 0.95, top_k=2).labels.tolist() == []
    assert panel_title('m', 2, 0.1, 3, top_k=2)[1] == 'score >= 0.10, best 2; green: 3 ground truth'
    with pytest.raises(SystemExit):
        main(['--model', 'm', 'c.py', 'c.pth', '--out', 'x.png', '--top-k', '0'])


def test_validation_image_reads_the_ground_truth_through_the_dataset(tiny_shiprs):
    root, config = tiny_shiprs
    for index in (0, 1):
        name, boxes, classes = json_ground_truth(root, index)
        sample = validation_image(config, index)
        assert osp.basename(sample.path) == name and len(boxes) > 0
        assert sample.classes == classes
        np.testing.assert_allclose(sample.gt_boxes, boxes)
    by_path = validation_image(config, image_path=sample.path)
    assert by_path.path == sample.path
    np.testing.assert_allclose(by_path.gt_boxes, boxes)
    outside = validation_image(config, image_path=osp.join(root, 'elsewhere.bmp'))
    assert outside.gt_boxes.shape == (0, 4)
    with pytest.raises(IndexError):
        validation_image(config, 2)


def test_compare_detections_draws_one_panel_per_model(tiny_shiprs, tmp_path, capsys):
    from mmdet.apis import inference_detector, init_detector
    from mmengine.config import Config
    from mmengine.registry import MODELS

    root, config = tiny_shiprs
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()  # RetinaNet's prior bias: scores about 0.01, nothing above 0.3
    initialised = str(tmp_path / 'initialised.pth')
    torch.save({'state_dict': model.state_dict()}, initialised)
    model.bbox_head.retina_cls.bias.data.zero_()  # scores about 0.5: confident everywhere
    confident = str(tmp_path / 'confident.pth')
    torch.save({'state_dict': model.state_dict()}, confident)

    out = str(tmp_path / 'comparison.png')
    panel_size, score_thr = 192, 0.3
    main(['--model', 'student', config, initialised, '--model', 'confident', config, confident,
          '--out', out, '--index', '1', '--score-thr', str(score_thr),
          '--panel-size', str(panel_size)])
    picture = cv2.imread(out)
    panel_width = panel_size + 2 * MARGIN
    assert picture.shape == (TITLE_HEIGHT + panel_size + MARGIN, 2 * panel_width, 3)

    name, gt_boxes, classes = json_ground_truth(root, 1)
    path = osp.join(root, 'ShipRSImageNet', 'VOC_Format', 'JPEGImages', name)
    image = cv2.imread(path)
    counts = []
    for column, (label, checkpoint) in enumerate([('student', initialised),
                                                  ('confident', confident)]):
        pred = inference_detector(init_detector(config, checkpoint, device='cpu'),
                                  path).pred_instances
        keep = pred.scores >= score_thr
        reference = Detections(pred.bboxes[keep].numpy(), pred.labels[keep].numpy(),
                               pred.scores[keep].numpy())
        expected = render_panel(image, panel_title(label, len(reference), score_thr,
                                                   len(gt_boxes)),
                                reference, classes, gt_boxes, panel_size)
        np.testing.assert_array_equal(
            picture[:, column * panel_width:(column + 1) * panel_width], expected)
        counts.append(len(reference))
    assert counts[0] == 0 < counts[1]
    printed = capsys.readouterr().out
    assert 'student: 0 detections' in printed and f'confident: {counts[1]} detections' in printed


def write_scalars(path, rows):
    path.parent.mkdir(parents=True)
    path.write_text(''.join(json.dumps(row) + '\n' for row in rows))


def test_plot_losses_joins_resumed_runs_by_step_later_run_winning(tmp_path):
    first = [dict(loss=10.0 - step, loss_cls=1.0, loss_ifkd_feat=5.0, lr=0.1, iter=step,
                  step=step) for step in (5, 10, 15, 20)]
    resumed = [dict(loss=100.0 + step, loss_cls=2.0, loss_ifkd_feat=0.01, lr=0.1, iter=step,
                    step=step) for step in (15, 20, 25)]
    validation = [{'coco/bbox_mAP': 0.5, 'step': 2}]
    write_scalars(tmp_path / '20260101_120000' / 'vis_data' / 'scalars.json', resumed + validation)
    write_scalars(tmp_path / '20260101_090000' / 'vis_data' / 'scalars.json', first)
    assert [osp.basename(osp.dirname(osp.dirname(p))) for p in scalar_files(str(tmp_path))] == \
        ['20260101_090000', '20260101_120000']

    series = loss_series(str(tmp_path))
    assert sorted(series) == ['loss', 'loss_cls', 'loss_ifkd_feat']
    steps, values = series['loss']
    np.testing.assert_array_equal(steps, [5, 10, 15, 20, 25])
    np.testing.assert_allclose(values, [5.0, 0.0, 115.0, 120.0, 125.0])
    np.testing.assert_allclose(series['loss_ifkd_feat'][1], [5.0, 5.0, 0.01, 0.01, 0.01])
    assert [term_group(name) for name in ('loss', 'loss_cls', 'loss_bbox', 'loss_ifkd_feat')] == \
        ['total', 'detection', 'detection', 'distillation']
    assert needs_log_scale(series)  # 0.01 .. 125
    assert not needs_log_scale({'loss': series['loss_cls']})  # 1 .. 2

    lr = merge_scalars(scalar_files(str(tmp_path)), keys=['lr'])
    assert list(lr) == ['lr'] and lr['lr'][0].tolist() == [5, 10, 15, 20, 25]
    with pytest.raises(KeyError):
        loss_series(str(tmp_path), keys=['loss_missing'])

    out = tmp_path / 'losses.png'
    plot_main([str(tmp_path), '--out', str(out)])
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[0] > 100 and picture.shape[1] > 100
