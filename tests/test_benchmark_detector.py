"""tools/benchmark/detector_step.py: a tiny run of the demo ARS-DETR against the demo rotated
RetinaNet."""
import json
import math
import os.path as osp

from .conftest import REPO
from .test_benchmark import table_rows

ARS_DEMO = osp.join(REPO, 'configs/ars-detr/demo/ars-detr_r18_demo_synthetic-dota.py')
RETINANET_DEMO = osp.join(REPO, 'configs/kd-rnet/demo',
                          'rotated-retinanet_r18_fpn_demo_synthetic-dota.py')
#: half a unit of the last printed digit: seconds (3 decimals), MiB (0), ratios (2)
SECONDS, MIB, RATIO = 5e-4, 0.5, 5e-3


def printed_quotient_bounds(numerator: float, denominator: float, rounding: float) -> tuple:
    """The range of the true quotient of two numbers printed to ``rounding``."""
    return ((numerator - rounding) / (denominator + rounding),
            (numerator + rounding) / (denominator - rounding))


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
              '--warmup', '0', '--profile-steps', '1', '--threads', '1', '--out', str(out)])
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out

    rows = table_rows(printed)
    assert set(rows) == {'run', 'rotated-retinanet-r18', 'ars-detr-r18'}
    baseline, ars = rows['rotated-retinanet-r18'], rows['ars-detr-r18']
    assert baseline[3:] == ['-'] * 4
    numbers = [float(cell) for cell in baseline[:3] + ars]
    assert all(math.isfinite(n) and n > 0 for n in numbers), rows
    (ars_median, _, ars_memory, time_ratio, memory_ratio, forward_share,
     total_share) = map(float, ars)
    low, high = printed_quotient_bounds(ars_median, float(baseline[0]), SECONDS)
    assert low - RATIO <= time_ratio <= high + RATIO
    low, high = printed_quotient_bounds(ars_memory, float(baseline[2]), MIB)
    assert low - RATIO <= memory_ratio <= high + RATIO
    assert 0 < forward_share < total_share < 1
    assert 'deformable attention implementation of ars-detr-r18: pytorch' in printed

    saved = json.loads(out.read_text())['results']
    assert [r['run'] for r in saved] == ['rotated-retinanet-r18', 'ars-detr-r18']
    assert math.isclose(saved[1]['time_ratio'], saved[1]['median_s'] / saved[0]['median_s'])
    assert saved[1]['attention_impl'] == ['pytorch']
