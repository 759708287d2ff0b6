"""tools/benchmark/detector_step.py: a tiny run of the demo ARS-DETR against the demo rotated
RetinaNet and of the demo MutDet pre-training against ARS-DETR; the random pseudo-labels."""
import argparse
import json
import math
import os.path as osp

import pytest

from .conftest import REPO
from .test_benchmark import table_rows

ARS_DEMO = osp.join(REPO, 'configs/ars-detr/demo/ars-detr_r18_demo_synthetic-dota.py')
RETINANET_DEMO = osp.join(REPO, 'configs/kd-rnet/demo',
                          'rotated-retinanet_r18_fpn_demo_synthetic-dota.py')
MUTDET_DEMO = osp.join(REPO, 'configs/mutdet/demo',
                       'mutdet_ars-detr_r18_demo_synthetic-dota-pretrain.py')
#: half a unit of the last printed digit: seconds (3 decimals), MiB (0), ratios (2)
SECONDS, MIB, RATIO = 5e-4, 0.5, 5e-3


def printed_quotient_bounds(numerator: float, denominator: float, rounding: float) -> tuple:
    """The range of the true quotient of two numbers printed to ``rounding``."""
    return ((numerator - rounding) / (denominator + rounding),
            (numerator + rounding) / (denominator - rounding))


def assert_printed_quotient(ratio: str, numerator: str, denominator: str,
                            rounding: float) -> None:
    """The printed ratio is the quotient of the printed numbers, up to the printing."""
    low, high = printed_quotient_bounds(float(numerator), float(denominator), rounding)
    assert low - RATIO <= float(ratio) <= high + RATIO, (ratio, numerator, denominator)


def test_detector_step_prints_ratios_and_sampling_share(synthetic_root, tmp_path, capsys):
    import torch

    from tools.benchmark.detector_step import main
    from tools.data.split_dota import split_folder

    split_folder(osp.join(synthetic_root, 'DOTA', 'train'), str(tmp_path / 'trainval'), size=96,
                 overlap=32)
    out = tmp_path / 'results.json'
    threads = torch.get_num_threads()
    try:
        main(['--ars-config', ARS_DEMO, '--baseline-config', RETINANET_DEMO, '--data-root',
              str(tmp_path), '--img-size', '128', '--batch-size', '1', '--steps', '1',
              '--warmup', '0', '--profile-steps', '1', '--threads', '1', '--out', str(out),
              '--mutdet-config', MUTDET_DEMO, '--pseudo-boxes', '5', '20'])
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out

    rows = table_rows(printed)
    mutdet_runs = ['mutdet-r18-5boxes', 'mutdet-r18-20boxes']
    assert set(rows) == {'run', 'rotated-retinanet-r18', 'ars-detr-r18', *mutdet_runs}
    baseline, ars = rows['rotated-retinanet-r18'], rows['ars-detr-r18']
    assert baseline[3:] == ['-'] * 6
    assert ars[7:] == ['-'] * 2
    numbers = [float(cell) for cell in baseline[:3] + ars[:7]]
    assert all(math.isfinite(n) and n > 0 for n in numbers), rows
    assert_printed_quotient(ars[3], ars[0], baseline[0], SECONDS)
    assert_printed_quotient(ars[4], ars[2], baseline[2], MIB)
    forward_share, total_share = float(ars[5]), float(ars[6])
    assert 0 < forward_share < total_share < 1
    assert 'deformable attention implementation of ars-detr-r18: pytorch' in printed
    for run in mutdet_runs:
        mutdet = rows[run]
        assert mutdet[3:7] == ['-'] * 4
        numbers = [float(cell) for cell in mutdet[:3] + mutdet[7:]]
        assert all(math.isfinite(n) and n > 0 for n in numbers), rows
        assert_printed_quotient(mutdet[7], mutdet[0], ars[0], SECONDS)
        assert_printed_quotient(mutdet[8], mutdet[2], ars[2], MIB)

    saved = json.loads(out.read_text())['results']
    assert [r['run'] for r in saved] == ['rotated-retinanet-r18', 'ars-detr-r18', *mutdet_runs]
    assert math.isclose(saved[1]['time_ratio'], saved[1]['median_s'] / saved[0]['median_s'])
    assert saved[1]['attention_impl'] == ['pytorch']
    for result, boxes in zip(saved[2:], (5, 20)):
        assert result['pseudo_boxes'] == boxes
        assert result['config'] == MUTDET_DEMO
        assert math.isclose(result['time_ratio_ars'], result['median_s'] / saved[1]['median_s'])
        assert math.isclose(result['memory_ratio_ars'],
                            result['peak_memory_mib'] / saved[1]['peak_memory_mib'])


def test_pseudo_labels_are_seeded_le90_boxes_inside_the_image():
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    from mmrotate.structures.bbox import RotatedBoxes

    from tools.benchmark.detector_step import with_pseudo_labels

    samples = []
    for height, width in ((100, 140), (128, 91)):
        sample = DetDataSample(metainfo=dict(img_shape=(height, width)))
        sample.gt_instances = InstanceData(bboxes=RotatedBoxes(torch.zeros(2, 5)),
                                           labels=torch.zeros(2, dtype=torch.long))
        samples.append(sample)
    replaced = with_pseudo_labels(samples, 500, num_classes=16, object_dims=32)
    for sample, (height, width) in zip(replaced, ((100, 140), (128, 91))):
        gt = sample.gt_instances
        boxes = gt.bboxes.tensor
        assert isinstance(gt.bboxes, RotatedBoxes) and boxes.shape == (500, 5)
        assert ((boxes[:, 2:4] >= 4) & (boxes[:, 2:4] <= 64)).all()
        assert ((boxes[:, 4] >= -math.pi / 2) & (boxes[:, 4] < math.pi / 2)).all()
        corners = gt.bboxes.convert_to('qbox').tensor.view(-1, 4, 2)
        assert corners[..., 0].min() >= -1e-4 and corners[..., 0].max() <= width + 1e-4
        assert corners[..., 1].min() >= -1e-4 and corners[..., 1].max() <= height + 1e-4
        assert gt.labels.dtype == torch.long and set(gt.labels.tolist()) == set(range(16))
        assert gt.embeddings.shape == (500, 32) and gt.embeddings.dtype == torch.float32
        assert len(sample.ignored_instances) == 0
    assert len(samples[0].gt_instances) == 2  # the inputs are left alone
    again = with_pseudo_labels(samples, 500, num_classes=16, object_dims=32)
    assert torch.equal(again[1].gt_instances.bboxes.tensor, replaced[1].gt_instances.bboxes.tensor)
    assert not torch.equal(replaced[0].gt_instances.embeddings[:100],
                           replaced[1].gt_instances.embeddings[:100])

    samples[1].set_metainfo(dict(img_shape=(128, 90)))
    with pytest.raises(ValueError, match='at least 91 px a side.*128x90'):
        with_pseudo_labels(samples, 1, num_classes=16, object_dims=32)


def test_pseudo_boxes_above_max_objects_are_refused(tmp_path):
    from tools.benchmark.detector_step import prepare_mutdet

    args = argparse.Namespace(mutdet_config=MUTDET_DEMO, pseudo_boxes=[5, 101])
    with pytest.raises(ValueError, match=r'\[101\].*max_objects=100'):
        prepare_mutdet(args, str(tmp_path))
